package script

import (
	"encoding/hex"
	"path/filepath"
	"testing"

	"github.com/sensorgate/sensorgate/decoders"
)

// BenchmarkScriptDecode decodes one vector payload per device with the
// JavaScript codec and, for comparison, with the native decoder.
func BenchmarkScriptDecode(b *testing.B) {
	native := decoders.NewRegistry()
	for _, bc := range []struct{ model, hex string }{
		{"elsys-ers-co2", "0100e202290400270506060308"},
		{"dragino-lht65", "cbf60b0d0376010add7fff"},
		{"milesight-em310-udl", "01755c03824408040001"},
		{"decentlab-dl-pm", "021b50000f0c25002500270027002701f50107012c012d012d012d67bd618dbd10"},
	} {
		payload, _ := hex.DecodeString(bc.hex)
		fport := uint8(1)
		switch bc.model {
		case "dragino-lht65":
			fport = 2
		case "milesight-em310-udl":
			fport = 85
		}
		in := decoders.Input{FPort: fport, Bytes: payload}
		c := mustLoad(b, filepath.Join(codecsDir, bc.model+".js"), relaxed)
		nd, _ := native.Lookup(bc.model)
		for _, d := range []struct {
			name string
			dec  decoders.Decoder
		}{{"script", c}, {"native", nd}} {
			b.Run(bc.model+"/"+d.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := d.dec.Decode(in); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
