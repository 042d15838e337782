package decoders

import (
	"reflect"
	"testing"
)

func TestDecentlab(t *testing.T) {
	for _, tc := range []struct {
		name     string
		model    string
		hex      string
		samples  []Sample
		keys     []string // Data keys besides protocol_version and device_id
		warnings int
		err      error
	}{
		{
			name: "DL-PM all groups (vector 1)", model: "decentlab-dl-pm",
			hex: "021b50000f0c25002500270027002701f50107012c012d012d012d67bd618dbd10",
			samples: []Sample{
				{Quantity: "battery", Value: NumberVal(3.109)},
				{Quantity: "air.pm1", Value: NumberVal(3.7)},
				{Quantity: "air.pm25", Value: NumberVal(3.9)},
				{Quantity: "air.pm4", Value: NumberVal(3.9)},
				{Quantity: "air.pm10", Value: NumberVal(3.9)},
				{Quantity: "air.temperature", Value: NumberVal(24.35660461425781)},
				{Quantity: "air.relativeHumidity", Value: NumberVal(41.63221740722656)},
				{Quantity: "air.pressure", Value: NumberVal(968.0)},
			},
		},
		{
			name: "DL-PM battery only (vector 3)", model: "decentlab-dl-pm", hex: "021b5000010c25",
			samples: []Sample{{Quantity: "battery", Value: NumberVal(3.109)}},
			keys:    []string{"battery_voltage"},
		},
		{
			name: "DL-TRS12 (vector 1)", model: "decentlab-dl-trs12", hex: "0210d3000346be813d00000c80",
			samples: []Sample{
				{Quantity: "soil.moisture", Value: NumberVal(0.006886900000000029 * 100)},
				{Quantity: "soil.temperature", Value: NumberVal(31.7)},
				{Quantity: "soil.ec", Value: NumberVal(0.0)},
				{Quantity: "battery", Value: NumberVal(3.2)},
			},
		},
		{
			name: "DL-TRS12 frozen soil, 1500 µS/cm", model: "decentlab-dl-trs12", hex: "0210d3000146be7fe805dc",
			samples: []Sample{
				{Quantity: "soil.moisture", Value: NumberVal(0.006886900000000029 * 100)},
				{Quantity: "soil.temperature", Value: NumberVal(-2.4)},
				{Quantity: "soil.ec", Value: NumberVal(1.5)},
			},
			keys: []string{"dielectric_permittivity", "volumetric_water_content", "soil_temperature", "electrical_conductivity"},
		},
		{
			name: "DL-MBX (vector 1)", model: "decentlab-dl-mbx", hex: "02012f000304d200010bb1",
			samples: []Sample{{Quantity: "level.distance", Value: NumberVal(1.234)}, {Quantity: "battery", Value: NumberVal(2.993)}},
		},
		{
			name: "undefined flag and trailing bytes are ignored with warnings", model: "decentlab-dl-mbx", hex: "02012f00060bb1ffff",
			samples:  []Sample{{Quantity: "battery", Value: NumberVal(2.993)}},
			keys:     []string{"battery_voltage"},
			warnings: 2,
		},
		{
			name: "no groups", model: "decentlab-dl-mbx", hex: "02012f0000",
			keys: []string{},
		},
		{name: "protocol version 1", model: "decentlab-dl-pm", hex: "011b5000010c25", err: ErrInvalid},
		{name: "header cut off", model: "decentlab-dl-pm", hex: "021b5000", err: ErrTruncated},
		{name: "group cut off", model: "decentlab-dl-pm", hex: "021b50000d0c2567bd618d", err: ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, ok := decodeCase(t, builtin[tc.model], 1, tc.hex, tc.err)
			if !ok {
				return
			}
			if !reflect.DeepEqual(res.Samples, tc.samples) {
				t.Errorf("samples: got %v, want %v", res.Samples, tc.samples)
			}
			if tc.keys != nil {
				if len(res.DataMap()) != len(tc.keys)+2 {
					t.Errorf("data: got %v, want keys %v", res.DataMap(), tc.keys)
				}
				for _, k := range tc.keys {
					if _, ok := res.DataMap()[k]; !ok {
						t.Errorf("data: no %q in %v", k, res.DataMap())
					}
				}
			}
			if len(res.Warnings) != tc.warnings {
				t.Errorf("warnings: got %q, want %d", res.Warnings, tc.warnings)
			}
		})
	}
}

func TestDecentlabTruncation(t *testing.T) {
	for model, file := range map[string]string{
		"decentlab-dl-pm":    "decentlab-dl-pm-codec.json",
		"decentlab-dl-trs12": "decentlab-dl-trs12-codec.json",
		"decentlab-dl-mbx":   "decentlab-dl-mbx-codec.json",
	} {
		t.Run(model, func(t *testing.T) { vendorPrefixes(t, model, file) })
	}
}

func FuzzDecentlab(f *testing.F) {
	// Seeds: the vectors, and testdata/fuzz/FuzzDecentlab, made from them.
	vecSeedBytes(f, "decentlab-dl-pm-codec.json", "decentlab-dl-trs12-codec.json", "decentlab-dl-mbx-codec.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range []string{"decentlab-dl-pm", "decentlab-dl-trs12", "decentlab-dl-mbx"} {
			vendorDecode(t, m, Input{FPort: 1, Bytes: b})
		}
	})
}

func BenchmarkDecentlab(b *testing.B) {
	vecBenchModels(b, "decentlab-dl-pm", "decentlab-dl-trs12", "decentlab-dl-mbx")
}
