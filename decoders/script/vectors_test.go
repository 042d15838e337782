package script

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/decoders"
)

// codecsDir holds the test codecs, written for these tests from the byte
// layouts in the vector files (testdata/vectors/ttn-core/*.json,
// payload_format_notes), one per style:
//
//	elsys-ers-co2.js        The Things Stack, with normalizeUplink
//	dragino-lht65.js        The Things Stack
//	milesight-em310-udl.js  ChirpStack v4 (uses device variables)
//	decentlab-dl-pm.js      ChirpStack v3
const codecsDir = "../../testdata/codecs"

// scriptVectors names, for each external vector file checked here, the
// test codec (model id) that decodes it. The same files check the native
// decoders in decoders/vectors_test.go.
var scriptVectors = map[string]string{
	"elsys-ers-co2-codec.json":           "elsys-ers-co2",
	"dragino-lht65-codec.json":           "dragino-lht65",
	"milesight-iot-em310-udl-codec.json": "milesight-em310-udl",
	"decentlab-dl-pm-codec.json":         "decentlab-dl-pm",
}

// relaxed is for tests that are not about the time limit: on a loaded
// machine (CI, or a box whose cgroup CPU quota is exhausted) a decode that
// takes 40 µs of CPU can wait 200 ms for it, which the default 100 ms
// limit would count against the codec.
var relaxed = Options{Timeout: 10 * time.Second}

type vectorFile struct {
	Examples []struct {
		Description string `json:"description"`
		FPort       uint8  `json:"fPort"`
		BytesHex    string `json:"bytes_hex"`
		Expected    struct {
			Data     map[string]any `json:"data"`
			Errors   []string       `json:"errors"`
			Warnings []string       `json:"warnings"`
		} `json:"expected"`
	} `json:"examples"`
}

type vectorCase struct {
	name, model string
	in          decoders.Input
	data        map[string]any
	errors      []string
	warnings    []string
}

func loadVectors(t testing.TB) []vectorCase {
	t.Helper()
	var out []vectorCase
	for file, model := range scriptVectors {
		raw, err := os.ReadFile(filepath.Join("../../testdata/vectors/ttn-core", file))
		if err != nil {
			t.Fatal(err)
		}
		var vf vectorFile
		if err := json.Unmarshal(raw, &vf); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for i, ex := range vf.Examples {
			b, err := hex.DecodeString(ex.BytesHex)
			if err != nil {
				t.Fatalf("%s#%d: %v", file, i, err)
			}
			out = append(out, vectorCase{
				name:  file + "#" + strconv.Itoa(i),
				model: model,
				in:    decoders.Input{FPort: ex.FPort, Bytes: b},
				data:  ex.Expected.Data, errors: ex.Expected.Errors, warnings: ex.Expected.Warnings,
			})
		}
	}
	return out
}

func mustLoad(t testing.TB, path string, opts Options) *Codec {
	t.Helper()
	c, err := LoadFile(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestScriptVectors checks the JavaScript path against the external
// vectors, compared as decoders/vectors_test.go compares the native
// decoders, and against the native decoder of the same model.
func TestScriptVectors(t *testing.T) {
	native := decoders.NewRegistry()
	codecs := map[string]*Codec{}
	for _, model := range scriptVectors {
		codecs[model] = mustLoad(t, filepath.Join(codecsDir, model+".js"), relaxed)
	}
	for _, vc := range loadVectors(t) {
		t.Run(vc.name, func(t *testing.T) {
			res, err := codecs[vc.model].Decode(vc.in)
			if len(vc.errors) > 0 {
				if err == nil {
					t.Fatalf("want error %v, got data %v", vc.errors, res.DataMap())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := comparable(res.DataMap()), comparable(vc.data); !reflect.DeepEqual(got, want) {
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(want)
				t.Fatalf("data:\n got %s\nwant %s", gj, wj)
			}
			if len(vc.warnings) > 0 && !reflect.DeepEqual(res.Warnings, vc.warnings) {
				t.Fatalf("warnings %q, want %q", res.Warnings, vc.warnings)
			}
			if _, _, err := decoders.Check(res.Samples); err != nil {
				t.Fatalf("samples do not fit the catalogue: %v", err)
			}
			dec, ok := native.Lookup(vc.model)
			if !ok {
				t.Fatalf("no native decoder %s", vc.model)
			}
			nres, err := dec.Decode(vc.in)
			if err != nil {
				t.Fatalf("native: %v", err)
			}
			if !reflect.DeepEqual(comparable(res.DataMap()), comparable(nres.DataMap())) {
				t.Fatalf("script and native data differ:\nscript %v\nnative %v", res.DataMap(), nres.DataMap())
			}
		})
	}
}

// comparable turns every number into float64 and every slice into []any,
// as decoders/vectors_test.go does, so a decoder's Data compares with
// JSON-decoded expectations the way the reference's deep equality
// compares JavaScript values.
func comparable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = comparable(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = comparable(e)
		}
		return out
	case float64:
		return x
	case int64:
		return float64(x)
	case int:
		return float64(x)
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = comparable(rv.Index(i).Interface())
		}
		return out
	}
	return v
}

// TestBenchCayenneCodec: the end-to-end benchmark's JavaScript Cayenne LPP
// codec (sensorgate-bench -scripts) reads the simulated fleet's payloads
// as the built-in decoder does, so a run with it decodes the same values,
// and refuses a cut-off frame.
func TestBenchCayenneCodec(t *testing.T) {
	c := mustLoad(t, filepath.Join(codecsDir, "bench", "cayenne-lpp.js"), relaxed)
	native, _ := decoders.NewRegistry().Lookup("cayenne-lpp")
	for _, h := range []string{
		"0167011602686003732796", // 27.8 °C, 48 %, 1013.4 hPa
		"0167ff9c02680003732260", // -10.0 °C, 0 %, 880.0 hPa: out of the catalogue's range
		"016700000268c8037327d8",
	} {
		b, _ := hex.DecodeString(h)
		in := decoders.Input{FPort: 1, Bytes: b}
		res, err := c.Decode(in)
		if err != nil {
			t.Fatalf("%s: %v", h, err)
		}
		nres, err := native.Decode(in)
		if err != nil {
			t.Fatalf("%s: native: %v", h, err)
		}
		values := func(samples []decoders.Sample) map[string]any {
			m := map[string]any{}
			for _, s := range samples {
				m[s.Quantity] = s.Value.Any()
			}
			return m
		}
		checked, _, err := decoders.Check(nres.Samples) // as the pipeline does; the script's went through Normalize
		if err != nil {
			t.Fatal(err)
		}
		if got, want := values(res.Samples), values(checked); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: script samples %v, native %v", h, got, want)
		}
	}
	if _, err := c.Decode(decoders.Input{FPort: 1, Bytes: []byte{1, 0x67, 1}}); err == nil {
		t.Error("cut-off frame: no error")
	}
}
