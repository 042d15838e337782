package decoders

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

// ttnCoreVectors names the model id each external vector file
// (testdata/vectors/ttn-core, copied from shared/vectors: ground truth
// written outside this project) is checked against.
var ttnCoreVectors = map[string]string{
	"elsys-ers-co2-codec.json":           "elsys-ers-co2",
	"milesight-iot-am307-codec.json":     "milesight-am307",
	"milesight-iot-em310-udl-codec.json": "milesight-em310-udl",
	"milesight-iot-vs133-codec.json":     "milesight-vs133",
	"decentlab-dl-pm-codec.json":         "decentlab-dl-pm",
	"decentlab-dl-trs12-codec.json":      "decentlab-dl-trs12",
	"decentlab-dl-mbx-codec.json":        "decentlab-dl-mbx",
	"dragino-lht65-codec.json":           "dragino-lht65",
	"dragino-lse01-codec.json":           "dragino-lse01",
	"keller-keller-codec.json":           "keller-adt1",
	"dingtek-df703-codec.json":           "dingtek-df703",
	"bosch-tps110-0292-codec.json":       "bosch-tps110",
	"nwave-nps405-codec.json":            "nwave-nps405",
	"imst-ioke868-codec.json":            "imst-ioke868",
	"elvaco-cmi4110-codec.json":          "elvaco-cmi4110",
	"adeunis-pulse-codec.json":           "adeunis-pulse",
}

// vectorCorrections replaces the expected data of an example ("file#index")
// where the reference codec has a documented bug (the file's
// decoder_quirks): our decoder returns the correct value, and the test
// asserts that value. Each entry cites the quirk.
var vectorCorrections = map[string]func(data map[string]any){
	// Keller, Dingtek, Bosch, Nwave, IMST, Elvaco, Adeunis corrections.
	// Dingtek DF703 decoder_quirks: the reference converts the GPS float32
	// with mantissa/0x7FFFFF instead of /0x800000 ("116.507430",
	// "40.038999"); the exact float32 values CD03E942 / EF272042 are
	// 116.50742340087890625 and 40.03899765014648438.
	"dingtek-df703-codec.json#1": func(d map[string]any) {
		d["longitude"], d["latitude"] = "116.507423", "40.038998"
	},

	// Cayenne, Elsys, Milesight, Decentlab, Dragino corrections.
	// Dragino LSE01 decoder_quirks: "Three values are strings (JS toFixed)
	// while Bat and conduct_SOIL are numbers." The readings are numbers:
	// 0x00F1/10, 0x07A5/100, 0x099B/100.
	"dragino-lse01-codec.json#0": func(d map[string]any) {
		d["TempC_DS18B20"], d["water_SOIL"], d["temp_SOIL"] = 24.1, 19.57, 24.59
	},
}

type ttnVectorFile struct {
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

func TestTTNCoreVectors(t *testing.T) {
	files, err := filepath.Glob("../testdata/vectors/ttn-core/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no vector files: %v", err)
	}
	reg := NewRegistry()
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			model, ok := ttnCoreVectors[name]
			if !ok {
				t.Fatalf("vector file %s has no model in ttnCoreVectors", name)
			}
			dec, ok := reg.Lookup(model)
			if !ok {
				t.Fatalf("no decoder for model %q", model)
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var vf ttnVectorFile
			if err := json.Unmarshal(raw, &vf); err != nil {
				t.Fatal(err)
			}
			for i, ex := range vf.Examples {
				t.Run(strconv.Itoa(i), func(t *testing.T) {
					b, err := hex.DecodeString(ex.BytesHex)
					if err != nil {
						t.Fatal(err)
					}
					res, err := dec.Decode(Input{FPort: ex.FPort, Bytes: b})
					if len(ex.Expected.Errors) > 0 {
						if err == nil {
							t.Fatalf("%s: want error %v, got data %v", ex.Description, ex.Expected.Errors, res.DataMap())
						}
						return
					}
					if err != nil {
						t.Fatalf("%s: %v", ex.Description, err)
					}
					want := ex.Expected.Data
					if fix, ok := vectorCorrections[name+"#"+strconv.Itoa(i)]; ok {
						fix(want)
					}
					if got := comparable(res.DataMap()); !reflect.DeepEqual(got, comparable(want)) {
						gj, _ := json.Marshal(got)
						wj, _ := json.Marshal(want)
						t.Fatalf("%s:\n got %s\nwant %s", ex.Description, gj, wj)
					}
					if _, _, err := Check(res.Samples); err != nil {
						t.Fatalf("%s: samples do not fit the catalogue: %v", ex.Description, err)
					}
					checkSampleKeys(t, res)
				})
			}
		})
	}
}

// comparable turns every number into float64 and every slice into []any,
// so decoder output compares with JSON-decoded expectations the way the
// reference's deep equality compares JavaScript values.
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
	}
	if f, ok := ToFloat(v); ok {
		return f
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = comparable(rv.Index(i).Interface())
		}
		return out
	}
	if rv.Kind() == reflect.Map {
		out := make(map[string]any, rv.Len())
		for _, k := range rv.MapKeys() {
			out[k.String()] = comparable(rv.MapIndex(k).Interface())
		}
		return out
	}
	return v
}

// checkSampleKeys checks that every sample's Key names a field the
// decoder's data has once flattened as decoded_<model> flattens it: the
// pipeline leaves a value out of decoded_<model> because of its Key, so a
// wrong Key would drop a vendor value no quantity holds.
func checkSampleKeys(t *testing.T, res Result) {
	t.Helper()
	flat := map[string]Value{}
	if res.Record != nil {
		res.Record.Flat(func(k string, v Value) { flat[k] = v })
	}
	for _, s := range res.Samples {
		if s.Key == "" {
			continue
		}
		if _, ok := flat[s.Key]; !ok {
			keys := make([]string, 0, len(flat))
			for k := range flat {
				keys = append(keys, k)
			}
			t.Errorf("sample %s has Key %q, which the decoder's data does not have (it has %v)", s.Quantity, s.Key, keys)
		}
	}
}

// withoutKeys is samples with Key cleared, for tests that compare a
// decoder's quantities, values, channels and times: checkSampleKeys holds
// the keys to the decoder's data.
func withoutKeys(samples []Sample) []Sample {
	if samples == nil {
		return nil
	}
	out := make([]Sample, len(samples))
	for i, s := range samples {
		s.Key = ""
		out[i] = s
	}
	return out
}
