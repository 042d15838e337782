package script

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/sensorgate/sensorgate/decoders"
)

// FuzzScriptDecode feeds random payloads to the test codecs of every
// style: a codec may refuse a payload, but the engine must neither panic
// nor return anything but data or a classified error.
func FuzzScriptDecode(f *testing.F) {
	codecs := map[string]*Codec{}
	var models []string
	for _, model := range scriptVectors {
		codecs[model] = mustLoad(f, filepath.Join(codecsDir, model+".js"), relaxed)
		models = append(models, model)
	}
	for _, vc := range loadVectors(f) {
		f.Add(vc.in.FPort, vc.in.Bytes)
	}
	f.Add(uint8(2), []byte{})
	f.Add(uint8(1), []byte{0x02, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, fport uint8, b []byte) {
		for _, model := range models {
			res, err := codecs[model].Decode(decoders.Input{FPort: fport, Bytes: b})
			if err != nil {
				var rej *RejectedError
				if !errors.Is(err, ErrCodec) && !errors.As(err, &rej) && !errors.Is(err, decoders.ErrUnknownQuantity) {
					t.Fatalf("%s: unclassified error %v", model, err)
				}
				continue
			}
			// The data is what The Things Stack and ChirpStack would
			// serialise: NaN, Infinity and functions must not survive.
			if _, err := json.Marshal(res.DataMap()); err != nil {
				t.Fatalf("%s: data is not JSON: %v", model, err)
			}
			if _, _, err := decoders.Check(res.Samples); err != nil {
				t.Fatalf("%s: samples: %v", model, err)
			}
			res.Record.Release() // as the pipeline does
		}
	})
}
