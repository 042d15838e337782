package decoders

import (
	"reflect"
	"strings"
	"testing"
)

const cmi4110Vectors = "elvaco-cmi4110-codec.json"

// cmi4110Records are the records of the vector file's example, by name, so
// table cases can swap one.
var cmi4110Records = map[string]string{
	"energy": "0c0652676102",
	"volume": "0c1497899900",
	"power":  "0b2d000000",
	"flow":   "0b3b000000",
	"tflow":  "0a5a3306",
	"tret":   "0a5e4105",
	"serial": "0c7829110366",
	"flags":  "02fd170000",
}

// cmi4110Frame builds a Standard message from record names; "name=hex"
// replaces a record.
func cmi4110Frame(parts ...string) string {
	var sb strings.Builder
	sb.WriteString("00")
	for _, p := range parts {
		if name, h, ok := strings.Cut(p, "="); ok && name != "" {
			sb.WriteString(h)
			continue
		}
		sb.WriteString(cmi4110Records[p])
	}
	return sb.String()
}

var cmi4110Standard8 = []string{"energy", "volume", "power", "flow", "tflow", "tret", "serial", "flags"}

func TestCMi4110(t *testing.T) {
	swap := func(name, h string) string {
		var parts []string
		for _, p := range cmi4110Standard8 {
			if p == name {
				p = name + "=" + h
			}
			parts = append(parts, p)
		}
		return cmi4110Frame(parts...)
	}
	tests := []struct {
		name    string
		fport   uint8
		hex     string
		wantErr error
		want    map[string]any // subset of Data
	}{
		{name: "wrong fPort", fport: 1, hex: cmi4110Frame(cmi4110Standard8...), wantErr: ErrInvalid},
		{name: "under 40 bytes", fport: 2, hex: cmi4110Frame("energy", "volume", "power", "flow", "tflow", "tret", "serial"), wantErr: ErrTruncated},
		{name: "compact format", fport: 2, hex: "01" + cmi4110Frame(cmi4110Standard8...)[2:], wantErr: ErrInvalid},
		{name: "unknown VIF", fport: 2, hex: swap("serial", "0c7f29110366"), wantErr: ErrInvalid},
		{name: "not BCD", fport: 2, hex: swap("energy", "0c065267610a"), wantErr: ErrInvalid},
		{name: "record cut short", fport: 2, hex: cmi4110Frame(cmi4110Standard8...) + "0c06", wantErr: ErrTruncated},
		{
			// decoder_quirks: the reference reads flow digits as hex
			// (0x123456 * 0.001 = 1193.046); BCD 123456 is 123.456 m³/h.
			name: "non-zero flow is BCD", fport: 2, hex: swap("flow", "0b3b563412"),
			want: map[string]any{"flow": 123.456},
		},
		{
			// decoder_quirks: the reference only finds the error flags in
			// last position.
			name: "error flags first", fport: 2,
			hex:  cmi4110Frame("flags=02fd170401", "energy", "volume", "power", "flow", "tflow", "tret", "serial"),
			want: map[string]any{"error_flag": float64(0x0104), "serial": 66031129.0},
		},
		{
			name: "negative BCD return temperature", fport: 2, hex: swap("tret", "0a5e50f0"),
			want: map[string]any{"return_temperature": -5.0},
		},
		{
			name: "energy in 10 kWh, volume in m³, power in kW, tariff 1, filler", fport: 2,
			hex: cmi4110Frame("energy=0c0712345678", "volume=0c1601000000", "power=0b2e250000",
				"flow", "tflow", "tret", "serial", "flags", "tariff=8c100610000000", "filler=2f2f"),
			want: map[string]any{"energy": 785634120.0, "volume": 1.0, "power": 25.0, "energy_tariff_1": 10.0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, ok := decodeCase(t, cmi4110, tt.fport, tt.hex, tt.wantErr)
			if !ok {
				return
			}
			vecCheckSamples(t, res)
			for k, v := range tt.want {
				if got := res.DataMap()[k]; got != v {
					t.Errorf("%s = %#v, want %#v", k, got, v)
				}
			}
		})
	}
}

// TestCMi4110Samples checks the catalogue units: kWh, W, m³, m³/h, °C.
func TestCMi4110Samples(t *testing.T) {
	h := cmi4110Frame("energy", "volume", "power=0b2d150000", "flow=0b3b563412", "tflow", "tret", "serial", "flags")
	res, err := cmi4110.Decode(Input{FPort: 2, Bytes: vecHex(t, h)})
	if err != nil {
		t.Fatal(err)
	}
	want := []Sample{
		{Quantity: "metering.heat.total", Value: NumberVal(2616752.0)},
		{Quantity: "metering.heat.power", Value: NumberVal(1500.0)},
		{Quantity: "metering.heat.volume", Value: NumberVal(9989.97)},
		{Quantity: "metering.heat.flow", Value: NumberVal(123.456)},
		{Quantity: "metering.heat.flowTemperature", Value: NumberVal(63.3)},
		{Quantity: "metering.heat.returnTemperature", Value: NumberVal(54.1)},
	}
	if !reflect.DeepEqual(withoutKeys(res.Samples), want) {
		t.Errorf("samples %v\nwant %v", res.Samples, want)
	}
	vecCheckSamples(t, res)
}

func TestCMi4110Prefixes(t *testing.T) { vecCheckPrefixes(t, cmi4110, cmi4110Vectors) }

func FuzzCMi4110(f *testing.F) { vecFuzz(f, cmi4110, cmi4110Vectors) }

func BenchmarkCMi4110(b *testing.B) {
	in := Input{FPort: 2, Bytes: vecHex(b, cmi4110Frame(cmi4110Standard8...))}
	b.ReportAllocs()
	benchDecode(b, cmi4110, in)
}

// BenchmarkCMi4110Vector decodes the vector file's example, beside the
// eight-record standard frame above.
func BenchmarkCMi4110Vector(b *testing.B) { vecBench(b, cmi4110, cmi4110Vectors) }
