package gateway

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/decoders/script"
	"github.com/sensorgate/sensorgate/devices"
)

// A codec whose normalizeUplink returns several measurements, each with
// its own time as The Things Stack's normalized payload allows: an RFC
// 3339 string, a Date, none, and one from a clock never set.
const perRecordCodec = `
function decodeUplink(input) { return { data: { n: input.bytes.length } }; }
function normalizeUplink(input) {
  return { data: [
    { time: "2026-03-01T11:00:00Z", air: { temperature: 20.5 } },
    { time: new Date(Date.UTC(2026, 2, 1, 11, 30, 0)), air: { temperature: 21.0 } },
    { air: { relativeHumidity: 40 } },
    { time: "1970-01-01T00:00:00Z", air: { co2: 400 } },
    { time: "2026-03-05T00:00:00Z", air: { pressure: 1000 } }
  ] };
}
`

// TestPointsAtReadingTime: a Cayenne LPP frame with a unix time record,
// a codec's normalized measurements with per-record times, and a network
// server's normalized payload with them, each write their readings at the
// reading's time; the uplink and decoded_<model> points keep the uplink's.
// An implausible reading time falls back to the uplink's with a warning.
func TestPointsAtReadingTime(t *testing.T) {
	codec, err := script.Compile("per-record.js", []byte(perRecordCodec), script.Options{})
	if err != nil {
		t.Fatal(err)
	}
	euiC, euiJ, euiN := mustEUI("0c0c0c0c0c0c0c0c"), mustEUI("0d0d0d0d0d0d0d0d"), mustEUI("0e0e0e0e0e0e0e0e")
	reg, err := devices.NewRegistry([]devices.Device{
		{EUI: euiC, Name: "weather", Model: "cayenne-lpp"},
		{EUI: euiJ, Name: "js", Model: "per-record"},
		{EUI: euiN, Name: "tts-normalized"},
	})
	if err != nil {
		t.Fatal(err)
	}
	builtin := decoders.NewRegistry()
	lpp, _ := builtin.Lookup("cayenne-lpp")
	p := &Pipeline{
		Devices: reg, Decoders: decoderTable{"cayenne-lpp": lpp, "per-record": codec},
		Sink: &recordingSink{}, DeadLetters: &recordingDL{}, Log: zerolog.Nop(),
	}
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	// t0 is 2026-03-01T12:00:00Z; 0x69a4145c is 2026-03-01T10:26:36Z.
	frame := mustHex(t, "036700e1"+"018569a4145c"+"056850")
	tests := []struct {
		name     string
		up       Uplink
		want     map[string]time.Time // "measurement field" -> time
		warnings []string
	}{
		{"cayenne unix time", Uplink{DevEUI: euiC, FPort: 1, HasFPort: true, Payload: frame, Time: t0},
			map[string]time.Time{"air temperature": at("2026-03-01T10:26:36Z"), "air relativeHumidity": at("2026-03-01T10:26:36Z"),
				"uplink gateways": t0, "decoded_cayenne_lpp unix_time_1": t0}, nil},
		{"cayenne unix time 0", Uplink{DevEUI: euiC, FPort: 1, Payload: mustHex(t, "036700e1018500000000"), Time: t0},
			map[string]time.Time{"air temperature": t0, "uplink gateways": t0}, []string{"reading time 1970-01-01T00:00:00Z is implausible"}},
		{"codec per-record times", Uplink{DevEUI: euiJ, FPort: 1, Payload: []byte{1}, Time: t0},
			map[string]time.Time{"air temperature@2026-03-01T11:00:00Z": at("2026-03-01T11:00:00Z"), "air temperature@2026-03-01T11:30:00Z": at("2026-03-01T11:30:00Z"),
				"air relativeHumidity": t0, "air co2": t0, "air pressure": t0, "uplink gateways": t0, "decoded_per_record n": t0},
			[]string{"time 1970-01-01T00:00:00Z is 1970 or before", "air.pressure: reading time 2026-03-05T00:00:00Z is implausible"}},
		{"network server's normalized payload", Uplink{DevEUI: euiN, Source: "tts", Time: t0, Normalized: []map[string]any{
			{"time": "2026-03-01T09:00:00Z", "air": map[string]any{"temperature": 19.0}},
			{"time": "2026-03-01T10:00:00Z", "air": map[string]any{"temperature": 19.5}},
		}}, map[string]time.Time{"air temperature@2026-03-01T09:00:00Z": at("2026-03-01T09:00:00Z"), "air temperature@2026-03-01T10:00:00Z": at("2026-03-01T10:00:00Z"), "uplink gateways": t0}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pts, warnings, err := p.Points(tt.up)
			if err != nil {
				t.Fatal(err)
			}
			for key, want := range tt.want {
				mf, pin, _ := strings.Cut(key, "@")
				m, f, _ := strings.Cut(mf, " ")
				found := false
				for _, pt := range pts {
					if pt.Measurement != m || pin != "" && !pt.Time.Equal(at(pin)) {
						continue
					}
					for _, fl := range pt.Fields {
						if fl.Key == f {
							found = true
							if !pt.Time.Equal(want) {
								t.Errorf("%s at %s, want %s", key, pt.Time, want)
							}
						}
					}
				}
				if !found {
					t.Errorf("no point with %s in %+v", key, pts)
				}
			}
			if len(warnings) != len(tt.warnings) {
				t.Fatalf("warnings %q, want %q", warnings, tt.warnings)
			}
			for i, w := range tt.warnings {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %q, want …%s…", warnings[i], w)
				}
			}
		})
	}
	// Through Handle, the points reach the sink with those times, and an
	// implausible reading time is counted as a warning.
	sink := p.Sink.(*recordingSink)
	p.Counters = &Counters{}
	if err := p.Handle(context.Background(), tests[0].up); err != nil {
		t.Fatal(err)
	}
	for _, pt := range sink.pts {
		if pt.Measurement == "air" && !pt.Time.Equal(at("2026-03-01T10:26:36Z")) {
			t.Errorf("air point written at %s", pt.Time)
		}
	}
	if err := p.Handle(context.Background(), tests[1].up); err != nil {
		t.Fatal(err)
	}
	if n := p.Counters.Get("warnings"); n != 1 {
		t.Errorf("warnings counted %d, want 1 (the unix time 0 frame)", n)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
