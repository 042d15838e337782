package sandbox

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

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
// what it gives in-process: data, samples (with the decoded keys they
// repeat), warnings, and rejections as *script.RejectedError.
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
			if local.HasNormalize() && !slices.ContainsFunc(got.Samples, func(s decoders.Sample) bool { return s.Key != "" }) {
				t.Errorf("no sample of normalizeUplink names the decoded key it repeats: %+v", got.Samples)
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
		// killed are the reasons its worker may be killed for, and
		// mustKill says whether it is killed every time: a codec whose
		// call goja interrupts in time or that fails in an ordinary way
		// leaves it alive.
		killed   []Reason
		mustKill bool
	}{
		{"regex-lookahead.js", []Reason{ReasonTimeout}, true},
		{"regex-backref.js", []Reason{ReasonTimeout}, true},
		// Filling a billion slots either hits the memory limit or, with
		// the collector fighting to stay under it, the deadline.
		{"array-fill.js", []Reason{ReasonMemory, ReasonTimeout}, true},
		{"repeat.js", []Reason{ReasonMemory}, true},
		{"recursion.js", nil, false},
		// Goja interrupts these after decoders.timeout; on a machine
		// too loaded to get there before worker_timeout, the kill does.
		{"try-finally-loop.js", []Reason{ReasonTimeout}, false},
		{"huge-output.js", []Reason{ReasonTimeout}, false},
		{"getter-loop.js", []Reason{ReasonTimeout}, false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			// Two workers, both running before the calls: the second call
			// takes the other one while the first one's replacement (after
			// a kill or an interrupt) starts, as in the daemon, so each
			// call's time is its own.
			p := newPool(t, Config{Workers: 2})
			hostile := load(t, p, filepath.Join(hostileDir, tc.file))
			good := load(t, p, filepath.Join(codecsDir, "elsys-ers-co2.js"))
			awaitLive(t, p, 2)
			for i := range 2 {
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
			kills, total := 0, 0
			for _, r := range tc.killed {
				kills += int(st.Killed[r])
			}
			for _, n := range st.Killed {
				total += int(n)
			}
			if total != kills || (tc.mustKill && kills != 2) {
				t.Errorf("kills %v, want only %v (2 of them: %v)", st.Killed, tc.killed, tc.mustKill)
			}
			// Every kill, and every call goja interrupted, gets its
			// worker replaced.
			// Replacements start in the background: wait for them.
			want := 2 + uint64(kills) + st.Timeouts
			for deadline := time.Now().Add(30 * time.Second); p.Stats().Started < want && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
			if st := p.Stats(); st.Started != want {
				t.Errorf("%d workers started, want %d (one, and a replacement per kill or timeout: %v, %d)", st.Started, want, st.Killed, st.Timeouts)
			}
			if h := p.Health(); (kills > 0 || st.Timeouts > 0) && !h.Degraded() {
				t.Errorf("health %+v, want the kills and timeouts reported", h)
			}
		})
	}
}

// awaitLive waits until n workers run (started in the background).
func awaitLive(t *testing.T, p *Pool, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for p.Stats().Live != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers running, want %d", p.Stats().Live, n)
		}
		time.Sleep(5 * time.Millisecond)
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

// TestManyCodecVersions: a worker that has compiled maxCodecs versions,
// or its budget of source (overBudget), of a codec file edited over and
// over is replaced, not failed, and not killed for its memory.
func TestManyCodecVersions(t *testing.T) {
	p := newPool(t, Config{Workers: 1, ScriptTimeout: 10 * time.Second, CallTimeout: 40 * time.Second})
	src := readCodec(t, filepath.Join(codecsDir, "elsys-ers-co2.js"))
	for i := range maxCodecs + 2 {
		c, err := p.Load("elsys-ers-co2.js", append(append([]byte{}, src...), fmt.Sprintf("\n// version %d\n", i)...))
		if err != nil {
			t.Fatalf("version %d: %v", i, err)
		}
		res, err := c.Decode(elsysIn)
		if err != nil {
			t.Fatalf("version %d: %v", i, err)
		}
		res.Record.Release()
	}
	st := p.Stats()
	var killed uint64
	for _, k := range st.Killed {
		killed += k
	}
	if st.Started < 2 || killed != 0 {
		t.Errorf("%d workers started, kills %v: want the worker replaced at its bound (%d versions or its source budget), never killed", st.Started, st.Killed, maxCodecs)
	}
}

// TestQuarantine: a codec that killed two workers runs on one slot only,
// so a good codec keeps decoding on the other worker while the hostile
// one's uplinks pile in; every hostile call fails, every good one
// decodes.
func TestQuarantine(t *testing.T) {
	p := newPool(t, Config{Workers: 2})
	hostile := load(t, p, filepath.Join(hostileDir, "regex-lookahead.js"))
	good := load(t, p, filepath.Join(codecsDir, "elsys-ers-co2.js"))
	for range quarantineStrikes {
		if _, err := hostile.Decode(elsysIn); !errors.Is(err, ErrKilled) {
			t.Fatalf("hostile call: %v, want ErrKilled", err)
		}
	}
	if !hostile.suspect() {
		t.Fatal("not quarantined after two kills")
	}
	var wg sync.WaitGroup
	hostileErrs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := hostile.Decode(elsysIn)
			hostileErrs <- err
		}()
	}
	stop := make(chan struct{})
	goodDone := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				goodDone <- n
				return
			default:
			}
			res, err := good.Decode(elsysIn)
			if err != nil {
				t.Errorf("good codec during the quarantine: %v", err)
				goodDone <- n
				return
			}
			res.Record.Release()
			n++
		}
	}()
	wg.Wait()
	close(stop)
	if n := <-goodDone; n == 0 {
		t.Error("the good codec decoded nothing while the hostile one ran")
	}
	close(hostileErrs)
	for err := range hostileErrs {
		if !errors.Is(err, ErrKilled) && !errors.Is(err, ErrQuarantined) {
			t.Errorf("hostile call: %v, want killed or quarantined", err)
		}
	}
}

// TestCloseReapsWorkers: Close stops every worker, even one in a runaway
// call, reaps them all, and later calls fail with ErrClosed.
func TestCloseReapsWorkers(t *testing.T) {
	p := New(Config{Workers: 2})
	hostile := load(t, p, filepath.Join(hostileDir, "regex-backref.js"))
	good := load(t, p, filepath.Join(codecsDir, "elsys-ers-co2.js"))
	running := make(chan error, 1)
	go func() { _, err := hostile.Decode(elsysIn); running <- err }()
	if _, err := good.Decode(elsysIn); err != nil {
		t.Fatal(err)
	}
	p.Close()
	<-running
	if live := p.Stats().Live; live != 0 {
		// live drops when a worker's Wait returns: reaped, no zombie.
		t.Errorf("%d workers still running after Close", live)
	}
	if _, err := good.Decode(elsysIn); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}

// TestStartFailureBacksOff: workers that cannot start are reported (for
// /readyz) and retried after a backoff, not on every uplink.
func TestStartFailureBacksOff(t *testing.T) {
	starts := 0
	p := newPool(t, Config{Workers: 1, Command: func() *exec.Cmd {
		starts++
		return exec.Command(filepath.Join(t.TempDir(), "missing"))
	}})
	src := readCodec(t, filepath.Join(codecsDir, "elsys-ers-co2.js"))
	// Load registers the codec unchecked (a worker compiles it before
	// its first uplink), so a passing start failure does not leave the
	// model without its codec; its uplinks fail meanwhile.
	c, err := p.Load("elsys-ers-co2.js", src)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for range 3 {
		if _, err := c.Decode(elsysIn); err == nil || !strings.Contains(err.Error(), "do not start") {
			t.Fatalf("decoded without a worker: %v", err)
		}
	}
	if starts != 1 {
		t.Errorf("%d start attempts within the backoff, want 1", starts)
	}
	if h := p.Health(); h.StartErr == nil || !strings.Contains(h.StartErr.Error(), "do not start") {
		t.Errorf("health %+v, want the start error", h)
	}
}

// TestLoadFailures: a file that does not load fails in Load as it does
// in script.Compile, and one whose top level wrecks its worker fails
// there too; the pool serves the next codec either way.
func TestLoadFailures(t *testing.T) {
	p := newPool(t, Config{Workers: 1})
	for _, tc := range []struct {
		name, src string
		is        error
	}{
		{"syntax error", "function decodeUplink(input) {", script.ErrLoad},
		{"no entry point", "var x = 1;", script.ErrLoad},
		{"top level throws", "throw new Error('no'); function decodeUplink(i) {}", script.ErrLoad},
		{"top level allocates a gigabyte", `var s = "x".repeat(1 << 30); function decodeUplink(i) {}`, ErrKilled},
		{"top level backtracks", `/^(a+)+(?=b)$/.test(new Array(40).join("a") + "!"); function decodeUplink(i) {}`, ErrKilled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Load("bad.js", []byte(tc.src))
			if !errors.Is(err, tc.is) {
				t.Fatalf("Load: %v, want %v", err, tc.is)
			}
			res, err := load(t, p, filepath.Join(codecsDir, "elsys-ers-co2.js")).Decode(elsysIn)
			if err != nil {
				t.Fatalf("good codec after: %v", err)
			}
			res.Record.Release()
		})
	}
}

// TestStderrReasons: what a dying worker prints tells out of memory from
// other deaths, including the Go 1.26 collector's fault at the mapping
// limit, and gives the line an operator sees.
func TestStderrReasons(t *testing.T) {
	for _, tc := range []struct {
		name, stderr string
		oom          bool
		words        string
	}{
		{"runtime out of memory", "fatal error: runtime: out of memory\n\nruntime stack:\nruntime.throw(...)\n", true, "fatal error: runtime: out of memory"},
		{"race detector allocator", "==1==ERROR: ThreadSanitizer failed to allocate 0x80000000 (2147483648) bytes at address 218008000000 (errno: 12)\n", true, "==1==ERROR: ThreadSanitizer failed to allocate 0x80000000 (2147483648) bytes at address 218008000000 (errno: 12)"},
		{"collector fault at the limit", "SIGSEGV: segmentation violation\nPC=0x43959d m=0 sigcode=1 addr=0x0\ngoroutine 0 gp=0x1 m=0 mp=0x1 [idle]:\nruntime.(*spanQueue).tryDrain(0x1, 0x2, 0x3)\n\t/usr/local/go/src/runtime/mgcmark_greenteagc.go:520 +0x5d\n", true, "SIGSEGV: segmentation violation"},
		{"other fault", "SIGSEGV: segmentation violation\nPC=0x1 m=0 sigcode=1 addr=0x0\nmain.f()\n\t/src/main.go:3 +0x5\n", false, "SIGSEGV: segmentation violation"},
		{"panic", "panic: boom\n\ngoroutine 1 [running]:\n", false, "panic: boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, wr, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			w := &proc{errs: make(chan struct{})}
			go w.readStderr(r, zerolog.Nop())
			if _, err := wr.WriteString(tc.stderr); err != nil {
				t.Fatal(err)
			}
			wr.Close()
			<-w.errs
			if w.oom.Load() != tc.oom {
				t.Errorf("out of memory %v, want %v", w.oom.Load(), tc.oom)
			}
			if got := w.lastWords(); got != tc.words {
				t.Errorf("last words %q, want %q", got, tc.words)
			}
		})
	}
}

// TestConsoleCarriesDevice: a codec's console output, logged by the
// worker, reaches the daemon's debug log with the uplink's device and the
// model, as it does in-process.
func TestConsoleCarriesDevice(t *testing.T) {
	logs := &lockedBuffer{}
	p := newPool(t, Config{Workers: 1, Logger: zerolog.New(logs).Level(zerolog.DebugLevel)})
	src := []byte(`function decodeUplink(input) { console.log("first byte", input.bytes[0]); return {data: {b: input.bytes[0]}}; }`)
	c, err := p.Load("console-model.js", src)
	if err != nil {
		t.Fatal(err)
	}
	in := decoders.Input{FPort: 1, Bytes: []byte{7}, DevEUI: "0102030405060708"}
	if _, err := c.Decode(in); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "first byte 7") {
		if time.Now().After(deadline) {
			t.Fatalf("the codec's console line never reached the log:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, want := range []string{`"dev_eui":"0102030405060708"`, `"model":"console-model"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the console line lacks %s:\n%s", want, logs)
		}
	}
}

// lockedBuffer is a log sink the pool's goroutines may write to at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
