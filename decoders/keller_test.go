package decoders

import (
	"testing"
)

const kellerVectors = "keller-keller-codec.json"

func TestKeller(t *testing.T) {
	tests := []struct {
		name    string
		fport   uint8
		hex     string
		wantErr error
		check   func(t *testing.T, res Result)
	}{
		{name: "empty", fport: 1, hex: "", wantErr: ErrTruncated},
		{name: "header only", fport: 1, hex: "0103", wantErr: ErrTruncated},
		{name: "bitmap promises two floats, one sent", fport: 1, hex: "0103000341ae6666", wantErr: ErrTruncated},
		{name: "info frame short", fport: 4, hex: "0c0113", wantErr: ErrTruncated},
		{
			name: "no channels", fport: 1, hex: "01030000",
			check: func(t *testing.T, res Result) {
				if res.DataMap()["channelCount"] != 0.0 || res.DataMap()["channel"] != "0000000000000000" {
					t.Errorf("data %v", res.DataMap())
				}
			},
		},
		{
			// A connection type without a documented channel list keeps
			// its values, keyed by channel index, and says so.
			name: "undocumented connection type", fport: 1, hex: "0163000141ae6666",
			check: func(t *testing.T, res Result) {
				if res.DataMap()["channel_0"] != 21.799999237060547 {
					t.Errorf("channel_0 = %v", res.DataMap()["channel_0"])
				}
				if len(res.Warnings) != 1 || len(res.Samples) != 0 {
					t.Errorf("warnings %v samples %v", res.Warnings, res.Samples)
				}
			},
		},
		{
			name: "unsupported function code", fport: 1, hex: "0700",
			check: func(t *testing.T, res Result) {
				if len(res.DataMap()) != 3 || len(res.Warnings) != 1 || res.Warnings[0] != kellerUnsupported {
					t.Errorf("data %v warnings %v", res.DataMap(), res.Warnings)
				}
			},
		},
		{
			// P1-PBaro of 0.5 bar is 500 hPa of water column; PBaro
			// 0.97097 bar is 970.97 hPa of air pressure.
			name: "level probe samples", fport: 1, hex: "01030041" + "3f000000" + "3f78917d",
			check: func(t *testing.T, res Result) {
				got := map[string]float64{}
				for _, s := range res.Samples {
					got[s.Quantity] = s.Value.Num
				}
				if got["water.pressure"] != 500 || got["air.pressure"] != 970.9699749946594 {
					t.Errorf("samples %v", res.Samples)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, ok := decodeCase(t, keller, tt.fport, tt.hex, tt.wantErr)
			if !ok {
				return
			}
			vecCheckSamples(t, res)
			tt.check(t, res)
		})
	}
}

func TestKellerPrefixes(t *testing.T) { vecCheckPrefixes(t, keller, kellerVectors) }

func FuzzKeller(f *testing.F) { vecFuzz(f, keller, kellerVectors) }

func BenchmarkKeller(b *testing.B) { vecBench(b, keller, kellerVectors) }
