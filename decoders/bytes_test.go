package decoders

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

// vecInput is one example of an external vector file, as decoder input.
type vecInput struct {
	Desc  string
	FPort uint8
	Bytes []byte
}

// vecInputs reads the examples of one ttn-core vector file (see
// vectors_test.go); truncation tests and fuzz seeds start from them.
func vecInputs(tb testing.TB, file string) []vecInput {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "vectors", "ttn-core", file))
	if err != nil {
		tb.Fatal(err)
	}
	var vf ttnVectorFile
	if err := json.Unmarshal(raw, &vf); err != nil {
		tb.Fatal(err)
	}
	out := make([]vecInput, 0, len(vf.Examples))
	for _, ex := range vf.Examples {
		b, err := hex.DecodeString(ex.BytesHex)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, vecInput{Desc: ex.Description, FPort: ex.FPort, Bytes: b})
	}
	return out
}

// vecHex decodes a hex literal of a test table.
func vecHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// vecCheckSamples fails unless a successful decode's samples fit the
// catalogue and its record reads the same flat (as the pipeline writes it)
// and as a map (as vectors and operators see it).
func vecCheckSamples(tb testing.TB, res Result) {
	tb.Helper()
	if _, _, err := Check(res.Samples); err != nil {
		tb.Fatalf("samples do not fit the catalogue: %v (%+v)", err, res.Samples)
	}
	if res.Record == nil {
		return
	}
	flat := map[string]any{}
	res.Record.Flat(func(k string, v Value) { flat[k] = v.Any() })
	fromMap := map[string]any{}
	flattenForTest(fromMap, "", res.Record.Map())
	if !reflect.DeepEqual(nanAsString(flat), nanAsString(fromMap)) {
		tb.Fatalf("record: flat fields %v differ from the flattened map %v", flat, fromMap)
	}
}

// flattenForTest flattens a decoder map the way the pipeline names fields
// (keys joined with "_", array elements by index, nulls left out), written
// independently of Record.Flat to check it.
func flattenForTest(out map[string]any, prefix string, v any) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "_" + k
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			flattenForTest(out, join(k), e)
		}
	case []any:
		for i, e := range x {
			flattenForTest(out, join(strconv.Itoa(i)), e)
		}
	case nil:
	default:
		out[prefix] = x
	}
}

// nanAsString makes NaN values comparable with reflect.DeepEqual.
func nanAsString(m map[string]any) map[string]any {
	for k, v := range m {
		if f, ok := v.(float64); ok && math.IsNaN(f) {
			m[k] = "NaN"
		}
	}
	return m
}

// vecCheckPrefixes decodes every prefix of each vector's bytes: each must decode
// to catalogue-valid samples or fail with ErrTruncated or ErrInvalid, never
// panic. The prefix is cut to its capacity so a decoder reading past the end
// panics here rather than reading the vector's tail.
func vecCheckPrefixes(t *testing.T, d Decoder, file string) {
	t.Helper()
	for _, v := range vecInputs(t, file) {
		for n := 0; n <= len(v.Bytes); n++ {
			res, err := d.Decode(Input{FPort: v.FPort, Bytes: v.Bytes[:n:n]})
			if err != nil {
				if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrInvalid) {
					t.Errorf("%s[:%d]: error %v wraps neither ErrTruncated nor ErrInvalid", v.Desc, n, err)
				}
				continue
			}
			vecCheckSamples(t, res)
		}
	}
}

// vecSeedBytes seeds a fuzz target that takes only the payload bytes (its
// port fixed) with every example of the vector files.
func vecSeedBytes(f *testing.F, files ...string) {
	for _, file := range files {
		for _, v := range vecInputs(f, file) {
			f.Add(v.Bytes)
		}
	}
}

// vecFuzz seeds f from a vector file and asserts that d never panics and
// that a nil error comes with catalogue-valid samples.
func vecFuzz(f *testing.F, d Decoder, file string) {
	for _, v := range vecInputs(f, file) {
		f.Add(v.FPort, v.Bytes)
	}
	f.Fuzz(func(t *testing.T, port uint8, b []byte) {
		res, err := d.Decode(Input{FPort: port, Bytes: b})
		if err != nil {
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v wraps neither ErrTruncated nor ErrInvalid", err)
			}
			return
		}
		vecCheckSamples(t, res)
	})
}

// vecBench benchmarks d on a typical payload: the first example of a vector
// file that decodes (some files open with an example the decoder must
// reject). The speed target of the issue (1 µs, 10 allocations) is set
// against it.
func vecBench(b *testing.B, d Decoder, file string) {
	b.Helper()
	var in Input
	found := false
	for _, v := range vecInputs(b, file) {
		in = Input{FPort: v.FPort, Bytes: v.Bytes}
		if _, err := d.Decode(in); err == nil {
			found = true
			break
		}
	}
	if !found {
		b.Fatalf("%s: no example decodes", file)
	}
	benchDecode(b, d, in)
}

// benchDecode decodes in with d until b is done, handing each record back
// as the pipeline does once an uplink's points are built.
func benchDecode(b *testing.B, d Decoder, in Input) {
	b.ReportAllocs()
	for b.Loop() {
		res, err := d.Decode(in)
		if err != nil {
			b.Fatal(err)
		}
		res.Record.Release()
	}
}

// vecBenchModels runs vecBench for each model, one sub-benchmark per model,
// with the vector file the model's vectors live in (vectors_test.go).
func vecBenchModels(b *testing.B, models ...string) {
	for _, m := range models {
		b.Run(m, func(b *testing.B) {
			var file string
			for f, model := range ttnCoreVectors {
				if model == m {
					file = f
				}
			}
			if file == "" {
				b.Fatalf("no vector file for model %s", m)
			}
			vecBench(b, builtin[m], file)
		})
	}
}
