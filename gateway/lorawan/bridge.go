package lorawan

import (
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
// received with a failed CRC: the MQTT source should count it and
// acknowledge the message, not dead-letter it.
var ErrBadCRC = errors.New("lorawan: frame received with a bad CRC")

// ParseBridgeUplink reads a ChirpStack Gateway Bridge or MQTT Forwarder
// uplink event (topic BridgeTopic, JSON encoding) into a Frame; the MQTT
// source hands it to Frames.Handle. The gateway id comes from rxInfo, or
// from the topic when rxInfo has none. Protobuf-encoded events are not
// supported: configure the bridge's marshaler as "json".
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
