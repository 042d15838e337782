package mqtt

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/sensorgate/sensorgate/gateway"
)

// ChirpStack v4 publishes each device event on
// application/{application_id}/device/{dev_eui}/event/{event}: up, status,
// join, log, and ack, txack, location, integration, which sensorgate does
// not use. The event is named by the topic only, never in the message.

// csV4Event is the event a ChirpStack v4 topic names; a topic in another
// layout (a custom topic template) carries uplinks.
func csV4Event(topic string) string {
	i := strings.LastIndex(topic, "/event/")
	if i < 0 {
		return "up"
	}
	ev := topic[i+len("/event/"):]
	if ev == "" || strings.IndexByte(ev, '/') >= 0 {
		return "up"
	}
	return ev
}

// csV4DeviceEvent holds the fields of ChirpStack v4's StatusEvent,
// JoinEvent and LogEvent (integration.proto) that sensorgate uses.
type csV4DeviceEvent struct {
	DeduplicationID string `json:"deduplicationId"`
	Time            string `json:"time"`
	DeviceInfo      struct {
		DeviceProfileName string            `json:"deviceProfileName"`
		DeviceName        string            `json:"deviceName"`
		DevEUI            string            `json:"devEui"`
		Tags              map[string]string `json:"tags"`
	} `json:"deviceInfo"`
	// status
	Margin                  number `json:"margin"`
	ExternalPowerSource     bool   `json:"externalPowerSource"`
	BatteryLevelUnavailable bool   `json:"batteryLevelUnavailable"`
	BatteryLevel            number `json:"batteryLevel"`
	// join
	DevAddr string `json:"devAddr"`
	// log
	Level       string `json:"level"`
	Code        string `json:"code"`
	Description string `json:"description"`
}

// maxDescription bounds a log event's description as written to InfluxDB:
// the network server's own sentence, which a misbehaving one could make
// as long as the message.
const maxDescription = 512

// csV4LogCodes are ChirpStack's LogCode names (integration.proto), the
// device_event code tag; any other code is written as "other".
var csV4LogCodes = map[string]string{}

func init() {
	for _, c := range []string{"UNKNOWN", "DOWNLINK_PAYLOAD_SIZE", "UPLINK_CODEC", "DOWNLINK_CODEC", "OTAA",
		"UPLINK_F_CNT_RESET", "UPLINK_MIC", "UPLINK_F_CNT_RETRANSMISSION", "DOWNLINK_GATEWAY",
		"RELAY_NEW_END_DEVICE", "F_CNT_DOWN", "EXPIRED"} {
		csV4LogCodes[c] = strings.ToLower(c)
	}
}

// csV4LogLevels are ChirpStack's LogLevel names.
var csV4LogLevels = map[string]string{"INFO": gateway.LevelInfo, "WARNING": gateway.LevelWarning, "ERROR": gateway.LevelError}

// parseCSV4DeviceEvent reads a ChirpStack v4 status, join or log event.
// Time is the event's time, else the local clock; ID is deduplicationId
// (a log event has none).
func parseCSV4DeviceEvent(p *Parser, event string, payload []byte) (gateway.Uplink, error) {
	var m csV4DeviceEvent
	if err := json.Unmarshal(payload, &m); err != nil {
		return gateway.Uplink{}, fmt.Errorf("not a ChirpStack v4 %s event (JSON encoding): %w", event, jsonError(err))
	}
	up := gateway.Uplink{
		DeviceName: m.DeviceInfo.DeviceName,
		Profile:    m.DeviceInfo.DeviceProfileName,
		Tags:       nilIfEmpty(m.DeviceInfo.Tags),
		ID:         m.DeduplicationID,
	}
	var err error
	if up.DevEUI, err = parseDevEUI("deviceInfo.devEui", m.DeviceInfo.DevEUI); err != nil {
		return gateway.Uplink{}, err
	}
	switch event {
	case "status":
		// proto3: older versions omit zero values, so an absent margin
		// is 0 dB. The level is meaningless when the device cannot
		// measure it or runs on external power (DevStatusAns 255, 0).
		st := &gateway.DeviceStatus{ExternalPower: m.ExternalPowerSource, HasMargin: true}
		if st.Margin, _, err = m.Margin.asInt("margin", -32, 31); err != nil {
			return gateway.Uplink{}, err
		}
		level, ok, err := m.BatteryLevel.asFloat("batteryLevel")
		if err != nil {
			return gateway.Uplink{}, err
		}
		if ok && (level < 0 || level > 100) {
			return gateway.Uplink{}, fmt.Errorf("batteryLevel %v: want a percentage, 0 to 100", level)
		}
		if !m.BatteryLevelUnavailable && !m.ExternalPowerSource {
			st.BatteryLevel, st.HasBatteryLevel = level, true
		}
		up.Kind, up.Status = gateway.KindStatus, st
	case "join":
		a, err := parseDevAddr("devAddr", m.DevAddr)
		if err != nil {
			return gateway.Uplink{}, err
		}
		ev := &gateway.DeviceEvent{Type: gateway.EventJoin}
		if m.DevAddr != "" {
			ev.DevAddr = a.String()
		}
		up.Kind, up.Event = gateway.KindEvent, ev
	case "log":
		level, code := gateway.LevelInfo, "unknown" // proto3 defaults, omitted by older versions
		if m.Level != "" {
			if level = csV4LogLevels[m.Level]; level == "" {
				level = "other"
			}
		}
		if m.Code != "" {
			if code = csV4LogCodes[m.Code]; code == "" {
				code = "other"
			}
		}
		up.Kind, up.Event = gateway.KindEvent, &gateway.DeviceEvent{Type: gateway.EventLog, Level: level, Code: code,
			Description: clip(m.Description, maxDescription)}
	default:
		return gateway.Uplink{}, fmt.Errorf("event %q: not a device event sensorgate reads", truncate(event, 40))
	}
	if m.Time == "" {
		up.Time, up.LocalTime = p.localTime(), true
		return up, nil
	}
	if up.Time, err = parseTime("time", m.Time); err != nil {
		return gateway.Uplink{}, err
	}
	return up, nil
}

// ignored is a message of an event sensorgate does not use.
func ignored() gateway.Uplink { return gateway.Uplink{Kind: gateway.KindIgnored} }

// clip cuts s to at most n bytes at a character boundary, with "…" when
// it cut: the text goes to InfluxDB, which wants valid UTF-8.
func clip(s string, n int) string {
	if len(s) <= n {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s[len(s)-min(len(s), utf8.UTFMax):]) {
		s = s[:len(s)-1]
	}
	return strings.ToValidUTF8(s, "\uFFFD") + "…"
}

// ttsJoin is The Things Stack's join message (ApplicationUp join_accept)
// on v3/{app}/devices/{device}/join.
type ttsJoin struct {
	EndDeviceIDs struct {
		DeviceID string `json:"device_id"`
		DevEUI   string `json:"dev_eui"`
		DevAddr  string `json:"dev_addr"`
	} `json:"end_device_ids"`
	CorrelationIDs []string `json:"correlation_ids"`
	ReceivedAt     string   `json:"received_at"`
	JoinAccept     *struct {
		ReceivedAt string `json:"received_at"`
	} `json:"join_accept"`
}

// ttsOtherUps are the ApplicationUp messages other than uplinks and joins
// (downlink events, service data, locations): acknowledged, not used.
var ttsOtherUps = []string{"downlink_ack", "downlink_nack", "downlink_sent", "downlink_failed", "downlink_queued",
	"downlink_queue_invalidated", "service_data", "location_solved"}

// parseTTSOther reads a The Things Stack message that carries no uplink:
// a join (a device_event of type join) or another ApplicationUp message
// (ignored). ok is false for anything else, which parseTTS refuses.
func parseTTSOther(p *Parser, payload []byte) (up gateway.Uplink, ok bool, err error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(payload, &top); err != nil {
		return gateway.Uplink{}, true, fmt.Errorf("not a The Things Stack v3 message: %w", jsonError(err))
	}
	if _, join := top["join_accept"]; !join {
		for _, k := range ttsOtherUps {
			if _, ok := top[k]; ok {
				return ignored(), true, nil
			}
		}
		return gateway.Uplink{}, false, nil
	}
	var m ttsJoin
	if err := json.Unmarshal(payload, &m); err != nil {
		return gateway.Uplink{}, true, fmt.Errorf("not a The Things Stack v3 join message: %w", jsonError(err))
	}
	if m.JoinAccept == nil { // "join_accept": null
		return gateway.Uplink{}, true, fmt.Errorf("join_accept is null")
	}
	up = gateway.Uplink{DeviceName: m.EndDeviceIDs.DeviceID, ID: asUpID(m.CorrelationIDs)}
	if m.EndDeviceIDs.DevEUI != "" || up.DeviceName == "" {
		if up.DevEUI, err = parseDevEUI("end_device_ids.dev_eui", m.EndDeviceIDs.DevEUI); err != nil {
			return gateway.Uplink{}, true, err
		}
	}
	ev := &gateway.DeviceEvent{Type: gateway.EventJoin}
	if m.EndDeviceIDs.DevAddr != "" {
		a, err := parseDevAddr("end_device_ids.dev_addr", m.EndDeviceIDs.DevAddr)
		if err != nil {
			return gateway.Uplink{}, true, err
		}
		ev.DevAddr = a.String()
	}
	up.Kind, up.Event = gateway.KindEvent, ev
	switch {
	case m.JoinAccept.ReceivedAt != "":
		up.Time, err = parseTime("join_accept.received_at", m.JoinAccept.ReceivedAt)
	case m.ReceivedAt != "":
		up.Time, err = parseTime("received_at", m.ReceivedAt)
	default:
		up.Time, up.LocalTime = p.localTime(), true
	}
	if err != nil {
		return gateway.Uplink{}, true, err
	}
	return up, true, nil
}
