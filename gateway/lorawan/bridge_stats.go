package lorawan

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

// BridgeStatsTopic is the ChirpStack Gateway Bridge / MQTT Forwarder
// statistics topic, "<region prefix>/gateway/<gateway id>/event/stats".
const BridgeStatsTopic = "+/gateway/+/event/stats"

// bridgeStats is gw.GatewayStats in protobuf JSON encoding. Gateway
// Bridge v3 spells the id gatewayID (base64) and rxPacketsReceivedOK,
// which encoding/json's case-insensitive match reads into the same
// fields.
type bridgeStats struct {
	GatewayID           string `json:"gatewayId"`
	Time                string `json:"time"`
	RxPacketsReceived   uint64 `json:"rxPacketsReceived"`
	RxPacketsReceivedOk uint64 `json:"rxPacketsReceivedOk"`
	TxPacketsReceived   uint64 `json:"txPacketsReceived"`
	TxPacketsEmitted    uint64 `json:"txPacketsEmitted"`
	Location            *struct {
		Latitude  float64 `json:"latitude"`
		Longitude float64 `json:"longitude"`
		Altitude  float64 `json:"altitude"`
	} `json:"location"`
}

// BridgeEvent names what a gateway bridge topic carries: "up", "stats",
// or another event or state ("ack", "exec", "raw", "conn"), which
// sensorgate does not use. "" is a topic in no bridge layout.
func BridgeEvent(topic string) string {
	parts := strings.Split(topic, "/")
	if n := len(parts); n >= 4 && parts[n-4] == "gateway" && (parts[n-2] == "event" || parts[n-2] == "state") {
		return parts[n-1]
	}
	return ""
}

// ParseBridgeStats reads a Gateway Bridge or MQTT Forwarder stats event
// (topic BridgeStatsTopic, JSON encoding) into an Uplink of kind
// KindGatewayStats. The gateway is the message's, else the topic's; a
// message naming another gateway than its topic is refused, as a device
// could otherwise report as another. A time before 1970 or past 2262 (a
// gateway clock never set) counts as none: Time is then zero and the
// pipeline stamps the local clock.
func ParseBridgeStats(topic string, payload []byte) (gateway.Uplink, error) {
	var m bridgeStats
	if err := json.Unmarshal(payload, &m); err != nil {
		if len(payload) > 0 && payload[0] != '{' {
			return gateway.Uplink{}, fmt.Errorf("lorawan: gateway stats on %s are not JSON (protobuf?): set the bridge's marshaler to json: %w", topic, err)
		}
		return gateway.Uplink{}, fmt.Errorf("lorawan: gateway stats on %s: %w", topic, err)
	}
	topicID := topicGateway(topic)
	id := m.GatewayID
	if id == "" {
		id = topicID
	}
	eui, err := gatewayEUI(id)
	if err != nil {
		return gateway.Uplink{}, fmt.Errorf("lorawan: gateway stats on %s: gatewayId: %w", topic, err)
	}
	if topicID != "" {
		if te, err := gatewayEUI(topicID); err == nil && te != eui {
			return gateway.Uplink{}, fmt.Errorf("lorawan: gateway stats on %s name gateway %s: a gateway reports on its own topic only; check the broker's ACLs", topic, eui)
		}
	}
	st := &gateway.GatewayStats{ID: eui.String(), RxReceived: m.RxPacketsReceived, RxOK: m.RxPacketsReceivedOk,
		TxReceived: m.TxPacketsReceived, TxEmitted: m.TxPacketsEmitted}
	if l := m.Location; l != nil && (l.Latitude != 0 || l.Longitude != 0) && // 0,0: no fix
		math.Abs(l.Latitude) <= 90 && math.Abs(l.Longitude) <= 180 && math.Abs(l.Altitude) < 1e5 {
		st.Location = &gateway.GatewayLocation{Latitude: l.Latitude, Longitude: l.Longitude, Altitude: l.Altitude}
	}
	up := gateway.Uplink{Kind: gateway.KindGatewayStats, Gateway: st, Topic: topic, Raw: payload}
	if m.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, m.Time)
		if err != nil {
			return gateway.Uplink{}, fmt.Errorf("lorawan: gateway stats on %s: time %q: %w", topic, truncate(m.Time, 40), err)
		}
		if t.After(time.Unix(0, 0)) && t.Before(time.Unix(0, math.MaxInt64)) {
			up.Time = t.UTC()
		}
	}
	return up, nil
}

// topicGateway is the gateway id a bridge topic names, "" if none.
func topicGateway(topic string) string {
	parts := strings.Split(topic, "/")
	for i := 0; i+1 < len(parts); i++ {
		if parts[i] == "gateway" {
			return parts[i+1]
		}
	}
	return ""
}

// gatewayEUI reads a gateway id as 16 hex digits (v4) or base64 of its 8
// bytes (Gateway Bridge v3 JSON).
func gatewayEUI(s string) (devices.EUI, error) {
	if e, err := devices.ParseEUI(s); err == nil {
		return e, nil
	}
	var e devices.EUI
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != len(e) {
		return e, fmt.Errorf("%q: want 16 hex digits or base64 of 8 bytes", truncate(s, 40))
	}
	copy(e[:], b)
	return e, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
