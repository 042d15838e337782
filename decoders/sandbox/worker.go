package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/decoders/script"
)

// EnvWorker marks a process started as a codec worker: the daemon starts
// its own binary with it set, and the binary's main (or a test binary's
// TestMain) calls ServeWorker before doing anything else.
const EnvWorker = "SENSORGATE_CODEC_WORKER"

// WorkerArg is the worker's command-line argument; it only names the
// process in ps: EnvWorker is what makes it a worker.
const WorkerArg = "codec-worker"

// EnvWorkerProfile, set to a folder, makes each worker write its CPU
// profile there (worker-<pid>.prof) when it stops cleanly: for finding
// where a worker's time goes under a benchmark.
const EnvWorkerProfile = "SENSORGATE_WORKER_PPROF"

// IsWorker reports whether this process was started as a codec worker.
func IsWorker() bool { return os.Getenv(EnvWorker) == "1" }

// maxCodecs bounds the codec versions a worker keeps compiled; the daemon
// replaces a worker that would need more (see proc.loaded). It must
// exceed the codecs a deployment uses in turn: at 64, 300 codecs in use
// replaced a worker every 64 calls and cost 1.4 ms a call instead of
// 0.05 (BenchmarkSandboxManyCodecs). A compiled codec costs a worker
// about 50 KB; decoders.worker_memory bounds the sum.
const maxCodecs = 512

// ServeWorker runs the worker on stdin and stdout until stdin closes,
// and returns the process exit code.
func ServeWorker() int {
	runtime.GOMAXPROCS(1)
	// goja's garbage is most of a worker's allocation: the collector at
	// script.GCPercent instead of 100 (unless GOGC is set), bounded all
	// the same by the memory limit the hello sets (SetMemoryLimit makes it
	// collect hard near the limit).
	script.TuneGC()
	if dir := os.Getenv(EnvWorkerProfile); dir != "" {
		if f, err := os.Create(filepath.Join(dir, fmt.Sprintf("worker-%d.prof", os.Getpid()))); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer f.Close()
				defer pprof.StopCPUProfile()
			}
		}
	}
	err := serve(os.Stdin, os.Stdout, os.Stderr, setLimits)
	if errors.Is(err, io.EOF) {
		return 0 // the daemon closed its end: a clean stop
	}
	fmt.Fprintln(os.Stderr, "sensorgate codec worker:", err)
	return 1
}

// serve is the worker loop: a hello, then requests answered one at a
// time. limit applies the hello's memory limit (the real worker sets
// rlimits on itself; tests and the fuzz target pass a no-op). It returns
// io.EOF when in ends, another error when a request breaks the protocol:
// the daemon replaces a worker that stops.
func serve(in io.Reader, out io.Writer, stderr io.Writer, limit func(int64) error) error {
	rd := bufio.NewReaderSize(in, 64<<10)
	typ, body, rbuf, err := readFrame(rd, nil, 1<<10)
	if err != nil {
		return err
	}
	if typ != reqHello {
		return fmt.Errorf("%w: first request of type %d, want hello", errFrame, typ)
	}
	h, err := readHello(body)
	if err != nil {
		return err
	}
	// Before any codec runs: past this point an allocation beyond the
	// limit kills the worker, never the daemon.
	if h.MemoryLimit > 0 {
		if err := limit(h.MemoryLimit); err != nil {
			return fmt.Errorf("set memory limit: %w", err)
		}
	}
	log := zerolog.Nop()
	if h.Debug {
		log = zerolog.New(stderr).Level(zerolog.DebugLevel)
	}
	// The locked runtime reusable codecs share (script's reuse.go) is
	// made in the background from the start: no call waits for it, and
	// until it is there the codecs run on fresh runtimes.
	script.PrepareLocked()
	opts := script.Options{Timeout: h.ScriptTimeout, PoolSize: 1, Logger: log}
	codecs := map[[hashSize]byte]*script.Codec{}
	wbuf := beginFrame(make([]byte, 0, 4<<10), ansReady)
	finishFrame(wbuf, 0)
	if err := writeAll(out, wbuf); err != nil {
		return err
	}
	bw := newBatchWriter(out)
	for {
		typ, body, rbuf, err = readFrame(rd, rbuf, h.MaxRequest)
		if err != nil {
			return err
		}
		switch typ {
		case reqLoad:
			sum, name, src, err := readLoad(body)
			if err != nil {
				return err
			}
			if len(codecs) >= maxCodecs {
				clear(codecs) // the daemon replaces the worker before this; belt and braces
			}
			c, lerr := script.Compile(name, src, opts)
			if lerr != nil {
				wbuf = appendError(beginFrame(wbuf, ansError), lerr)
				finishFrame(wbuf, 0)
				break
			}
			codecs[sum] = c
			wbuf = appendLoaded(beginFrame(wbuf, ansLoaded), c.Style(), c.HasNormalize())
			finishFrame(wbuf, 0)
		case reqDecode:
			sum, in, err := readDecode(body)
			if err != nil {
				return err
			}
			c := codecs[sum]
			if c == nil {
				return fmt.Errorf("%w: decode with a codec not loaded", errFrame)
			}
			wbuf = appendAnswer(wbuf[:0], c, in, h.MaxOutput)
		case reqBatch:
			bw.begin()
			sum, err := readBatch(body, maxBatch, func(in decoders.Input) {
				if c := codecs[sumOf(body)]; c != nil {
					wbuf = appendAnswer(wbuf[:0], c, in, h.MaxOutput)
					bw.add(wbuf)
				}
			})
			if err := bw.end(); err != nil {
				return err
			}
			if err == nil && codecs[sum] == nil {
				err = fmt.Errorf("%w: batch with a codec not loaded", errFrame)
			}
			if err != nil {
				return err
			}
			wbuf = wbuf[:0] // sent
		default:
			return fmt.Errorf("%w: request type %d", errFrame, typ)
		}
		if len(wbuf) > 0 {
			if err := writeAll(out, wbuf); err != nil {
				return err
			}
		}
		if cap(wbuf) > 4*h.MaxOutput/3+64<<10 {
			wbuf = make([]byte, 0, 4<<10) // one huge output is not kept for the next
		}
		if cap(rbuf) > 1<<20 {
			rbuf = nil
		}
	}
}

// batchFlush is how long answers of a batch may wait in the worker
// before those ready are sent.
const batchFlush = time.Millisecond

// batchWriter sends a batch's answers: all together when the batch is
// done, or, while it runs longer than batchFlush, those ready every
// batchFlush, from a timer. The daemon's deadline runs from one answer
// to the next, so neither a slow call nor one that never returns (a
// regular expression backtracking past goja's interrupt) holds back the
// answers of the calls before it.
type batchWriter struct {
	out    io.Writer
	timer  *time.Timer
	mu     sync.Mutex
	buf    []byte // answers not sent yet
	active bool   // a batch is running: the timer re-arms
	err    error  // the first failed write
}

func newBatchWriter(out io.Writer) *batchWriter {
	b := &batchWriter{out: out, buf: make([]byte, 0, 4<<10)}
	b.timer = time.AfterFunc(time.Hour, b.tick)
	b.timer.Stop()
	return b
}

func (b *batchWriter) begin() {
	b.mu.Lock()
	b.active = true
	b.mu.Unlock()
	b.timer.Reset(batchFlush)
}

// add queues one finished answer frame (copied).
func (b *batchWriter) add(frame []byte) {
	b.mu.Lock()
	b.buf = append(b.buf, frame...)
	b.mu.Unlock()
}

func (b *batchWriter) tick() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	if b.active {
		b.timer.Reset(batchFlush)
	}
}

func (b *batchWriter) flushLocked() {
	if len(b.buf) > 0 && b.err == nil {
		b.err = writeAll(b.out, b.buf)
	}
	b.buf = b.buf[:0]
	if cap(b.buf) > 1<<20 {
		b.buf = make([]byte, 0, 4<<10) // one huge batch is not kept for the next
	}
}

// end sends what is left and returns the first write error.
func (b *batchWriter) end() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.active = false
	b.timer.Stop()
	b.flushLocked()
	return b.err
}

// sumOf is the codec hash a decode or batch request starts with.
func sumOf(body []byte) (sum [hashSize]byte) {
	copy(sum[:], body)
	return sum
}

// appendAnswer decodes in with c and appends the answer frame to buf.
func appendAnswer(buf []byte, c *script.Codec, in decoders.Input, maxOutput int) []byte {
	res, derr := c.Decode(in)
	if derr != nil {
		buf, start := beginNextFrame(buf, ansError)
		buf = appendError(buf, derr)
		finishFrame(buf, start)
		return buf
	}
	buf, start := beginNextFrame(buf, ansResult)
	buf = appendResult(buf, res)
	res.Record.Release()
	if n := len(buf) - start - frameHeader; n > maxOutput {
		buf, start = beginNextFrame(buf[:start], ansError)
		buf = appendError(buf, &remoteError{kind: script.ErrCodec,
			msg: fmt.Sprintf("sandbox: codec %s returned %d bytes of output, more than decoders.max_output (%d): fix the codec, or raise the limit if the output is genuine", c.File(), n, maxOutput)})
	}
	finishFrame(buf, start)
	return buf
}

// writeAll sends frames already finished.
func writeAll(w io.Writer, buf []byte) error {
	_, err := w.Write(buf)
	return err
}

// setMemoryLimit makes the Go runtime collect hard as the heap nears
// limit; the rlimit (limits_linux.go) makes it die past it.
func setMemoryLimit(limit int64) {
	debug.SetMemoryLimit(limit)
}
