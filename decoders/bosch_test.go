package decoders

import (
	"reflect"
	"testing"
)

const tps110Vectors = "bosch-tps110-0292-codec.json"

func TestTPS110(t *testing.T) {
	tests := []struct {
		name     string
		fport    uint8
		hex      string
		wantErr  error
		want     map[string]any
		occupied any // parking.occupied sample; nil = none
	}{
		{name: "empty status", fport: 1, hex: "", wantErr: ErrTruncated},
		{name: "short start-up", fport: 3, hex: "240300007503000000000000001d0203", wantErr: ErrTruncated},
		{name: "short debug", fport: 6, hex: "0102030405", wantErr: ErrTruncated},
		{name: "unknown fPort", fport: 9, hex: "01", wantErr: ErrInvalid},
		{
			name: "free", fport: 1, hex: "fe",
			want: map[string]any{"type": "parking status", "occupied": false}, occupied: false,
		},
		{
			name: "heartbeat without temperature", fport: 2, hex: "01",
			want: map[string]any{"type": "heartbeat", "occupied": true}, occupied: true,
		},
		{
			name: "start-up, no debug codes, unknown reset cause", fport: 3, hex: "0000000000000000000000000001000900",
			want: map[string]any{
				"type": "startup", "debugCodes": []any{}, "firmwareVersion": "0.1.0",
				"resetCause": "unknown", "occupied": false,
			},
			occupied: false,
		},
		{
			name: "device information passes bytes through", fport: 4, hex: "0aff",
			want: map[string]any{"type": "device information", "bytes": []any{10.0, 255.0}},
		},
		{
			name: "debug", fport: 6, hex: "10000000" + "24f3" + "0000" + "0201",
			want: map[string]any{"type": "debug", "timestamp": 16.0, "debugCode": 804.0, "sequenceNumber": 258.0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, ok := decodeCase(t, tps110, tt.fport, tt.hex, tt.wantErr)
			if !ok {
				return
			}
			vecCheckSamples(t, res)
			if !reflect.DeepEqual(res.DataMap(), tt.want) {
				t.Errorf("data %#v, want %#v", res.DataMap(), tt.want)
			}
			var want []Sample
			if tt.occupied != nil {
				want = []Sample{{Quantity: "parking.occupied", Value: BoolVal(tt.occupied.(bool))}}
			}
			if !reflect.DeepEqual(withoutKeys(res.Samples), want) {
				t.Errorf("samples %v, want %v", res.Samples, want)
			}
		})
	}
}

func TestTPS110Prefixes(t *testing.T) { vecCheckPrefixes(t, tps110, tps110Vectors) }

func FuzzTPS110(f *testing.F) { vecFuzz(f, tps110, tps110Vectors) }

func BenchmarkTPS110(b *testing.B) { vecBench(b, tps110, tps110Vectors) }
