package mqtt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
)

// fuzzParser runs one format's parser on arbitrary bytes: it must return
// an uplink or an error, never panic, and a parsed uplink must carry the
// message as Raw and a time.
func fuzzParser(f *testing.F, cfg Config, seeds ...string) {
	cfg.Name = "fuzz"
	p, err := NewParser(cfg, func() time.Time { return testClock })
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range seeds {
		f.Add("t/0101010101010101/x", feedPayload(f, s))
		// The feed's own topic, which names the device: the device check runs.
		if topic, err := os.ReadFile(filepath.Join(feedsDir, s+".topic")); err == nil {
			f.Add(strings.TrimSpace(string(topic)), feedPayload(f, s))
		}
	}
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		up, err := p.Parse(topic, payload)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T, want *ParseError: %v", err, err)
			}
			switch pe.Reason {
			case gateway.ReasonMalformed, gateway.ReasonBadTime, gateway.ReasonDeviceMismatch:
			default:
				t.Fatalf("reason %q", pe.Reason)
			}
			return
		}
		if up.Kind == gateway.KindIgnored {
			if len(up.Raw) != len(payload) {
				t.Errorf("Raw is not the message")
			}
			return // an event sensorgate does not read: no device, no time
		}
		if !up.Time.After(time.Unix(0, 0)) {
			t.Errorf("parsed uplink at %s, want a time after 1970", up.Time)
		}
		if len(up.Raw) != len(payload) {
			t.Errorf("Raw is not the message")
		}
		if id, ok := p.topicDevice(topic); ok && cfg.Format != FormatJSON {
			if cfg.Format == FormatTTSV3 {
				if id != up.DeviceName {
					t.Errorf("topic names %q, uplink %q", id, up.DeviceName)
				}
			} else if e, err := parseEUI(id); err != nil || e != up.DevEUI {
				t.Errorf("topic names %q, uplink %s", id, up.DevEUI)
			}
		}
	})
}

func FuzzChirpStackV4(f *testing.F) {
	fuzzParser(f, Config{Format: FormatChirpStackV4},
		"chirpstack-v4/docs-example", "chirpstack-v4/field-realistic", "chirpstack-v4/multi-gateway-object-upper",
		"chirpstack-v4/no-time-nstime", "bad/chirpstack-v4/encrypted")
}

// FuzzChirpStackV4Events: the status, join and log events on their
// .../event/<event> topics.
func FuzzChirpStackV4Events(f *testing.F) {
	fuzzParser(f, Config{Format: FormatChirpStackV4},
		"chirpstack-v4/status-docs-example", "chirpstack-v4/join-docs-example", "chirpstack-v4/log-docs-example",
		"chirpstack-v4/status-external-power", "chirpstack-v4/log-codec-unknown-code", "chirpstack-v4/ack-docs-example",
		"bad/chirpstack-v4/status-battery-out-of-range", "bad/chirpstack-v4/join-bad-devaddr")
}

// FuzzTTSJoin: The Things Stack's join messages and the messages it
// publishes besides uplinks.
func FuzzTTSJoin(f *testing.F) {
	fuzzParser(f, Config{Format: FormatTTSV3},
		"tts-v3/join-docs-example", "tts-v3/join-received-at", "tts-v3/downlink-queued", "bad/tts-v3/join-accept-null")
}

func FuzzChirpStackV3(f *testing.F) {
	fuzzParser(f, Config{Format: FormatChirpStackV3},
		"chirpstack-v3/json-docs-example", "chirpstack-v3/json-v3-realistic", "chirpstack-v3/json-objectjson-two-gateways",
		"chirpstack-v3/json-v3-upper-no-time")
}

func FuzzTTS(f *testing.F) {
	fuzzParser(f, Config{Format: FormatTTSV3},
		"tts-v3/docs-example", "tts-v3/field-realistic", "tts-v3/decoded-normalized-two-gateways",
		"tts-v3/up-normalized", "tts-v3/minimal-lower-no-fcnt")
}

func FuzzJSON(f *testing.F) {
	fuzzParser(f, Config{Format: FormatJSON, JSON: JSONConfig{DeviceID: "topic:1", Time: "ts", Object: "values"}},
		"json/rfc3339", "json/no-time")
}

func FuzzJSONUnix(f *testing.F) {
	fuzzParser(f, Config{Format: FormatJSON, JSON: JSONConfig{DeviceID: "meta.eui", Time: "meta.t", TimeFormat: TimeUnixMS}},
		"json-unix-ms/unix-ms")
}
