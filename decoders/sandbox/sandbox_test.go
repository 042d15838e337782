package sandbox

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/decoders/script"
)

// TestMain lets the test binary act as a worker: the pool starts
// os.Executable() with EnvWorker set.
func TestMain(m *testing.M) {
	if IsWorker() {
		os.Exit(ServeWorker())
	}
	os.Exit(m.Run())
}

const (
	codecsDir  = "../../testdata/codecs"
	hostileDir = "../../testdata/codecs/hostile"
)

func readCodec(t testing.TB, path string) []byte {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func newPool(t testing.TB, cfg Config) *Pool {
	t.Helper()
	p := New(cfg)
	t.Cleanup(func() { p.Close() })
	return p
}

func load(t testing.TB, p *Pool, path string) *Codec {
	t.Helper()
	c, err := p.Load(filepath.Base(path), readCodec(t, path))
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return c
}

var elsysIn = func() decoders.Input {
	b, _ := hex.DecodeString("0100e202290400270506060308")
	return decoders.Input{FPort: 1, Bytes: b, Time: time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)}
}()

// TestDecodeMatchesInProcess: a codec decoded through a worker gives
// what it gives in-process: data, samples, warnings, and rejections as
// *script.RejectedError.
func TestDecodeMatchesInProcess(t *testing.T) {
	p := newPool(t, Config{Workers: 1})
	for _, tc := range []struct {
		file string
		in   decoders.Input
	}{
		{"elsys-ers-co2.js", elsysIn},
		{"dragino-lht65.js", decoders.Input{FPort: 2, Bytes: mustHex("cbf60b0d0376010add7fff")}},
		{"dragino-lht65.js", decoders.Input{FPort: 9, Bytes: mustHex("cbf60b0d0376010add7fff")}},
		{"milesight-em310-udl.js", decoders.Input{FPort: 85, Bytes: mustHex("01755c03824408040001"), Variables: map[string]string{"b": "2", "a": "1"}}},
		{"decentlab-dl-pm.js", decoders.Input{FPort: 1, Bytes: mustHex("021b50000f0c25002500270027002701f50107012c012d012d012d67bd618dbd10")}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(codecsDir, tc.file)
			local, err := script.LoadFile(path, script.Options{})
			if err != nil {
				t.Fatal(err)
			}
			remote := load(t, p, path)
			if remote.Style() != local.Style() || remote.HasNormalize() != local.HasNormalize() {
				t.Errorf("style %v/%v normalize %v/%v", remote.Style(), local.Style(), remote.HasNormalize(), local.HasNormalize())
			}
			want, werr := local.Decode(tc.in)
			got, gerr := remote.Decode(tc.in)
			if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
				t.Fatalf("error %v, in-process %v", gerr, werr)
			}
			var wrej, grej *script.RejectedError
			if errors.As(werr, &wrej) != errors.As(gerr, &grej) || !errors.Is(gerr, decoders.ErrInvalid) == (werr != nil && errors.Is(werr, decoders.ErrInvalid)) {
				t.Errorf("error kinds differ: %#v vs %#v", gerr, werr)
			}
			if werr != nil {
				return
			}
			if !equalJSON(t, got.DataMap(), want.DataMap()) || !equalJSON(t, got.Samples, want.Samples) || !equalJSON(t, got.Warnings, want.Warnings) {
				t.Errorf("worker result\n%v %v %v\nin-process\n%v %v %v", got.DataMap(), got.Samples, got.Warnings, want.DataMap(), want.Samples, want.Warnings)
			}
		})
	}
}

// TestHostileCodecs: each hostile codec costs its uplink an error (what
// the pipeline dead-letters) within a second of wall time, the worker it
// wrecked is replaced, and the next uplink of a good codec decodes.
func TestHostileCodecs(t *testing.T) {
	for _, tc := range []struct {
		file string
		// killed are the reasons its worker may be killed for; none: the
		// worker survives (goja's interrupt or an ordinary codec error).
		killed []Reason
		// retired: goja's interrupt stopped the call, and the worker is
		// replaced all the same (its heap may be left near the limit).
		retired bool
	}{
		{"regex-lookahead.js", []Reason{ReasonTimeout}, false},
		{"regex-backref.js", []Reason{ReasonTimeout}, false},
		// Filling a billion slots either hits the memory limit or, with
		// the collector fighting to stay under it, the deadline.
		{"array-fill.js", []Reason{ReasonMemory, ReasonTimeout}, false},
		{"repeat.js", []Reason{ReasonMemory}, false},
		{"recursion.js", nil, false},
		{"try-finally-loop.js", nil, true},
		{"huge-output.js", nil, false},
		{"getter-loop.js", nil, true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			p := newPool(t, Config{Workers: 1})
			hostile := load(t, p, filepath.Join(hostileDir, tc.file))
			good := load(t, p, filepath.Join(codecsDir, "elsys-ers-co2.js"))
			for i := range 2 { // the second time on a replacement worker, quarantined
				start := time.Now()
				res, err := hostile.Decode(elsysIn)
				took := time.Since(start)
				if err == nil {
					t.Fatalf("call %d: decoded %v, want an error", i, res.DataMap())
				}
				if took >= time.Second {
					t.Errorf("call %d: error after %v, want within 1s: %v", i, took, err)
				}
				t.Logf("call %d: %v after %v", i, err, took)
			}
			res, err := good.Decode(elsysIn)
			if err != nil {
				t.Fatalf("good codec after the hostile one: %v", err)
			}
			if v, _ := res.Record.Lookup("temperature"); v.Num != 22.6 {
				t.Errorf("temperature %v", v)
			}
			st := p.Stats()
			kills := 0
			for _, r := range tc.killed {
				kills += int(st.Killed[r])
			}
			total := 0
			for _, n := range st.Killed {
				total += int(n)
			}
			if want := 2 * min(1, len(tc.killed)); kills != want || total != kills {
				t.Errorf("kills %v, want 2 of reasons %v", st.Killed, tc.killed)
			}
			want := uint64(1 + kills)
			if tc.retired {
				want = 3
				if st.Timeouts != 2 {
					t.Errorf("%d in-worker timeouts, want 2", st.Timeouts)
				}
			}
			if st.Started != want {
				t.Errorf("%d workers started, want %d (one, and a replacement per kill or timeout)", st.Started, want)
			}
			if h := p.Health(); kills > 0 && len(h.Killed) == 0 {
				t.Errorf("health %+v, want kills reported", h)
			}
		})
	}
}

// TestRegexWithoutLookahead: the control of the regex cases decodes.
func TestRegexWithoutLookahead(t *testing.T) {
	p := newPool(t, Config{Workers: 1})
	res, err := load(t, p, filepath.Join(hostileDir, "regex-plain.js")).Decode(elsysIn)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.DataMap()["match"]; got != false {
		t.Errorf("match %v", got)
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
