package decoders

import (
	"reflect"
	"testing"
)

const nps405Vectors = "nwave-nps405-codec.json"

func TestNPS405(t *testing.T) {
	tests := []struct {
		name    string
		fport   uint8
		hex     string
		wantErr error
		want    map[string]any // subset of Data
		samples []Sample
	}{
		{name: "empty status", fport: 1, hex: "", wantErr: ErrTruncated},
		{name: "short heartbeat", fport: 2, hex: "00d3d8", wantErr: ErrTruncated},
		{name: "short registration", fport: 10, hex: "d11f3456", wantErr: ErrTruncated},
		{name: "unknown fPort", fport: 7, hex: "00", wantErr: ErrInvalid},
		{
			name: "coarse duration", fport: 1, hex: "f1", // c = 120
			want:    map[string]any{"previous_state_duration": 240.0, "previous_state_duration_error": 59.0, "previous_state_duration_overflow": false},
			samples: []Sample{{Quantity: "parking.occupied", Value: BoolVal(true)}},
		},
		{
			name: "duration overflow", fport: 1, hex: "fe", // c = 127
			want:    map[string]any{"occupied": false, "previous_state_duration": 660.0, "previous_state_duration_error": nil, "previous_state_duration_overflow": true},
			samples: []Sample{{Quantity: "parking.occupied", Value: BoolVal(false)}},
		},
		{
			// 2500+4*100 = 2900 mV at 20 °C is below the warm threshold.
			name: "low battery when warm", fport: 2, hex: "01641400590b",
			want: map[string]any{"battery_voltage": 2.9, "temperature": 20.0, "battery_health": "low", "hw_health_status": 1.0},
			samples: []Sample{
				{Quantity: "parking.occupied", Value: BoolVal(true)},
				{Quantity: "battery", Value: NumberVal(2.9)},
			},
		},
		{
			name: "half degree temperature, critical when cold", fport: 2, hex: "004ac5000000",
			want: map[string]any{"temperature": -19.5, "battery_health": "critical"},
			samples: []Sample{
				{Quantity: "parking.occupied", Value: BoolVal(false)},
				{Quantity: "battery", Value: NumberVal(2.796)},
			},
		},
		{
			name: "registration without vehicle: no state", fport: 10, hex: "0000000abc",
			want: map[string]any{"occupied": nil, "previous_state_duration": nil, "tag_id": "ABC"},
		},
		{
			// The index variant of the vector file (provisional, newer
			// firmware): a tag battery byte before the id.
			name: "registration with tag battery", fport: 10, hex: "d1201f345678",
			want:    map[string]any{"tag_battery_voltage": 3.2, "tag_id": "1F345678", "previous_state_duration": 160.0},
			samples: []Sample{{Quantity: "parking.occupied", Value: BoolVal(true)}},
		},
		{
			name: "reserved reset cause", fport: 3, hex: "0204090401",
			want:    map[string]any{"reset_cause": "unknown", "occupied": true},
			samples: []Sample{{Quantity: "parking.occupied", Value: BoolVal(true)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, ok := decodeCase(t, nps405, tt.fport, tt.hex, tt.wantErr)
			if !ok {
				return
			}
			vecCheckSamples(t, res)
			for k, v := range tt.want {
				if got, ok := res.DataMap()[k]; !ok || got != v {
					t.Errorf("%s = %#v, want %#v", k, got, v)
				}
			}
			if !reflect.DeepEqual(withoutKeys(res.Samples), tt.samples) {
				t.Errorf("samples %v, want %v", res.Samples, tt.samples)
			}
		})
	}
}

func TestNPS405Prefixes(t *testing.T) { vecCheckPrefixes(t, nps405, nps405Vectors) }

func FuzzNPS405(f *testing.F) { vecFuzz(f, nps405, nps405Vectors) }

func BenchmarkNPS405(b *testing.B) { vecBench(b, nps405, nps405Vectors) }
