package script

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/decoders"
)

const behaviourDir = codecsDir + "/behaviour"

func behaviour(t testing.TB, name string, opts Options) *Codec {
	t.Helper()
	return mustLoad(t, filepath.Join(behaviourDir, name+".js"), opts)
}

func TestStyles(t *testing.T) {
	for _, tc := range []struct {
		path      string
		style     Style
		normalize bool
	}{
		{codecsDir + "/elsys-ers-co2.js", StyleUplink, true},
		{codecsDir + "/dragino-lht65.js", StyleUplink, false},
		{codecsDir + "/milesight-em310-udl.js", StyleUplink, false},
		{codecsDir + "/decentlab-dl-pm.js", StyleChirpStackV3, false},
		{behaviourDir + "/ttn-v2.js", StyleTTNv2, false},
	} {
		c := mustLoad(t, tc.path, Options{})
		if c.Style() != tc.style || c.HasNormalize() != tc.normalize {
			t.Errorf("%s: style %v normalize %v, want %v %v", tc.path, c.Style(), c.HasNormalize(), tc.style, tc.normalize)
		}
		if want := strings.TrimSuffix(filepath.Base(tc.path), ".js"); c.Model() != want {
			t.Errorf("%s: model %q, want %q", tc.path, c.Model(), want)
		}
	}
}

// TestInfiniteLoop: a looping codec costs one error within the time limit,
// and the codec decodes the next payload normally.
func TestInfiniteLoop(t *testing.T) {
	// 300 ms rather than less: the decode after the timeout must not
	// itself time out on a loaded test machine.
	c := behaviour(t, "loop", Options{Timeout: 300 * time.Millisecond})
	for range 2 {
		start := time.Now()
		_, err := c.Decode(decoders.Input{Bytes: []byte{0xff}})
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("interrupted after %v", d)
		}
		want := "script: codec loop.js: decodeUplink took longer than 300ms: fix the loop or raise decoders.timeout"
		if err.Error() != want {
			t.Fatalf("message %q, want %q", err, want)
		}
		res, err := c.Decode(decoders.Input{Bytes: []byte{1, 2, 3}})
		if err != nil {
			t.Fatalf("after a timeout: %v", err)
		}
		if res.DataMap()["length"] != 3.0 {
			t.Fatalf("after a timeout: data %v", res.DataMap())
		}
	}
}

func TestFailures(t *testing.T) {
	for _, tc := range []struct {
		codec string
		is    error
		msg   string // substring of the message
	}{
		{"recursion", ErrCodec, "exceeded the call depth limit of 256"},
		{"throw", ErrCodec, "Decode threw Error: cannot read payload of 2 bytes"},
		{"errors", decoders.ErrInvalid, "decodeUplink reported errors: first problem; second problem"},
		{"normalize-unknown", decoders.ErrUnknownQuantity, `"air.flux"`},
		{"getter-loop", ErrTimeout, "took longer than"},
		{"cyclic", ErrCodec, "cyclic"},
		{"huge", ErrCodec, "more than 100000 values"},
		{"bad-return", ErrCodec, "decodeUplink returned int64 (42), want an object {data, errors, warnings}"},
	} {
		t.Run(tc.codec, func(t *testing.T) {
			c := behaviour(t, tc.codec, Options{Timeout: 300 * time.Millisecond})
			_, err := c.Decode(decoders.Input{FPort: 1, Bytes: []byte{1, 2}})
			if !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), tc.codec+".js") {
				t.Fatalf("message %q lacks %q or the file name", err, tc.msg)
			}
		})
	}
}

func TestRejectedMessages(t *testing.T) {
	_, err := behaviour(t, "errors", relaxed).Decode(decoders.Input{Bytes: []byte{1}})
	var rej *RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("err = %v, want *RejectedError", err)
	}
	if want := []string{"first problem", "second problem"}; !reflect.DeepEqual(rej.Messages, want) || rej.Func != "decodeUplink" || rej.Codec != "errors.js" {
		t.Fatalf("%+v", rej)
	}
	// The Dragino codec's error, as the vector expects it.
	_, err = mustLoad(t, codecsDir+"/dragino-lht65.js", relaxed).Decode(decoders.Input{FPort: 42, Bytes: make([]byte, 11)})
	if !errors.As(err, &rej) || !reflect.DeepEqual(rej.Messages, []string{"unknown FPort"}) {
		t.Fatalf("err = %v", err)
	}
}

func TestWarnings(t *testing.T) {
	res, err := behaviour(t, "warnings", relaxed).Decode(decoders.Input{Bytes: []byte{7}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"battery low", "clock not set"}; !reflect.DeepEqual(res.Warnings, want) {
		t.Fatalf("warnings %q, want %q", res.Warnings, want)
	}
	if res.DataMap()["level"] != 7.0 {
		t.Fatalf("data %v", res.DataMap())
	}
}

// TestNormalizeRange: an out-of-range value is dropped with a warning, the
// rest of the measurement stays, and a measurement's own time is kept.
// The temperature copied from the decoded key t names it; the humidity,
// dropped, names nothing, so decoded_<model> keeps it.
func TestNormalizeRange(t *testing.T) {
	c := behaviour(t, "normalize-range", relaxed)
	res, err := c.Decode(decoders.Input{Bytes: []byte{150}})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	want := []decoders.Sample{
		{Quantity: "air.temperature", Value: decoders.NumberVal(21.5), Key: "t"},
		{Quantity: "air.temperature", Value: decoders.NumberVal(20.0), Time: at},
	}
	if !reflect.DeepEqual(res.Samples, want) {
		t.Fatalf("samples %+v, want %+v", res.Samples, want)
	}
	if len(res.Warnings) != 2 || res.Warnings[0] != "normalized by the test codec" || !strings.Contains(res.Warnings[1], "air.relativeHumidity: 150 % out of range, dropped") {
		t.Fatalf("warnings %q", res.Warnings)
	}
	out, err := c.Run(decoders.Input{Bytes: []byte{50}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Normalized) != 2 || len(out.NormalizeWarnings) != 1 || len(out.Warnings) != 0 {
		t.Fatalf("output %+v", out)
	}
}

// TestElsysNormalize: the samples of the Elsys codec's normalizeUplink
// equal those of the native decoder's mapping for the vector payload.
func TestElsysNormalize(t *testing.T) {
	b, _ := hex.DecodeString("0100e202290400270506060308")
	res, err := mustLoad(t, codecsDir+"/elsys-ers-co2.js", relaxed).Decode(decoders.Input{FPort: 1, Bytes: b})
	if err != nil {
		t.Fatal(err)
	}
	native, _ := decoders.NewRegistry().Lookup("elsys-ers-co2")
	nres, err := native.Decode(decoders.Input{FPort: 1, Bytes: b})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sampleSet(res.Samples), sampleSet(nres.Samples); !reflect.DeepEqual(got, want) {
		t.Fatalf("script samples %v, native %v", got, want)
	}
}

func sampleSet(s []decoders.Sample) map[string]any {
	m := map[string]any{}
	for _, x := range s {
		m[x.Quantity+"#"+x.Channel] = x.Value.Any()
	}
	return m
}

func TestShapes(t *testing.T) {
	c := behaviour(t, "shapes", relaxed)
	recv := time.Date(2024, 6, 1, 12, 30, 0, 0, time.UTC)
	tenth, fifth := 0.1, 0.2 // variables: Go folds constant 0.1+0.2 to exactly 0.3
	res, err := c.Decode(decoders.Input{FPort: 9, Bytes: []byte{1}, Time: recv, Variables: map[string]string{"site": "north"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"int":      42.0,
		"negative": -7.0,
		"float":    tenth + fifth,
		"big":      4294967296.0,
		"text":     "x",
		"flag":     true,
		"none":     nil,
		"nan":      nil,
		"nested":   map[string]any{"list": []any{1.0, 2.5, "three", map[string]any{"four": 4.0}}, "empty": map[string]any{}},
		"typed":    []any{1.0, 2.0, 255.0},
		"when":     "2024-05-01T10:00:00.123Z",
		"recv":     "2024-06-01T12:30:00.000Z",
		"fport":    9.0,
		"vars":     map[string]any{"site": "north"},
	}
	if !reflect.DeepEqual(res.DataMap(), want) {
		t.Fatalf("data\n got %#v\nwant %#v", res.DataMap(), want)
	}
}

func TestTTNv2(t *testing.T) {
	res, err := behaviour(t, "ttn-v2", relaxed).Decode(decoders.Input{FPort: 3, Bytes: []byte{5}})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"port": 3.0, "first": 5.0, "half": 2.5}; !reflect.DeepEqual(res.DataMap(), want) {
		t.Fatalf("data %v", res.DataMap())
	}
}

// TestVariables: ChirpStack device variables reach the codec.
func TestVariables(t *testing.T) {
	c := mustLoad(t, codecsDir+"/milesight-em310-udl.js", relaxed)
	b, _ := hex.DecodeString("01755c03824408040001")
	res, err := c.Decode(decoders.Input{FPort: 85, Bytes: b, Variables: map[string]string{"mount_height_mm": "2500"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.DataMap()["fill_mm"] != 384.0 {
		t.Fatalf("data %v", res.DataMap())
	}
}

func TestMappings(t *testing.T) {
	opts := Options{Timeout: 10 * time.Second, Mappings: map[string][]decoders.Mapping{
		"milesight-em310-udl": {
			{Key: "distance", Quantity: "level.distance", Scale: 0.001},
			{Key: "battery", Quantity: "batteryLevel"},
		},
	}}
	c := mustLoad(t, codecsDir+"/milesight-em310-udl.js", opts)
	b, _ := hex.DecodeString("01755c03824408040001")
	res, err := c.Decode(decoders.Input{FPort: 85, Bytes: b})
	if err != nil {
		t.Fatal(err)
	}
	want := []decoders.Sample{{Quantity: "level.distance", Value: decoders.NumberVal(2116 * 0.001), Key: "distance"}, {Quantity: "batteryLevel", Value: decoders.NumberVal(92.0), Key: "battery"}}
	if !reflect.DeepEqual(res.Samples, want) {
		t.Fatalf("samples %+v", res.Samples)
	}

	opts.Mappings["milesight-em310-udl"] = []decoders.Mapping{{Key: "distance", Quantity: "level.nonsense"}}
	if _, err := LoadFile(codecsDir+"/milesight-em310-udl.js", opts); !errors.Is(err, ErrLoad) || !strings.Contains(err.Error(), "level.nonsense") {
		t.Fatalf("err = %v", err)
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, msg string }{
		{"syntax", "function decodeUplink(input) { return {data: {}}", "does not compile"},
		{"no-entry", "function decode(input) { return {} }", "defines none of decodeUplink"},
		{"top-throw", "throw new Error('boom'); function decodeUplink(i) {}", "boom"},
		{"top-loop", "for (;;) {} function decodeUplink(i) {}", "top level ran longer than 10ms: it runs before every call"},
		{"normalize-not-fn", "function decodeUplink(i) {} var normalizeUplink = 3;", "normalizeUplink is not a function"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Only the endless top level needs the short limit: on a loaded
			// machine even a trivial top level can take 10 ms of wall time.
			limit := 10 * time.Second
			if tc.name == "top-loop" {
				limit = 10 * time.Millisecond
			}
			_, err := Compile(tc.name+".js", []byte(tc.src), Options{Timeout: limit})
			if !errors.Is(err, ErrLoad) || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), tc.name+".js") {
				t.Fatalf("err = %v, want ErrLoad with %q", err, tc.msg)
			}
		})
	}
}

// TestConcurrent decodes from 16 goroutines at once (run with -race): each
// decode gets a runtime of its own and the same answer.
func TestConcurrent(t *testing.T) {
	codecs := map[string]*Codec{}
	// The time box is wall time: with -race on a box shared with other
	// work, a good decode waiting for a core took over a second, so only
	// the looping codec gets a tighter limit (which also bounds the run
	// of its top level that sets up each call's fresh state).
	for _, model := range scriptVectors {
		codecs[model] = mustLoad(t, filepath.Join(codecsDir, model+".js"), relaxed)
	}
	loop := behaviour(t, "loop", Options{Timeout: DefaultTimeout})
	vectors := loadVectors(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				vc := vectors[(g+i)%len(vectors)]
				res, err := codecs[vc.model].Decode(vc.in)
				if len(vc.errors) > 0 {
					if err == nil {
						errs <- errors.New(vc.name + ": no error")
						return
					}
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				if !reflect.DeepEqual(comparable(res.DataMap()), comparable(vc.data)) {
					errs <- errors.New(vc.name + ": wrong data under concurrency")
					return
				}
				if i%10 == g%10 {
					if _, err := loop.Decode(decoders.Input{Bytes: []byte{0xff}}); !errors.Is(err, ErrTimeout) {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestCodecHugeOutput: a billion-element sparse array in the data, in
// normalizeUplink's data or as the errors list costs an error each, at
// once, not memory without end.
func TestCodecHugeOutput(t *testing.T) {
	c := behaviour(t, "huge", Options{Timeout: 300 * time.Millisecond})
	for fport, want := range map[uint8]string{
		1: "decodeUplink data: values: more than 100000 values",
		2: "normalizeUplink data: extra: more than 100000 values",
		3: "decodeUplink returned 1000000001 errors, more than 100000",
	} {
		_, err := c.Decode(decoders.Input{FPort: fport, Bytes: []byte{1}})
		if !errors.Is(err, ErrCodec) || !strings.Contains(err.Error(), want) {
			t.Errorf("fPort %d: err = %v, want ErrCodec with %q", fport, err, want)
		}
	}
}

// TestConsole: console output goes to the debug log with the codec, its
// model and the device, each message cut at maxConsoleBytes and each
// call's messages cut at maxConsoleMessages, with the cuts marked; with
// debug off nothing is logged.
func TestConsole(t *testing.T) {
	src := `function decodeUplink(input) {
  console.log("first", input.bytes.length, {toString: function () { return "obj"; }}, Symbol("s"));
  console.warn("x".repeat(5000));
  console.error("é".repeat(2000));
  for (var i = 0; i < 40; i++) { console.debug("n", i); }
  return {data: {ok: true}};
}`
	var buf strings.Builder
	var mu sync.Mutex
	logger := zerolog.New(syncWriter{&mu, &buf}).Level(zerolog.DebugLevel)
	c, err := Compile("talky.js", []byte(src), Options{Timeout: relaxed.Timeout, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decode(decoders.Input{Bytes: []byte{1, 2}, DevEUI: "70b3d57ed0000001"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	mu.Unlock()
	if len(lines) != maxConsoleMessages+1 {
		t.Fatalf("%d lines, want %d messages and one saying the rest were dropped", len(lines), maxConsoleMessages+1)
	}
	type entry struct {
		Level, Message, Codec, Model string
		DevEUI                       string `json:"dev_eui"`
		Truncated                    bool
	}
	var entries []entry
	for _, l := range lines {
		var e entry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if e.Level != "debug" || e.Codec != "talky.js" || e.Model != "talky" || e.DevEUI != "70b3d57ed0000001" {
			t.Fatalf("entry %+v lacks the codec, model or device", e)
		}
		if len(e.Message) > maxConsoleBytes+len(" …[truncated]") {
			t.Fatalf("message of %d bytes", len(e.Message))
		}
		entries = append(entries, e)
	}
	if entries[0].Message != "first 2 obj Symbol(s)" || entries[0].Truncated {
		t.Errorf("first message %+v", entries[0])
	}
	for _, e := range entries[1:3] {
		if !e.Truncated || !strings.HasSuffix(e.Message, " …[truncated]") || !utf8.ValidString(e.Message) {
			t.Errorf("long message not cut and marked: %q… truncated=%v", e.Message[:20], e.Truncated)
		}
	}
	if entries[3].Message != "n 0" {
		t.Errorf("fourth message %q", entries[3].Message)
	}
	if last := entries[len(entries)-1].Message; !strings.Contains(last, "dropped after 20 messages") {
		t.Errorf("last line %q", last)
	}

	// The bound is per call: the next call logs again.
	mu.Lock()
	buf.Reset()
	mu.Unlock()
	if _, err := c.Decode(decoders.Input{Bytes: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if n := strings.Count(buf.String(), "\n"); n != maxConsoleMessages+1 {
		t.Errorf("second call: %d lines", n)
	}
	buf.Reset()
	mu.Unlock()

	quiet, err := Compile("talky.js", []byte(src), Options{Timeout: relaxed.Timeout, Logger: logger.Level(zerolog.InfoLevel)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := quiet.Decode(decoders.Input{Bytes: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if buf.Len() != 0 {
		t.Errorf("info level logged %q", buf.String())
	}
}

type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
