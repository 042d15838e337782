package decoders

import (
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestCayenneUnixTime: a type 133 record dates every reading of its
// frame, wherever it stands; the data keeps the record as unix_time.
func TestCayenneUnixTime(t *testing.T) {
	uplink := time.Date(2025, 3, 10, 8, 15, 30, 0, time.UTC)
	reading := time.Date(2025, 3, 10, 8, 0, 0, 0, time.UTC) // 0x67ce9c00
	const (
		timeRec = "018567ce9c00" // channel 1, unix time
		temp    = "036700e1"     // channel 3, 22.5 °C
		hum     = "056850"       // channel 5, 40 %
	)
	tests := []struct {
		name     string
		hex      string
		want     time.Time // of every sample; zero: the uplink's
		warnings string
	}{
		{"time first", timeRec + temp + hum, reading, ""},
		{"time last", temp + hum + timeRec, reading, ""},
		{"time between", temp + timeRec + hum, reading, ""},
		{"two records agree", timeRec + temp + "028567ce9c00" + hum, reading, ""},
		{"two records disagree", timeRec + temp + "028567ce8df0" + hum, time.Time{}, "unix time records disagree"},
		{"no time record", temp + hum, time.Time{}, ""},
		{"unix time 0", "01850000000" + "0" + temp + hum, time.Time{}, "reading time 1970-01-01T00:00:00Z is implausible"},
		{"two days after the uplink", "0185" + fmt.Sprintf("%08x", uplink.Add(48*time.Hour).Unix()) + temp, time.Time{}, "is implausible for an uplink at 2025-03-10T08:15:30Z"},
		{"a day after the uplink is a fast clock", "0185" + fmt.Sprintf("%08x", uplink.Add(24*time.Hour).Unix()) + temp, uplink.Add(24 * time.Hour), ""},
		{"three days old, buffered", "0185" + fmt.Sprintf("%08x", uplink.Add(-72*time.Hour).Unix()) + temp, uplink.Add(-72 * time.Hour), ""},
		{"two years old", "0185" + fmt.Sprintf("%08x", uplink.AddDate(-2, 0, 0).Unix()) + temp, time.Time{}, "over 365 days earlier"},
		{"largest unix time (2106)", "0185ffffffff" + temp, time.Time{}, "2106-02-07T06:28:15Z is implausible"},
	}
	dec := builtin["cayenne-lpp"]
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := hex.DecodeString(tt.hex)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Explain(dec, Input{FPort: 1, Bytes: b, Time: uplink})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Samples) < 1 {
				t.Fatalf("no samples: %+v", rep)
			}
			want := ""
			if !tt.want.IsZero() {
				want = tt.want.Format(time.RFC3339Nano)
			}
			for _, s := range rep.Samples {
				if s.Time != want {
					t.Errorf("%s at %q, want %q", s.Quantity, s.Time, want)
				}
			}
			got := strings.Join(rep.Warnings, "\n")
			if tt.warnings == "" && got != "" || !strings.Contains(got, tt.warnings) {
				t.Errorf("warnings %q, want %q", got, tt.warnings)
			}
			if tt.warnings != "" && len(rep.Warnings) != 1 {
				t.Errorf("%d warnings, want one for the frame: %q", len(rep.Warnings), rep.Warnings)
			}
			if _, ok := rep.Data["unix_time"]; !ok && strings.Contains(tt.hex, "0185") {
				t.Errorf("data lost unix_time: %v", rep.Data)
			}
		})
	}
	// The Things Stack's style knows no type 133, as The Things Stack.
	b, _ := hex.DecodeString(timeRec + temp)
	if _, err := builtin["cayenne-lpp-tts"].Decode(Input{Bytes: b}); err == nil {
		t.Error("cayenne-lpp-tts decoded a unix time record")
	}
}

// TestCayenneUnixTimeSamples checks the decoder's own output, before
// CheckTimes: the time is on every sample, channel and value unchanged.
func TestCayenneUnixTimeSamples(t *testing.T) {
	b, _ := hex.DecodeString("036700e1018567ce9c00056850")
	res, err := builtin["cayenne-lpp"].Decode(Input{Bytes: b})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(0x67ce9c00, 0).UTC()
	want := []Sample{
		{Quantity: "air.temperature", Value: NumberVal(22.5), Channel: "3", Time: at},
		{Quantity: "air.relativeHumidity", Value: NumberVal(40), Channel: "5", Time: at},
	}
	if !reflect.DeepEqual(withoutKeys(res.Samples), want) {
		t.Fatalf("samples %+v\nwant %+v", res.Samples, want)
	}
}

func TestCheckTimes(t *testing.T) {
	up := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return up.Add(d) }
	tests := []struct {
		name   string
		uplink time.Time
		times  []time.Time
		keep   []bool
		warns  int
	}{
		{"none set", up, []time.Time{{}, {}}, []bool{true, true}, 0},
		{"plausible", up, []time.Time{at(-time.Hour), at(time.Hour), at(MaxReadingLead), at(-MaxReadingAge)}, []bool{true, true, true, true}, 0},
		{"just outside", up, []time.Time{at(MaxReadingLead + time.Nanosecond), at(-MaxReadingAge - time.Nanosecond)}, []bool{false, false}, 2},
		{"epoch and before", up, []time.Time{time.Unix(0, 0), time.Unix(-1, 0), time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)}, []bool{false, false, false}, 3},
		{"one warning per distinct time", up, []time.Time{time.Unix(0, 0), time.Unix(0, 0), time.Unix(0, 0)}, []bool{false, false, false}, 1},
		{"no uplink time: absolute bounds only", time.Time{}, []time.Time{time.Unix(1, 0), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}, []bool{true, true, false}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			samples := make([]Sample, len(tt.times))
			for i, st := range tt.times {
				samples[i] = Sample{Quantity: "air.temperature", Value: NumberVal(1), Time: st}
			}
			w := CheckTimes(samples, tt.uplink)
			if len(w) != tt.warns {
				t.Errorf("%d warnings, want %d: %q", len(w), tt.warns, w)
			}
			for i, keep := range tt.keep {
				if got := samples[i].Time; keep && !got.Equal(tt.times[i]) || !keep && !got.IsZero() {
					t.Errorf("sample %d: time %s, want kept %v (%s)", i, got, keep, tt.times[i])
				}
			}
		})
	}
}

// TestNormalizeTime: a measurement's RFC 3339 time dates its samples; a
// zero or pre-1970 one is dropped with a warning instead of reading as
// "no time" (Go's zero time) or as 1969.
func TestNormalizeTime(t *testing.T) {
	tests := []struct {
		time string
		want string // "" means the uplink's time
		warn string
	}{
		{"2025-06-01T11:00:00+02:00", "2025-06-01T09:00:00Z", ""},
		{"2025-06-01T11:00:00.123456789Z", "2025-06-01T11:00:00.123456789Z", ""},
		{"0001-01-01T00:00:00Z", "", "time 0001-01-01T00:00:00Z is 1970 or before"},
		{"1970-01-01T00:00:00Z", "", "is 1970 or before"},
		{"1969-07-20T20:17:40Z", "", "is 1970 or before"},
	}
	for _, tt := range tests {
		t.Run(tt.time, func(t *testing.T) {
			s, w, err := Normalize(map[string]any{"time": tt.time, "air": map[string]any{"temperature": 21.0}})
			if err != nil || len(s) != 1 {
				t.Fatalf("%v %+v", err, s)
			}
			got := ""
			if !s[0].Time.IsZero() {
				got = s[0].Time.Format(time.RFC3339Nano)
			}
			if got != tt.want {
				t.Errorf("time %q, want %q", got, tt.want)
			}
			if joined := strings.Join(w, "\n"); tt.warn == "" && joined != "" || !strings.Contains(joined, tt.warn) {
				t.Errorf("warnings %q, want %q", w, tt.warn)
			}
		})
	}
}
