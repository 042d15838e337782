package lorawan

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

// BridgeTopic is the ChirpStack Gateway Bridge / MQTT Forwarder (v4)
// uplink topic, "<region prefix>/gateway/<gateway id>/event/up".
const BridgeTopic = "+/gateway/+/event/up"

// bridgeUplink is gw.UplinkFrame in protobuf JSON encoding (the bridge's
// "json" marshaler): camelCase names, bytes as base64, enums as names.
type bridgeUplink struct {
	PHYPayload string `json:"phyPayload"`
	TxInfo     struct {
		Frequency  uint64 `json:"frequency"`
		Modulation struct {
			LoRa *struct {
				Bandwidth       int `json:"bandwidth"`
				SpreadingFactor int `json:"spreadingFactor"`
			} `json:"lora"`
		} `json:"modulation"`
	} `json:"txInfo"`
	RxInfo struct {
		GatewayID string   `json:"gatewayId"`
		GwTime    string   `json:"gwTime"`
		Time      string   `json:"time"` // before ChirpStack 4.0 it was "time"
		RSSI      *float64 `json:"rssi"`
		SNR       *float64 `json:"snr"`
		CRCStatus string   `json:"crcStatus"`
	} `json:"rxInfo"`
}

// ErrBadCRC is returned by ParseBridgeUplink for a frame the gateway
// received with a failed CRC: HandleBridge counts it and acknowledges the
// message rather than dead-lettering it.
var ErrBadCRC = errors.New("lorawan: frame received with a bad CRC")

// HandleBridge takes one message of a gateway-bridge MQTT feed (its
// mqtt.MessageHandler): one gateway's copy of a raw frame, which Handle
// de-duplicates, checks and decrypts before h gets the uplink. A frame the
// gateway received with a bad CRC is counted (lorawan.crc_errors) and
// acknowledged: nothing in it can be trusted, and the bridge forwards such
// frames routinely. A message that is not a bridge uplink event is kept as
// a malformed dead letter. A stats event becomes the gateway's stats
// uplink for h; the other events (ack, exec, raw, conn) are counted as
// events_ignored and acknowledged.
func (f *Frames) HandleBridge(ctx context.Context, topic string, payload []byte, h gateway.Handler) error {
	switch BridgeEvent(topic) {
	case "up", "":
	case "stats":
		up, err := ParseBridgeStats(topic, payload)
		if err != nil {
			return f.deadLetter(ctx, Frame{Topic: topic, Raw: payload}, nil, &gateway.Rejection{Reason: gateway.ReasonMalformed, Err: err})
		}
		up.Source = f.source
		return h(ctx, up)
	default:
		if f.counters != nil {
			f.counters.Inc("events_ignored")
		}
		return nil
	}
	fr, err := ParseBridgeUplink(topic, payload)
	switch {
	case errors.Is(err, ErrBadCRC):
		f.count("crc_errors")
		return nil
	case err != nil:
		return f.deadLetter(ctx, Frame{Topic: topic, Raw: payload}, nil, &gateway.Rejection{Reason: gateway.ReasonMalformed, Err: err})
	}
	return f.Handle(ctx, fr, h)
}

// ParseBridgeUplink reads a ChirpStack Gateway Bridge or MQTT Forwarder
// uplink event (topic BridgeTopic, JSON encoding) into a Frame for
// Frames.Handle (HandleBridge does both). The gateway id comes from
// rxInfo, or from the topic when rxInfo has none. Protobuf-encoded events
// are not supported: configure the bridge's marshaler as "json".
func ParseBridgeUplink(topic string, payload []byte) (Frame, error) {
	var m bridgeUplink
	if err := json.Unmarshal(payload, &m); err != nil {
		if len(payload) > 0 && payload[0] != '{' {
			return Frame{}, fmt.Errorf("lorawan: gateway bridge event on %s is not JSON (protobuf?): set the bridge's marshaler to json: %w", topic, err)
		}
		return Frame{}, fmt.Errorf("lorawan: gateway bridge event on %s: %w", topic, err)
	}
	if m.RxInfo.CRCStatus == "BAD_CRC" {
		return Frame{}, ErrBadCRC
	}
	phy, err := base64.StdEncoding.DecodeString(m.PHYPayload)
	if err != nil || len(phy) == 0 {
		return Frame{}, fmt.Errorf("lorawan: gateway bridge event on %s: phyPayload is not non-empty base64", topic)
	}
	id := m.RxInfo.GatewayID
	if id == "" {
		// <prefix>/gateway/<id>/event/up
		parts := strings.Split(topic, "/")
		for i := 0; i+1 < len(parts); i++ {
			if parts[i] == "gateway" {
				id = parts[i+1]
				break
			}
		}
	}
	if e, err := devices.ParseEUI(id); err == nil {
		id = e.String()
	} else if id == "" {
		return Frame{}, fmt.Errorf("lorawan: gateway bridge event on %s names no gateway (rxInfo.gatewayId)", topic)
	}
	fr := Frame{PHYPayload: phy, Frequency: m.TxInfo.Frequency, DR: -1, Topic: topic, Raw: payload, Gateway: gateway.GatewayRx{ID: id}}
	if l := m.TxInfo.Modulation.LoRa; l != nil {
		fr.SF, fr.Bandwidth = l.SpreadingFactor, l.Bandwidth
	}
	if m.RxInfo.RSSI != nil {
		fr.Gateway.RSSI = *m.RxInfo.RSSI
	}
	if m.RxInfo.SNR != nil {
		fr.Gateway.SNR, fr.Gateway.HasSNR = *m.RxInfo.SNR, true
	}
	ts := m.RxInfo.GwTime
	if ts == "" {
		ts = m.RxInfo.Time
	}
	if ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return Frame{}, fmt.Errorf("lorawan: gateway bridge event on %s: rxInfo time %q: %w", topic, ts, err)
		}
		fr.Time = t.UTC()
	}
	return fr, nil
}
