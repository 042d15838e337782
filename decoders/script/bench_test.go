package script

import (
	"encoding/hex"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/dop251/goja"

	"github.com/sensorgate/sensorgate/decoders"
)

// benchCodecs are the test codecs and one vector payload of each.
var benchCodecs = []struct {
	model, hex string
	fport      uint8
}{
	{"elsys-ers-co2", "0100e202290400270506060308", 1},
	{"dragino-lht65", "cbf60b0d0376010add7fff", 2},
	{"milesight-em310-udl", "01755c03824408040001", 85},
	{"decentlab-dl-pm", "021b50000f0c25002500270027002701f50107012c012d012d012d67bd618dbd10", 1},
}

// BenchmarkScriptDecode decodes one vector payload per device with the
// JavaScript codec and, for comparison, with the native decoder. Each
// call runs in a fresh runtime, set up on the call's path. Like the
// daemon with a scripts folder, it runs at the collector target TuneGC
// sets; GOGC=100 in the environment measures Go's default instead.
func BenchmarkScriptDecode(b *testing.B) {
	if TuneGC() {
		defer debug.SetGCPercent(100)
	}
	native := decoders.NewRegistry()
	for _, bc := range benchCodecs {
		payload, _ := hex.DecodeString(bc.hex)
		in := decoders.Input{FPort: bc.fport, Bytes: payload}
		c := mustLoad(b, filepath.Join(codecsDir, bc.model+".js"), relaxed)
		nd, _ := native.Lookup(bc.model)
		for _, d := range []struct {
			name string
			dec  decoders.Decoder
		}{{"script", c}, {"native", nd}} {
			b.Run(bc.model+"/"+d.name, func(b *testing.B) {
				b.ReportAllocs()
				defer reportCPU(b)()
				for b.Loop() {
					res, err := d.dec.Decode(in)
					if err != nil {
						b.Fatal(err)
					}
					res.Record.Release() // as the pipeline does
				}
			})
		}
	}
}

// BenchmarkScriptDecodeParallel decodes from GOMAXPROCS goroutines at once,
// each call on a fresh runtime of its own: run with -cpu 1,2 to see whether
// throughput scales with cores (ns/op is per decode across all goroutines,
// so perfect scaling halves it from 1 to 2 CPUs). Like
// BenchmarkScriptDecode it runs at TuneGC's collector target unless GOGC
// is set.
func BenchmarkScriptDecodeParallel(b *testing.B) {
	if TuneGC() {
		defer debug.SetGCPercent(100)
	}
	for _, bc := range benchCodecs {
		payload, _ := hex.DecodeString(bc.hex)
		in := decoders.Input{FPort: bc.fport, Bytes: payload}
		b.Run(bc.model, func(b *testing.B) {
			c := mustLoad(b, filepath.Join(codecsDir, bc.model+".js"), relaxed)
			b.ReportAllocs()
			b.ResetTimer()
			defer reportCPU(b)()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := c.Decode(in)
					if err != nil {
						b.Error(err)
						return
					}
					res.Record.Release()
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
	}
}

// BenchmarkScriptCodecOnly calls each codec's entry points (and
// normalizeUplink) directly, with arguments built once and no export to
// Go: the cost of the codec's own JavaScript in goja, which no change to
// the engine can lower. BenchmarkScriptDecode minus this is the engine.
func BenchmarkScriptCodecOnly(b *testing.B) {
	for _, bc := range benchCodecs {
		payload, _ := hex.DecodeString(bc.hex)
		in := decoders.Input{FPort: bc.fport, Bytes: payload}
		b.Run(bc.model, func(b *testing.B) {
			c := mustLoad(b, filepath.Join(codecsDir, bc.model+".js"), relaxed)
			e, err := c.fresh()
			if err != nil {
				b.Fatal(err)
			}
			args, err := e.args(in)
			if err != nil {
				b.Fatal(err)
			}
			var norm *goja.Object
			if e.normalize != nil {
				ret, err := e.entry(goja.Undefined(), args...)
				if err != nil {
					b.Fatal(err)
				}
				norm = e.rt.NewObject()
				_ = norm.Set("data", ret.ToObject(e.rt).Get("data"))
			}
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				if _, err := e.entry(goja.Undefined(), args...); err != nil {
					b.Fatal(err)
				}
				if norm != nil {
					if _, err := e.normalize(goja.Undefined(), norm); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// reportCPU starts counting CPU time; the function it returns reports it
// per decode as cpu-ns/op. Run it deferred, after the set-up.
func reportCPU(b *testing.B) func() {
	start, ok := cpuTime()
	return func() {
		if end, _ := cpuTime(); ok && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// BenchmarkScriptBuffer decodes with a ChirpStack v4 style codec that
// reads its payload through Buffer: the cost of building Buffer in each
// call's fresh runtime on top of the decode.
func BenchmarkScriptBuffer(b *testing.B) {
	if TuneGC() {
		defer debug.SetGCPercent(100)
	}
	c, err := Compile("cs-buffer.js", []byte(`function decodeUplink(input) {
  var buf = Buffer.from(input.bytes);
  return { data: { temperature: buf.readInt16BE(0) / 100, humidity: buf.readUInt8(2), hex: buf.toString('hex') } };
}`), relaxed)
	if err != nil {
		b.Fatal(err)
	}
	in := decoders.Input{FPort: 1, Bytes: []byte{0x09, 0x29, 0x30}}
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		res, err := c.Decode(in)
		if err != nil {
			b.Fatal(err)
		}
		res.Record.Release()
	}
}

// BenchmarkScriptSetUp sets up one fresh runtime per op, as every decode
// needs one: goja.New, the file's top level, the entry points. This is
// what the fresh state per call adds to BenchmarkScriptCodecOnly and the
// conversion.
func BenchmarkScriptSetUp(b *testing.B) {
	if TuneGC() {
		defer debug.SetGCPercent(100)
	}
	for _, bc := range benchCodecs {
		b.Run(bc.model, func(b *testing.B) {
			c := mustLoad(b, filepath.Join(codecsDir, bc.model+".js"), relaxed)
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				e, err := c.newEngine()
				if err != nil {
					b.Fatal(err)
				}
				e.close()
			}
		})
	}
}
