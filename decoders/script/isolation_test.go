package script

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/decoders"
)

// decodeAlone decodes in with a Codec of its own, loaded for this one
// call and running it on a fresh runtime (never a locked one): the
// reference a decode in fresh state must match.
func decodeAlone(t testing.TB, path string, in decoders.Input) string {
	t.Helper()
	return outcome(freshOnly(t, path).Decode(in))
}

// outcome renders a decode's result (data, samples, warnings) or error as
// one comparable string.
func outcome(res decoders.Result, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	defer res.Record.Release()
	j, jerr := json.Marshal(map[string]any{"data": res.DataMap(), "samples": res.Samples, "warnings": res.Warnings})
	if jerr != nil {
		return "unmarshalable: " + jerr.Error()
	}
	return string(j)
}

// TestFreshStatePerCall: whatever a codec keeps in globals, in built-in
// prototypes or on globalThis, every call starts from the file's top
// level again, one call after another and for every device.
func TestFreshStatePerCall(t *testing.T) {
	t.Run("counter", func(t *testing.T) {
		c := behaviour(t, "state", relaxed)
		for i := range 5 {
			res, err := c.Decode(decoders.Input{Bytes: []byte{byte(i)}})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.DataMap()["calls"]; got != 1.0 {
				t.Fatalf("call %d: calls = %v, want 1 on every call", i+1, got)
			}
			res.Record.Release()
		}
	})
	t.Run("leaky", func(t *testing.T) {
		c := behaviour(t, "leaky", relaxed)
		for i, dev := range []string{"a", "b", "a", "c"} {
			res, err := c.Decode(decoders.Input{Bytes: []byte{byte(i % 2), byte(10 + i)}, Variables: map[string]string{"dev": dev}, DevEUI: dev})
			if err != nil {
				t.Fatal(err)
			}
			d := res.DataMap()
			want := map[string]any{
				"calls": 1.0, "implicit": 1.0, "seen": 1.0, "viaGlobal": 1.0,
				"frame": map[string]any{fmt.Sprintf("b%d", i%2): float64(10 + i)},
				"dev":   dev,
			}
			if !reflect.DeepEqual(d, want) {
				t.Fatalf("call %d: data %v, want %v", i+1, d, want)
			}
			res.Record.Release()
		}
	})
}

// TestVectorOrderIrrelevant decodes every vector example in file order,
// reversed, shuffled and interleaved with the other codecs and a
// stateful one: each decode's output equals the example decoded alone in
// a codec loaded for it.
func TestVectorOrderIrrelevant(t *testing.T) {
	vectors := loadVectors(t) // each file's examples together, in file order
	alone := make([]string, len(vectors))
	for i, vc := range vectors {
		alone[i] = decodeAlone(t, filepath.Join(codecsDir, vc.model+".js"), vc.in)
	}
	codecs := map[string]*Codec{}
	for _, model := range scriptVectors {
		codecs[model] = mustLoad(t, filepath.Join(codecsDir, model+".js"), relaxed)
	}
	leaky := behaviour(t, "leaky", relaxed)
	leakyAlone := decodeAlone(t, filepath.Join(behaviourDir, "leaky.js"), decoders.Input{Bytes: []byte{1, 2}})

	byFile := func() [][]int { // indices of each vector file's examples, in file order
		var files [][]int
		for i, vc := range vectors {
			if i == 0 || vectors[i-1].model != vc.model {
				files = append(files, nil)
			}
			files[len(files)-1] = append(files[len(files)-1], i)
		}
		return files
	}()
	var fileOrder, interleaved []int
	for _, f := range byFile {
		fileOrder = append(fileOrder, f...)
	}
	for k := 0; ; k++ { // one example of each file in turn
		added := false
		for _, f := range byFile {
			if k < len(f) {
				interleaved = append(interleaved, f[k])
				added = true
			}
		}
		if !added {
			break
		}
	}
	reversed := slices.Clone(fileOrder)
	slices.Reverse(reversed)
	rng := rand.New(rand.NewPCG(15, 15))
	orders := map[string][]int{"file order": fileOrder, "reversed": reversed, "interleaved": interleaved}
	for s := range 3 {
		shuffled := slices.Clone(fileOrder)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		orders[fmt.Sprintf("shuffled %d", s)] = shuffled
	}
	for name, order := range orders {
		for n, i := range order {
			vc := vectors[i]
			if got := outcome(codecs[vc.model].Decode(vc.in)); got != alone[i] {
				t.Errorf("%s, decode %d (%s):\n got %s\nalone %s", name, n, vc.name, got, alone[i])
			}
			if n%3 == 0 { // a stateful codec in between
				if got := outcome(leaky.Decode(decoders.Input{Bytes: []byte{1, 2}})); got != leakyAlone {
					t.Errorf("%s, leaky after decode %d:\n got %s\nalone %s", name, n, got, leakyAlone)
				}
			}
		}
	}
}

// TestConcurrentFreshState: many goroutines decoding with one stateful
// codec (many devices, one model) each get what the payload decoded
// alone gives, as do goroutines sharing the vector codecs.
func TestConcurrentFreshState(t *testing.T) {
	leakyPath := filepath.Join(behaviourDir, "leaky.js")
	inputs := make([]decoders.Input, 8)
	alone := make([]string, len(inputs))
	for i := range inputs {
		dev := fmt.Sprintf("%016x", i)
		inputs[i] = decoders.Input{Bytes: []byte{byte(i % 3), byte(i)}, Variables: map[string]string{"dev": dev}, DevEUI: dev}
		alone[i] = decodeAlone(t, leakyPath, inputs[i])
	}
	vectors := loadVectors(t)
	vectorsAlone := make([]string, len(vectors))
	for i, vc := range vectors {
		vectorsAlone[i] = decodeAlone(t, filepath.Join(codecsDir, vc.model+".js"), vc.in)
	}
	leaky := mustLoad(t, leakyPath, relaxed)
	codecs := map[string]*Codec{}
	for _, model := range scriptVectors {
		codecs[model] = mustLoad(t, filepath.Join(codecsDir, model+".js"), relaxed)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for n := range 40 {
				i := (g + n) % len(inputs)
				if got := outcome(leaky.Decode(inputs[i])); got != alone[i] {
					errs <- fmt.Errorf("goroutine %d, input %d:\n got %s\nalone %s", g, i, got, alone[i])
					return
				}
				v := (g*7 + n) % len(vectors)
				vc := vectors[v]
				if got := outcome(codecs[vc.model].Decode(vc.in)); got != vectorsAlone[v] {
					errs <- fmt.Errorf("goroutine %d, %s:\n got %s\nalone %s", g, vc.name, got, vectorsAlone[v])
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestRunReused: RunReused keeps one runtime, so a stateful codec's
// outputs differ from call to call there, and a codec without state
// gives what Run gives.
func TestRunReused(t *testing.T) {
	c := behaviour(t, "state", relaxed)
	ins := []decoders.Input{{Bytes: []byte{1}}, {Bytes: []byte{1}}, {Bytes: []byte{1}}}
	outs, errs := c.RunReused(ins)
	for i := range outs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if got := outs[i].Data["calls"]; got != float64(i+1) {
			t.Fatalf("reused call %d: calls = %v, want %d", i+1, got, i+1)
		}
	}
	fresh, err := c.Run(ins[0])
	if err != nil || fresh.Data["calls"] != 1.0 {
		t.Fatalf("Run: %v %v, want calls 1", fresh.Data, err)
	}
}

// TestTopLevelRunsAtCall: a codec whose top level reads the clock reads
// it at the call, as in The Things Stack and ChirpStack, not when the
// codec was loaded or a runtime set up ahead of the call.
func TestTopLevelRunsAtCall(t *testing.T) {
	c, err := Compile("clock.js", []byte(`var loaded = Date.now(); function decodeUplink() { return {data: {loaded: loaded}}; }`), relaxed)
	if err != nil {
		t.Fatal(err)
	}
	compiled := time.Now().UnixMilli()
	for time.Now().UnixMilli() <= compiled+1 {
		// Wait out the millisecond (JavaScript's clock resolution) in
		// which the codec was loaded.
	}
	before := time.Now().UnixMilli()
	for i := range 3 {
		res, err := c.Decode(decoders.Input{Bytes: []byte{1}})
		if err != nil {
			t.Fatal(err)
		}
		if loaded := int64(res.DataMap()["loaded"].(float64)); loaded < before {
			t.Fatalf("call %d: top level ran at %d, before the call at %d", i+1, loaded, before)
		}
		res.Record.Release()
	}
}
