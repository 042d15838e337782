package mqtt

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

// parseResult parses one message and returns the uplink or the
// *ParseError, failing the test for any other error type.
func parseResult(t *testing.T, format string, j JSONConfig, topic, payload string) (gateway.Uplink, *ParseError) {
	t.Helper()
	p, err := NewParser(Config{Name: "test", Format: format, JSON: j}, func() time.Time { return testClock })
	if err != nil {
		t.Fatal(err)
	}
	up, err := p.Parse(topic, []byte(payload))
	if err == nil {
		return up, nil
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("Parse error %T %v, want a *ParseError", err, err)
	}
	return up, pe
}

// TestParseDeviceMismatch: where the topic names the device, a message
// naming another one is refused with reason device_mismatch, and the dead
// letter is attributed to the topic's device (the one the broker let
// publish there).
func TestParseDeviceMismatch(t *testing.T) {
	const (
		eui1  = "0101010101010101"
		eui2  = "0202020202020202"
		v4Msg = `{"deviceInfo":{"devEui":"%s"},"time":"2024-01-01T00:00:00Z"}`
		ttsUp = `{"end_device_ids":{"device_id":"%s","dev_eui":"0101010101010101"},"uplink_message":{"received_at":"2024-01-01T00:00:00Z"}}`
	)
	v4 := func(eui string) string { return strings.Replace(v4Msg, "%s", eui, 1) }
	tts := func(id string) string { return strings.Replace(ttsUp, "%s", id, 1) }
	tests := []struct {
		name, format, topic, payload string
		wantReason                   gateway.Reason // "" means parsed
		wantEUI                      string         // ParseError.DevEUI
		wantDetail                   string
	}{
		{"v4 same device", FormatChirpStackV4, "application/a/device/" + eui1 + "/event/up", v4(eui1), "", "", ""},
		{"v4 same device, topic upper case", FormatChirpStackV4, "application/a/device/0A0A0A0A0A0A0A0A/event/up", v4("0a0a0a0a0a0a0a0a"), "", "", ""},
		{"v4 other device", FormatChirpStackV4, "application/a/device/" + eui1 + "/event/up", v4(eui2), gateway.ReasonDeviceMismatch, eui1,
			"the topic names device 0101010101010101, the message 0202020202020202"},
		{"v4 topic names no DevEUI", FormatChirpStackV4, "application/a/device/sensor-7/event/up", v4(eui2), gateway.ReasonDeviceMismatch, "",
			`the topic names device "sensor-7", which is not a DevEUI`},
		{"v4 topic prefix kept", FormatChirpStackV4, "city/application/a/device/" + eui1 + "/event/up", v4(eui2), gateway.ReasonDeviceMismatch, eui1, "own topic only"},
		{"v4 topic in another layout is not compared", FormatChirpStackV4, "custom/uplinks", v4(eui2), "", "", ""},
		{"v4 status event of another device", FormatChirpStackV4, "application/a/device/" + eui1 + "/event/status", v4(eui2), gateway.ReasonDeviceMismatch, eui1, "own topic only"},
		{"v4 ignored event is not compared", FormatChirpStackV4, "application/a/device/" + eui1 + "/event/ack", v4(eui2), "", "", ""},
		{"tts join of another device", FormatTTSV3, "v3/app/devices/dev-1/join",
			`{"end_device_ids":{"device_id":"dev-2","dev_eui":"0101010101010101"},"join_accept":{}}`, gateway.ReasonDeviceMismatch, "", "own topic only"},
		{"v3 rx topic other device", FormatChirpStackV3, "application/1/device/" + eui1 + "/rx", `{"devEUI":"` + eui2 + `"}`, gateway.ReasonDeviceMismatch, eui1, "own topic only"},
		{"v3 base64 EUI of the topic's device", FormatChirpStackV3, "application/1/device/" + eui1 + "/event/up", `{"devEUI":"AQEBAQEBAQE="}`, "", "", ""},
		{"tts same device", FormatTTSV3, "v3/app@ttn/devices/dev-1/up", tts("dev-1"), "", "", ""},
		{"tts other device", FormatTTSV3, "v3/app@ttn/devices/dev-1/up", tts("dev-2"), gateway.ReasonDeviceMismatch, "",
			`the topic names device_id "dev-1", end_device_ids.device_id "dev-2"`},
		{"tts normalized other device", FormatTTSV3, "v3/app/devices/dev-1/up/normalized",
			`{"end_device_ids":{"device_id":"dev-2","dev_eui":"0101010101010101"},"uplink_normalized":{"normalized_payload":{"air":{"temperature":1}}}}`,
			gateway.ReasonDeviceMismatch, "", "own topic only"},
		{"tts message names no device_id", FormatTTSV3, "v3/app/devices/dev-1/up",
			`{"end_device_ids":{"dev_eui":"0101010101010101"},"uplink_message":{}}`, gateway.ReasonDeviceMismatch, "", "end_device_ids.device_id none"},
		{"tts device_id differs in case only", FormatTTSV3, "v3/app/devices/Dev-1/up", tts("dev-1"), gateway.ReasonDeviceMismatch, "", "own topic only"},
		{"malformed v4 keeps the topic's DevEUI", FormatChirpStackV4, "application/a/device/" + eui1 + "/event/up", "not json", gateway.ReasonMalformed, eui1, "invalid JSON"},
		{"malformed v4 on a topic naming no DevEUI", FormatChirpStackV4, "application/a/device/x/event/up", "{", gateway.ReasonMalformed, "", "invalid JSON"},
		{"empty v3 keeps the topic's DevEUI", FormatChirpStackV3, "application/1/device/" + eui2 + "/rx", " ", gateway.ReasonMalformed, eui2, "empty message"},
		{"malformed tts has no DevEUI to name", FormatTTSV3, "v3/app/devices/dev-1/up", "[]", gateway.ReasonMalformed, "", "want an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, pe := parseResult(t, tt.format, JSONConfig{}, tt.topic, tt.payload)
			if tt.wantReason == "" {
				if pe != nil {
					t.Fatalf("Parse: %v", pe)
				}
				if up.Raw == nil {
					t.Fatal("no uplink")
				}
				return
			}
			if pe == nil {
				t.Fatalf("parsed %+v, want a %s error", up, tt.wantReason)
			}
			if pe.Reason != tt.wantReason || pe.DeadLetterReason() != tt.wantReason {
				t.Errorf("reason %s, want %s (%v)", pe.Reason, tt.wantReason, pe)
			}
			gotEUI := ""
			if !pe.DevEUI.IsZero() {
				gotEUI = pe.DevEUI.String()
			}
			if gotEUI != tt.wantEUI {
				t.Errorf("DevEUI %q, want %q", gotEUI, tt.wantEUI)
			}
			if !strings.Contains(pe.Error(), tt.wantDetail) {
				t.Errorf("error %q does not contain %q", pe, tt.wantDetail)
			}
		})
	}
}

// TestParseJSONTopicDevice: generic JSON takes the device from the topic
// or from the message, so there is nothing to compare, but a malformed
// message on a topic:N source names the topic's DevEUI.
func TestParseJSONTopicDevice(t *testing.T) {
	fromTopic := JSONConfig{DeviceID: "topic:1", Time: "ts"}
	_, pe := parseResult(t, FormatJSON, fromTopic, "sensors/0101010101010107/data", "[1]")
	if pe == nil || pe.Reason != gateway.ReasonMalformed || pe.DevEUI != mustEUI("0101010101010107") {
		t.Fatalf("malformed on topic:1 = %+v, want malformed with the topic's DevEUI", pe)
	}
	_, pe = parseResult(t, FormatJSON, fromTopic, "sensors/kerb-12/data", "[1]")
	if pe == nil || !pe.DevEUI.IsZero() {
		t.Fatalf("topic naming no EUI = %+v, want no DevEUI", pe)
	}
	// The device in the message wins over any topic: no mismatch exists.
	up, pe := parseResult(t, FormatJSON, JSONConfig{DeviceID: "id"}, "sensors/0101010101010107/data", `{"id":"0202020202020202"}`)
	if pe != nil || up.DevEUI != mustEUI("0202020202020202") {
		t.Fatalf("device from the message: %+v %v", up, pe)
	}
}

// TestParseBadTime: a time of 1970 or before (Go's zero time, a negative
// Unix time) or past 2262 is a bad_time error in every feed format; only
// a message without a time gets the local clock.
func TestParseBadTime(t *testing.T) {
	const topicV4 = "application/a/device/0101010101010101/event/up"
	v4 := func(rest string) string { return `{"deviceInfo":{"devEui":"0101010101010101"}` + rest + `}` }
	tts := func(rest string) string {
		return `{"end_device_ids":{"device_id":"d","dev_eui":"0101010101010101"}` + rest + `}`
	}
	unix := func(f string) JSONConfig { return JSONConfig{DeviceID: "id", Time: "t", TimeFormat: f} }
	rfc := JSONConfig{DeviceID: "id", Time: "t"}
	tests := []struct {
		name, format string
		json         JSONConfig
		topic        string
		payload      string
		want         string // RFC 3339 time; "" means a bad_time error; "local" the local clock
	}{
		{"v4 zero time", FormatChirpStackV4, rfc, topicV4, v4(`,"time":"0001-01-01T00:00:00Z"`), ""},
		{"v4 before 1970", FormatChirpStackV4, rfc, topicV4, v4(`,"time":"1969-12-31T23:59:59.999Z"`), ""},
		{"v4 the epoch itself", FormatChirpStackV4, rfc, topicV4, v4(`,"time":"1970-01-01T00:00:00Z"`), ""},
		{"v4 epoch as an offset time", FormatChirpStackV4, rfc, topicV4, v4(`,"time":"1970-01-01T01:00:00+01:00"`), ""},
		{"v4 past 2262", FormatChirpStackV4, rfc, topicV4, v4(`,"time":"2263-01-01T00:00:00Z"`), ""},
		{"v4 a microsecond after the epoch", FormatChirpStackV4, rfc, topicV4, v4(`,"time":"1970-01-01T00:00:00.000001Z"`), "1970-01-01T00:00:00.000001Z"},
		// v4 event times are cut to microseconds (ChirpStack's PostgreSQL
		// integration keeps no more), and the cut one is checked.
		{"v4 a nanosecond after the epoch", FormatChirpStackV4, rfc, topicV4, v4(`,"time":"1970-01-01T00:00:00.000000001Z"`), ""},
		{"v4 nanoseconds cut", FormatChirpStackV4, rfc, topicV4, v4(`,"time":"2024-03-05T11:22:33.123456789+00:00"`), "2024-03-05T11:22:33.123456Z"},
		{"v4 zero nsTime without event time", FormatChirpStackV4, rfc, topicV4, v4(`,"rxInfo":[{"nsTime":"0001-01-01T00:00:00Z"}]`), ""},
		{"v4 zero gateway time without event time", FormatChirpStackV4, rfc, topicV4, v4(`,"rxInfo":[{"time":"0001-01-01T00:00:00Z"}]`), ""},
		{"v4 no time at all", FormatChirpStackV4, rfc, topicV4, v4(``), "local"},
		{"v3 zero gateway time", FormatChirpStackV3, rfc, "t", `{"devEUI":"0101010101010101","rxInfo":[{"time":"0001-01-01T00:00:00Z"}]}`, ""},
		{"v3 null gateway time", FormatChirpStackV3, rfc, "t", `{"devEUI":"0101010101010101","rxInfo":[{"time":null}]}`, "local"},
		{"tts zero received_at", FormatTTSV3, rfc, "t", tts(`,"uplink_message":{"received_at":"0001-01-01T00:00:00Z"}`), ""},
		{"tts zero top-level received_at", FormatTTSV3, rfc, "t", tts(`,"received_at":"0001-01-01T00:00:00Z","uplink_message":{}`), ""},
		{"tts pre-1970 received_at", FormatTTSV3, rfc, "t", tts(`,"uplink_message":{"received_at":"1960-05-01T00:00:00Z"}`), ""},
		{"tts no time", FormatTTSV3, rfc, "t", tts(`,"uplink_message":{}`), "local"},
		{"json rfc3339 zero", FormatJSON, rfc, "t", `{"id":"a","t":"0001-01-01T00:00:00Z"}`, ""},
		{"json unix 0", FormatJSON, unix(TimeUnix), "t", `{"id":"a","t":0}`, ""},
		{"json unix negative", FormatJSON, unix(TimeUnix), "t", `{"id":"a","t":-86400}`, ""},
		{"json unix_ms negative fraction", FormatJSON, unix(TimeUnixMS), "t", `{"id":"a","t":-0.5}`, ""},
		{"json unix_ns string negative", FormatJSON, unix(TimeUnixNS), "t", `{"id":"a","t":"-1"}`, ""},
		{"json unix 1", FormatJSON, unix(TimeUnix), "t", `{"id":"a","t":1}`, "1970-01-01T00:00:01Z"},
		{"json null time", FormatJSON, rfc, "t", `{"id":"a","t":null}`, "local"},
		{"json no time", FormatJSON, rfc, "t", `{"id":"a"}`, "local"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, pe := parseResult(t, tt.format, tt.json, tt.topic, tt.payload)
			switch tt.want {
			case "":
				if pe == nil {
					t.Fatalf("parsed at %s, want a bad_time error", up.Time.Format(time.RFC3339Nano))
				}
				if pe.Reason != gateway.ReasonBadTime || !strings.Contains(pe.Error(), "outside 1970..2262") {
					t.Fatalf("error %s: %v, want bad_time", pe.Reason, pe)
				}
			case "local":
				if pe != nil {
					t.Fatal(pe)
				}
				if !up.LocalTime || !up.Time.Equal(testClock) {
					t.Fatalf("time %s local %v, want the local clock", up.Time, up.LocalTime)
				}
			default:
				if pe != nil {
					t.Fatal(pe)
				}
				if up.LocalTime || !up.Time.Equal(mustTime(tt.want)) {
					t.Fatalf("time %s local %v, want %s", up.Time.Format(time.RFC3339Nano), up.LocalTime, tt.want)
				}
			}
		})
	}
}

// TestParseErrorKeepsMalformedWording: the error text of a malformed
// message is what it was before reasons were told apart (dead letters and
// golden files carry it).
func TestParseErrorKeepsMalformedWording(t *testing.T) {
	_, pe := parseResult(t, FormatChirpStackV4, JSONConfig{}, "t", `{"deviceInfo":{"devEui":"xyz"}}`)
	if pe == nil || !strings.HasPrefix(pe.Error(), `chirpstack-v4: deviceInfo.devEui: devices: invalid EUI "xyz"`) {
		t.Fatalf("error %v", pe)
	}
	if pe.Reason != gateway.ReasonMalformed || pe.DevEUI != (devices.EUI{}) {
		t.Fatalf("reason %s DevEUI %s", pe.Reason, pe.DevEUI)
	}
}
