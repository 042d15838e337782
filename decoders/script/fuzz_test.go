package script

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

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

// FuzzScriptIsolation runs random interleavings of codecs (stateful ones
// among them) and payloads on shared codecs, from two goroutines, and
// compares every decode with the same input decoded alone by a Codec
// loaded for that one call, on a fresh runtime: with a fresh state per
// call, nothing decoded before or beside a payload may change its
// result. Most of the codecs run on locked runtimes (reuse.go);
// lock-probe.js tries, as its payload's first byte picks, each way of
// keeping state or changing a runtime that a locked runtime must turn
// into a failure (and a fresh run) or make impossible, and reports the
// state it can see.
//
// The input is a program: each op is a codec byte, an fPort byte, a
// length byte and that many payload bytes.
func FuzzScriptIsolation(f *testing.F) {
	type source struct{ name, src string }
	var sources []source
	for _, path := range []string{
		filepath.Join(codecsDir, "elsys-ers-co2.js"),
		filepath.Join(codecsDir, "dragino-lht65.js"),
		filepath.Join(codecsDir, "milesight-em310-udl.js"),
		filepath.Join(codecsDir, "decentlab-dl-pm.js"),
		filepath.Join(behaviourDir, "state.js"),
		filepath.Join(behaviourDir, "leaky.js"),
		filepath.Join(behaviourDir, "ttn-v2.js"),
		filepath.Join(behaviourDir, "lock-probe.js"),
	} {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		sources = append(sources, source{filepath.Base(path), string(b)})
	}
	opts := relaxed
	shared := make([]*Codec, len(sources))
	for i, s := range sources {
		c, err := Compile(s.name, []byte(s.src), opts)
		if err != nil {
			f.Fatal(err)
		}
		shared[i] = c
	}
	for _, c := range shared {
		primeLocked(f, c, decoders.Input{FPort: 1, Bytes: []byte{}})
	}
	recv := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	type op struct {
		codec int
		in    decoders.Input
	}
	parse := func(prog []byte) []op {
		var ops []op
		for len(prog) >= 3 && len(ops) < 32 {
			n := min(int(prog[2]), len(prog)-3)
			ops = append(ops, op{
				codec: int(prog[0]) % len(sources),
				in: decoders.Input{FPort: prog[1], Bytes: prog[3 : 3+n], Time: recv,
					Variables: map[string]string{"dev": fmt.Sprint(prog[0])}, DevEUI: fmt.Sprint(prog[0])},
			})
			prog = prog[3+n:]
		}
		return ops
	}
	for _, vc := range loadVectors(f) {
		idx := 0
		for i, s := range sources {
			if s.name == vc.model+".js" {
				idx = i
			}
		}
		prog := append([]byte{byte(idx), vc.in.FPort, byte(len(vc.in.Bytes))}, vc.in.Bytes...)
		f.Add(append(append(prog, 5, 1, 2, 1, 7), prog...)) // a vector, the leaky codec, the vector again
	}
	f.Add([]byte{4, 1, 1, 9, 4, 1, 1, 9, 5, 0, 2, 1, 2, 5, 0, 2, 0, 3})
	for attempt := range byte(56) { // lock-probe: an attempt, then a call that only looks
		f.Add([]byte{7, 1, 2, attempt, 1, 7, 1, 0})
	}
	f.Fuzz(func(t *testing.T, prog []byte) {
		ops := parse(prog)
		want := make([]string, len(ops))
		for i, o := range ops {
			alone, err := Compile(sources[o.codec].name, []byte(sources[o.codec].src), opts)
			if err != nil {
				t.Fatal(err)
			}
			alone.reuse = nil // a fresh runtime, as before locked ones existed
			want[i] = outcome(alone.Decode(o.in))
		}
		for _, c := range shared {
			keepTrying(c)
		}
		got := make([]string, len(ops))
		var wg sync.WaitGroup
		for g := range 2 { // even ops on one goroutine, odd on the other
			wg.Go(func() {
				for i := g; i < len(ops); i += 2 {
					got[i] = outcome(shared[ops[i].codec].Decode(ops[i].in))
				}
			})
		}
		wg.Wait()
		for i := range ops {
			if got[i] != want[i] {
				t.Fatalf("op %d (%s, fPort %d, % x):\ninterleaved %s\n      alone %s", i, sources[ops[i].codec].name, ops[i].in.FPort, ops[i].in.Bytes, got[i], want[i])
			}
		}
	})
}

// FuzzBuffer calls Buffer's native functions with fuzzed bytes, strings,
// encodings and offsets: each call returns or throws a JavaScript error,
// never panics the engine; text round-trips through hex and base64, and
// utf8 decoding gives valid UTF-8, equal to the input when that is valid.
func FuzzBuffer(f *testing.F) {
	f.Add([]byte{0x12, 0x34, 0x56, 0x78}, "1a7", "hex", 1.0, 2.0)
	f.Add([]byte{0xe2, 0x82, 0x61, 0xf0, 0x9f}, "aGVsbG8gd29ybGQ=", "base64", -1.0, 6.0)
	f.Add([]byte{}, "tést", "latin1", 0.5, 0.0)
	f.Add([]byte{0xff, 0xfe, 0xfd}, "\xed\xa0\x80x", "utf16le", 1e9, -3.0)
	c, err := Compile("fuzz-buffer.js", []byte(`function decodeUplink() { return {data: {b: typeof Buffer}}; }`), relaxed)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, p []byte, s, enc string, x, y float64) {
		e, err := c.fresh()
		if err != nil {
			t.Fatal(err)
		}
		defer e.close()
		rt := e.rt
		for k, v := range map[string]any{"p": rt.NewArrayBuffer(append([]byte(nil), p...)), "s": s, "enc": enc, "x": x, "y": y} {
			if err := rt.Set(k, v); err != nil {
				t.Fatal(err)
			}
		}
		_, err = rt.RunString(`
var buf = Buffer.from(new Uint8Array(p));
var calls = [
  function () { return Buffer.from(s, enc); },
  function () { return Buffer.from(s, enc).toString(enc); },
  function () { return buf.toString(enc, x, y); },
  function () { return buf.readUIntLE(x, y); },
  function () { return buf.readIntBE(x, y); },
  function () { return buf.readUInt16BE(x); },
  function () { return buf.readInt32LE(x); },
  function () { return buf.readDoubleBE(x); },
  function () { return buf.readBigInt64LE(x); },
  function () { return buf.writeUInt32LE(x, y); },
  function () { return buf.writeIntBE(x, y, 3); },
  function () { return buf.writeFloatLE(x, y); },
  function () { return buf.writeBigUInt64BE(BigInt(Math.trunc(x) || 0), y); },
  function () { return buf.indexOf(s, x, enc); },
  function () { return buf.lastIndexOf(s, x); },
  function () { return buf.fill(s, x, y, enc); },
  function () { return buf.write(s, x, y, enc); },
  function () { return buf.copy(Buffer.alloc(8), x, y); },
  function () { return buf.compare(Buffer.from(s), x, y); },
  function () { return buf.slice(x, y).length; },
  function () { return Buffer.concat([buf, Buffer.from(s)], Math.abs(x) % 64); },
  function () { return Buffer.alloc(Math.abs(y) % 64, s, enc); },
  function () { return buf.swap16(); },
  function () { return Buffer.byteLength(s, enc); },
];
for (var i = 0; i < calls.length; i++) {
  try { calls[i](); } catch (err) {
    if (!(err instanceof RangeError) && !(err instanceof TypeError)) { throw new Error("call " + i + " threw " + err); }
  }
}
if (Buffer.from(buf.toString('hex'), 'hex').toString('hex') !== buf.toString('hex')) throw new Error("hex round trip");
if (!Buffer.from(buf.toString('base64'), 'base64').equals(buf)) throw new Error("base64 round trip");
if (!Buffer.from(buf.toString('base64url'), 'base64url').equals(buf)) throw new Error("base64url round trip");
if (!Buffer.from(buf.toString('latin1'), 'latin1').equals(buf)) throw new Error("latin1 round trip");
`)
		if err != nil {
			t.Fatal(err)
		}
		if got := utf8Text(p); !utf8.ValidString(got) || (utf8.Valid(p) && got != string(p)) {
			t.Fatalf("utf8Text(% x) = %q", p, got)
		}
	})
}
