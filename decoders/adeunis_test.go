package decoders

import (
	"reflect"
	"testing"
	"time"
)

const pulseVectors = "adeunis-pulse-codec.json"

func TestPulse(t *testing.T) {
	tests := []struct {
		name    string
		hex     string
		wantErr error
		counts  []any
		ts      string // Data timestamp; "" = absent
		sample  Sample
	}{
		{name: "empty", hex: "", wantErr: ErrTruncated},
		{name: "keep-alive not supported", hex: "3000", wantErr: ErrInvalid},
		{name: "counter cut", hex: "5a20000001", wantErr: ErrTruncated},
		{name: "odd delta bytes", hex: "5a200000012700", wantErr: ErrTruncated},
		{name: "timestamp flag without timestamp", hex: "5a2400000127", wantErr: ErrTruncated},
		{
			name: "channel B, no timestamp, no history", hex: "5b01000f4240",
			counts: []any{1000000.0},
			sample: Sample{Quantity: "metering.pulse.count", Value: NumberVal(1000000.0), Channel: "B"},
		},
		{
			name: "channel A with timestamp at the epoch", hex: "5ae5" + "0000000a" + "0003" + "00000000",
			counts: []any{10.0, 7.0}, ts: "2013-01-01T00:00:00.000",
			sample: Sample{Quantity: "metering.pulse.count", Value: NumberVal(10.0), Channel: "A", Time: pulseEpoch},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, ok := decodeCase(t, pulse, 1, tt.hex, tt.wantErr)
			if !ok {
				return
			}
			vecCheckSamples(t, res)
			frame := res.DataMap()["bytes"].(map[string]any)
			if !reflect.DeepEqual(frame["counterValues"], tt.counts) {
				t.Errorf("counterValues %v, want %v", frame["counterValues"], tt.counts)
			}
			if got, ok := frame["timestamp"]; (tt.ts == "" && ok) || (tt.ts != "" && got != tt.ts) {
				t.Errorf("timestamp %v, want %q", got, tt.ts)
			}
			if len(res.Samples) != 1 || !reflect.DeepEqual(withoutKeys(res.Samples)[0], tt.sample) {
				t.Errorf("samples %v, want %v", res.Samples, tt.sample)
			}
		})
	}
}

// TestPulseVectorTime checks that the vector's counter reading carries the
// device's timestamp as its sample time.
func TestPulseVectorTime(t *testing.T) {
	v := vecInputs(t, pulseVectors)[0]
	res, err := pulse.Decode(Input{FPort: v.FPort, Bytes: v.Bytes})
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2023, 12, 28, 19, 22, 17, 0, time.UTC)
	if len(res.Samples) != 1 || !res.Samples[0].Time.Equal(want) || res.Samples[0].Value != NumberVal(295) {
		t.Errorf("samples %v, want 295 pulses at %v", res.Samples, want)
	}
}

func TestPulsePrefixes(t *testing.T) { vecCheckPrefixes(t, pulse, pulseVectors) }

func FuzzPulse(f *testing.F) { vecFuzz(f, pulse, pulseVectors) }

func BenchmarkPulse(b *testing.B) { vecBench(b, pulse, pulseVectors) }
