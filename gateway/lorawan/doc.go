// Package lorawan takes raw LoRaWAN frames, as gateways hear them, and
// turns them into gateway.Uplinks without a network server: it finds the
// ABP session by DevAddr (trying each device that shares the address),
// checks the MIC, rebuilds the 32-bit frame counter, rejects replays,
// decrypts FRMPayload and merges the copies several gateways received into
// one uplink with every gateway's RSSI and SNR.
//
// Frames come from the Semtech UDP packet-forwarder protocol (Source) or
// from ChirpStack Gateway Bridge / MQTT Forwarder JSON events
// (Frames.HandleBridge, the message handler of a gateway-bridge MQTT
// source, which parses each with ParseBridgeUplink); both end in
// Frames.Handle. Parsing, MIC and encryption are github.com/brocaar/lorawan.
//
// It must not log or return a session key, send downlinks (it is not a
// network server: no ADR, no confirmed-uplink ACKs, no joins), decode
// application payloads, or import another gateway/* package.
package lorawan
