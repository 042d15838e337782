package decoders

import (
	"reflect"
	"testing"
)

const df703Vectors = "dingtek-df703-codec.json"

func TestDF703(t *testing.T) {
	tests := []struct {
		name    string
		fport   uint8
		hex     string
		wantErr error
		want    map[string]any // subset of Data
		samples []Sample
	}{
		{name: "wrong fPort", fport: 2, hex: "800001011107d000190000000000010081", wantErr: ErrInvalid},
		{name: "short", fport: 3, hex: "800001011107d0", wantErr: ErrTruncated},
		{name: "wrong length", fport: 3, hex: "800001011207d00019000000000001000081", wantErr: ErrInvalid},
		{name: "bad head", fport: 3, hex: "810001011107d000190000000000010081", wantErr: ErrInvalid},
		{name: "bad tail", fport: 3, hex: "800001011107d000190000000000010080", wantErr: ErrInvalid},
		{name: "length byte disagrees", fport: 3, hex: "800001011907d000190000000000010081", wantErr: ErrInvalid},
		{
			// decoder_quirks: the reference always negates the angle;
			// with a zero sign byte the tilt is positive.
			name: "positive angle", fport: 3, hex: "8000010111" + "04b0" + "0019" + "000f" + "0000" + "0007" + "0081",
			want:    map[string]any{"angle": 15.0, "level": 1200.0, "frameCounter": 7.0},
			samples: []Sample{{Quantity: "level.distance", Value: NumberVal(1.2)}},
		},
		{
			name: "negative angle, frost, all alarms", fport: 3, hex: "8000010211" + "0064" + "00f6" + "012d" + "1101" + "0100" + "0081",
			want: map[string]any{
				"angle": -45.0, "temperature": -10.0, "level": 100.0,
				"alarmLevel": true, "alarmFire": true, "alarmFall": false, "alarmBattery": true,
				"frameCounter": 256.0,
			},
			samples: []Sample{{Quantity: "level.distance", Value: NumberVal(0.1)}},
		},
		{
			name: "gps position sample", fport: 3, hex: "800001011907d001cd03e942ef272042190000000000010081",
			samples: []Sample{
				{Quantity: "level.distance", Value: NumberVal(2.0)},
				{Quantity: "position.latitude", Value: NumberVal(40.038997650146484)},
				{Quantity: "position.longitude", Value: NumberVal(116.5074234008789)},
			},
		},
		{
			name: "parameters: no samples", fport: 3, hex: "8000010319010418011e4b1e01000200000000000000000081",
			want: map[string]any{"fallEnable": true, "workMode": 2.0, "firmware": "1.4"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, ok := decodeCase(t, df703, tt.fport, tt.hex, tt.wantErr)
			if !ok {
				return
			}
			vecCheckSamples(t, res)
			for k, v := range tt.want {
				if res.DataMap()[k] != v {
					t.Errorf("%s = %#v, want %#v", k, res.DataMap()[k], v)
				}
			}
			if !reflect.DeepEqual(withoutKeys(res.Samples), tt.samples) {
				t.Errorf("samples %v, want %v", res.Samples, tt.samples)
			}
		})
	}
}

func TestDF703Prefixes(t *testing.T) { vecCheckPrefixes(t, df703, df703Vectors) }

func FuzzDF703(f *testing.F) { vecFuzz(f, df703, df703Vectors) }

func BenchmarkDF703(b *testing.B) { vecBench(b, df703, df703Vectors) }
