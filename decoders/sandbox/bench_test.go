package sandbox

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/decoders/script"
)

// benchCodecs are BenchmarkScriptDecode's test codecs and payloads.
var benchCodecs = []struct {
	model, hex string
	fport      uint8
}{
	{"elsys-ers-co2", "0100e202290400270506060308", 1},
	{"dragino-lht65", "cbf60b0d0376010add7fff", 2},
	{"milesight-em310-udl", "01755c03824408040001", 85},
	{"decentlab-dl-pm", "021b50000f0c25002500270027002701f50107012c012d012d012d67bd618dbd10", 1},
}

// BenchmarkSandboxDecode decodes each test codec's payload through one
// worker process and, for comparison, in-process. cpu-ns/op is the CPU
// of both sides per decode: this process (getrusage) plus the worker
// (/proc/<pid>/stat); with -count N the two run interleaved, so take
// medians:
//
//	go test -run '^$' -bench SandboxDecode -count 5 ./decoders/sandbox
func BenchmarkSandboxDecode(b *testing.B) {
	for _, bc := range benchCodecs {
		payload, _ := hex.DecodeString(bc.hex)
		in := decoders.Input{FPort: bc.fport, Bytes: payload, Time: time.Unix(1700000000, 0)}
		path := filepath.Join(codecsDir, bc.model+".js")
		b.Run(bc.model+"/worker", func(b *testing.B) {
			p := New(Config{Workers: 1})
			defer p.Close()
			c := load(b, p, path)
			benchDecode(b, c, in, func() []int { return workerPIDs(p) })
		})
		b.Run(bc.model+"/inprocess", func(b *testing.B) {
			c, err := script.LoadFile(path, script.Options{})
			if err != nil {
				b.Fatal(err)
			}
			benchDecode(b, c, in, func() []int { return nil })
		})
	}
}

// BenchmarkSandboxDecodeParallel decodes the first test codec's payload
// from 32 goroutines through two workers, the way the pipeline's
// handlers share them under load, with queued calls batched and, for
// comparison, each sent on its own. cpu-ns/op is as in
// BenchmarkSandboxDecode:
//
//	go test -run '^$' -bench SandboxDecodeParallel -count 5 ./decoders/sandbox
func BenchmarkSandboxDecodeParallel(b *testing.B) {
	for _, bc := range benchCodecs {
		payload, _ := hex.DecodeString(bc.hex)
		in := decoders.Input{FPort: bc.fport, Bytes: payload, Time: time.Unix(1700000000, 0)}
		path := filepath.Join(codecsDir, bc.model+".js")
		for _, mode := range []struct {
			name    string
			noBatch bool
		}{{"batched", false}, {"single", true}} {
			b.Run(bc.model+"/"+mode.name, func(b *testing.B) {
				p := New(Config{Workers: 2, noBatch: mode.noBatch})
				defer p.Close()
				c := load(b, p, path)
				if _, err := c.Decode(in); err != nil { // proven; workers started
					b.Fatal(err)
				}
				var pids []int
				held := holdSlotsB(p)
				for _, s := range held {
					if s.p != nil {
						pids = append(pids, s.p.cmd.Process.Pid)
					}
				}
				for _, s := range held {
					p.release(s)
				}
				b.ReportAllocs()
				b.SetParallelism(16) // 16 × GOMAXPROCS goroutines
				start := cpuNow(b, pids)
				b.ResetTimer()
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
				b.StopTimer()
				if end := cpuNow(b, pids); b.N > 0 {
					b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
				}
			})
		}
	}
}

// holdSlotsB takes every slot (a worker started in each).
func holdSlotsB(p *Pool) []*slot {
	var held []*slot
	for range p.cfg.Workers {
		s := <-p.idle
		_, _ = p.worker(s)
		held = append(held, s)
	}
	return held
}

func benchDecode(b *testing.B, d decoders.Decoder, in decoders.Input, pids func() []int) {
	if _, err := d.Decode(in); err != nil { // warm: workers started, codec compiled
		b.Fatal(err)
	}
	b.ReportAllocs()
	start := cpuNow(b, pids())
	b.ResetTimer()
	for b.Loop() {
		res, err := d.Decode(in)
		if err != nil {
			b.Fatal(err)
		}
		res.Record.Release()
	}
	b.StopTimer()
	if end := cpuNow(b, pids()); b.N > 0 {
		b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
	}
}

// cpuNow is this process's CPU time plus that of the workers in pids.
func cpuNow(b *testing.B, pids []int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	total := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	for _, pid := range pids {
		total += procCPU(b, pid)
	}
	return total
}

// procCPU reads utime+stime of pid from /proc/<pid>/stat (clock ticks,
// 100 per second on Linux).
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// BenchmarkSandboxE2ECodec decodes with the end-to-end benchmark's
// JavaScript Cayenne codec (testdata/codecs/bench: decodeUplink and a
// normalizeUplink that reads every decoded value), in a worker and
// in-process, cpu-ns/op as in BenchmarkSandboxDecode. It is the codec
// whose normalizeUplink reads are tracked per value (script/readtrack.go),
// which the vector codecs above barely exercise:
//
//	go test -run '^$' -bench SandboxE2ECodec -count 5 ./decoders/sandbox
func BenchmarkSandboxE2ECodec(b *testing.B) {
	payload, _ := hex.DecodeString("0167006302685c0373277c") // temperature, humidity, pressure on channels 1-3
	in := decoders.Input{FPort: 2, Bytes: payload, Time: time.Unix(1700000000, 0)}
	path := filepath.Join(codecsDir, "bench", "cayenne-lpp.js")
	b.Run("worker", func(b *testing.B) {
		p := New(Config{Workers: 1})
		defer p.Close()
		c := load(b, p, path)
		benchDecode(b, c, in, func() []int { return workerPIDs(p) })
	})
	b.Run("inprocess", func(b *testing.B) {
		c, err := script.LoadFile(path, script.Options{})
		if err != nil {
			b.Fatal(err)
		}
		benchDecode(b, c, in, func() []int { return nil })
	})
}
