package gateway

import (
	"context"
	"encoding/hex"
	"reflect"
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

// TestPointsAtTheMillisecond: every point of an uplink is at its time cut
// to the millisecond (schema 2), a reading's own time too; the same
// uplink again gives the same points, so a redelivery overwrites.
func TestPointsAtTheMillisecond(t *testing.T) {
	p, _, _ := testPipeline(t)
	p.Sources["ns"] = SourcePolicy{AcceptUnknown: true, GatewayPoints: true, Map: []decoders.Mapping{{Key: "humidity", Quantity: "air.relativeHumidity"}}}
	up := Uplink{Source: "ns", DevEUI: euiNone, Time: t0.Add(123456789), Radio: Radio{DR: -1, Gateways: []GatewayRx{{ID: "g1", RSSI: -80}}},
		Object:     map[string]any{"humidity": 41.0, "alarm": true},
		Normalized: []map[string]any{{"air": map[string]any{"temperature": 20.5}, "time": "2026-03-01T11:59:00.987654321Z"}},
	}
	pts, _, err := p.Points(up)
	if err != nil {
		t.Fatal(err)
	}
	reading := time.Date(2026, 3, 1, 11, 59, 0, 987000000, time.UTC)
	want := map[string]time.Time{"uplink": t0.Add(123 * time.Millisecond), "uplink_gateway": t0.Add(123 * time.Millisecond), "decoded_": t0.Add(123 * time.Millisecond)}
	seenReading := false
	for _, pt := range pts {
		switch {
		case pt.Measurement == "air" && pt.Time.Equal(reading):
			seenReading = true
		case pt.Measurement == "air":
			if !pt.Time.Equal(t0.Add(123 * time.Millisecond)) {
				t.Errorf("air point at %v, want the uplink's time cut to the millisecond", pt.Time)
			}
		default:
			m := pt.Measurement
			if strings.HasPrefix(m, "decoded_") {
				m = "decoded_"
			}
			if w, ok := want[m]; !ok || !pt.Time.Equal(w) {
				t.Errorf("%s point at %v, want %v", pt.Measurement, pt.Time, w)
			}
		}
	}
	if !seenReading {
		t.Errorf("no air point at the reading's time cut to the millisecond (%v): %+v", reading, pts)
	}
	again, _, err := p.Points(up)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, pts) {
		t.Fatalf("the same uplink gave other points:\n%+v\n%+v", pts, again)
	}
}
