// Package mqtt is the Source for MQTT feeds: it subscribes to a network
// server's (or a sensor's own) MQTT topics, turns each message into a
// gateway.Uplink with the parser for the feed's format (ChirpStack v4 and
// v3, The Things Stack v3, generic JSON), hands it to the pipeline and
// acknowledges the message only once the pipeline says it is durable.
//
// The parsers (chirpstack.go, tts.go, json.go) are pure functions of topic
// and payload, so they are tested, fuzzed and benchmarked without a broker.
// Parse also refuses a message that names another device than its topic
// (device_mismatch) and a time of 1970 or before (bad_time), with a
// *ParseError that gives the dead letter its reason and the topic's DevEUI.
// ChirpStack v4 and The Things Stack, the high-volume feeds, read messages
// with a one-pass scanner (scan.go) rather than encoding/json's
// reflection; differential fuzz tests hold them to the encoding/json
// parsers they replaced (reference_test.go), result for result.
// The Source (source.go) owns the paho client: persistent session, manual
// acknowledgement, reconnection and a bounded number of messages in flight.
//
// Messages that are not uplinks by themselves (format gateway-bridge: one
// gateway's copy of a raw LoRaWAN frame) go to a MessageHandler the daemon
// supplies instead of a parser, since the frame handling lives in
// gateway/lorawan and adapters do not import each other. A payload the
// network server forwarded still encrypted is passed on marked
// (Uplink.Encrypted); this package holds no keys.
//
// It must not decode device payloads (that is decoders' job, driven by the
// device registry), look devices up, or write to InfluxDB: an Uplink leaves
// this package carrying exactly what the feed said, and everything else
// happens behind gateway.Handler.
package mqtt
