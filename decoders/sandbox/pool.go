package sandbox

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/decoders/script"
)

// Defaults for the zero values of Config.
const (
	// DefaultCallTimeout is the wall-clock limit of one call into a
	// worker, after which the worker is killed. It leaves room for the
	// in-worker limit (script.DefaultTimeout, twice with normalizeUplink)
	// and keeps a runaway uplink under a second of wall time, queueing
	// for a quarantined codec's slot included.
	DefaultCallTimeout = 400 * time.Millisecond
	// DefaultMemoryLimit is the heap a worker may map beyond its baseline
	// (about 8 MB resident). Codecs need a few MB at most; two workers at
	// the limit plus the daemon stay well under 150 MB.
	DefaultMemoryLimit = 32 << 20
	// DefaultMaxOutput bounds one decode's answer frame.
	DefaultMaxOutput = 256 << 10
	// DefaultQueueWait bounds how long a call waits for a free worker
	// before it fails.
	DefaultQueueWait = 10 * time.Second
	// MaxSource bounds a codec file the pool accepts.
	MaxSource = 4 << 20
)

// quarantine is how long a codec whose calls killed workers runs on the
// quarantine slot only, and the window its kills are counted in.
const quarantine = time.Minute

// spawnTimeout bounds starting a worker (process start, runtime start,
// hello); loadTimeoutExtra is added to the in-worker limit of running a
// codec's top level (ten times the script timeout, at least a second).
const (
	spawnTimeout     = 5 * time.Second
	loadTimeoutExtra = time.Second
)

// Config configures a Pool. The zero value is usable: workers are this
// program's binary started with EnvWorker set.
type Config struct {
	// Command makes the command that starts one worker; nil runs
	// os.Executable() with WorkerArg. Its environment gets EnvWorker=1,
	// GOMAXPROCS=1 and GOTRACEBACK=none added.
	Command func() *exec.Cmd
	// Workers is the number of worker processes; zero means GOMAXPROCS.
	Workers int
	// CallTimeout is the wall-clock limit of one decode in a worker; zero
	// means DefaultCallTimeout.
	CallTimeout time.Duration
	// ScriptTimeout is the in-worker limit of one codec call (goja's
	// interrupt); zero means script.DefaultTimeout.
	ScriptTimeout time.Duration
	// MemoryLimit is the memory a worker may map beyond its baseline;
	// zero means DefaultMemoryLimit, negative no limit.
	MemoryLimit int64
	// MaxOutput bounds one decode's output in bytes on the wire; zero
	// means DefaultMaxOutput.
	MaxOutput int
	// QueueWait bounds the wait for a free worker; zero means
	// DefaultQueueWait.
	QueueWait time.Duration
	// Logger gets worker replacements and, at debug level, the codecs'
	// console output.
	Logger zerolog.Logger
	// noBatch sends every decode on its own, as before batching: for
	// benchmarks comparing the two.
	noBatch bool
}

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.ScriptTimeout <= 0 {
		c.ScriptTimeout = script.DefaultTimeout
	}
	if c.MemoryLimit == 0 {
		c.MemoryLimit = DefaultMemoryLimit
	}
	if c.MaxOutput <= 0 {
		c.MaxOutput = DefaultMaxOutput
	}
	c.MaxOutput = max(c.MaxOutput, minFrame)
	if c.QueueWait <= 0 {
		c.QueueWait = DefaultQueueWait
	}
	return c
}

// Pool runs codecs in worker processes. Each worker decodes one uplink
// at a time; a call that overruns CallTimeout gets its worker killed, a
// worker that dies (out of memory, a crash) is replaced, and either way
// the call returns an error, which the pipeline turns into a dead letter.
type Pool struct {
	cfg  Config
	log  zerolog.Logger
	idle chan *slot // free slots; a slot may hold no live worker
	// prio hands a released slot straight to a call holding the
	// quarantine slot, ahead of the calls queued on idle.
	prio chan *slot
	// suspect is the quarantine slot: codecs that overran or killed a
	// worker in the last minute run one call at a time, so they cannot
	// tie up every worker while other devices wait.
	suspect chan struct{}
	done    chan struct{}
	close   sync.Once

	mu         sync.Mutex
	events     []event // kills and timeouts of the last minute, oldest first
	spawnFails int     // consecutive failed starts
	spawnAfter time.Time
	spawnErr   error
	killed     [numReasons]atomic.Uint64
	timeouts   atomic.Uint64
	spawned    atomic.Uint64
	batches    atomic.Uint64 // requests that carried more than one decode
	live       atomic.Int64
	procs      map[*proc]struct{} // workers started and not yet reaped, for Stats (under mu)
}

// slot is one place in the pool; its worker is started when a call needs
// it and replaced when it dies. idx names it in Stats.
type slot struct {
	p   *proc
	idx int
}

// New returns a pool; workers start on first use.
func New(cfg Config) *Pool {
	cfg = cfg.withDefaults()
	p := &Pool{
		cfg: cfg, log: cfg.Logger,
		idle:    make(chan *slot, cfg.Workers),
		prio:    make(chan *slot),
		suspect: make(chan struct{}, max(1, cfg.Workers/2)),
		done:    make(chan struct{}),
		procs:   map[*proc]struct{}{},
	}
	for i := range cfg.Workers {
		p.idle <- &slot{idx: i}
	}
	return p
}

// Close stops the pool: calls waiting for a worker fail at once, calls
// running finish (each within CallTimeout), then every worker is
// stopped. It returns when all worker processes have been reaped.
func (p *Pool) Close() error {
	p.close.Do(func() {
		close(p.done)
		for range p.cfg.Workers {
			s := <-p.idle
			if s.p != nil {
				s.p.stop()
				s.p = nil
			}
		}
	})
	return nil
}

// ErrClosed is returned by calls after Close.
var ErrClosed = errors.New("sandbox: codec workers stopped (shutting down)")

// ErrBusy is a call that found no free worker within Config.QueueWait.
var ErrBusy = errors.New("sandbox: every codec worker stayed busy")

// acquire takes a free slot, waiting up to wait.
func (p *Pool) acquire(wait time.Duration) (*slot, error) {
	select {
	case <-p.done:
		return nil, ErrClosed
	default:
	}
	select {
	case s := <-p.idle:
		return s, nil
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case s := <-p.idle:
		return s, nil
	case <-p.done:
		return nil, ErrClosed
	case <-t.C:
		return nil, fmt.Errorf("%w for %v (%d workers): codecs are too slow for the traffic; raise decoders.workers or fix slow codecs", ErrBusy, wait, p.cfg.Workers)
	}
}

func (p *Pool) release(s *slot) {
	select {
	case p.prio <- s:
	default:
		p.idle <- s
	}
}

// releaseSlot returns s. A slot whose worker died gets its replacement
// started first, in the background, so the call that wrecked the worker
// returns at once and the next one does not wait for a process start.
func (p *Pool) releaseSlot(s *slot) {
	if s.p == nil || !s.p.dead() {
		p.release(s)
		return
	}
	go func() {
		_, _ = p.worker(s) // a failure is backed off and reported by the next call
		p.release(s)
	}()
}

// warm starts the workers of free slots that have none, in the
// background.
func (p *Pool) warm() {
	for range p.cfg.Workers {
		var s *slot
		select {
		case s = <-p.idle:
		default:
			return
		}
		if s.p != nil && !s.p.dead() {
			p.release(s)
			continue
		}
		go func() {
			_, _ = p.worker(s)
			p.release(s)
		}()
	}
}

// workerFor returns s's live worker for running c: a worker without c
// compiled that holds maxCodecs versions, or whose compiled sources and c
// would pass sourceBudget, is replaced first (its memory would grow with
// every codec reload otherwise, until the memory limit killed it in the
// middle of some codec's call).
func (p *Pool) workerFor(s *slot, c *Codec) (*proc, error) {
	w, err := p.worker(s)
	if err != nil {
		return nil, err
	}
	if _, ok := w.loaded[c.sum]; !ok && len(w.loaded) > 0 &&
		(len(w.loaded) >= maxCodecs || p.overBudget(w.loadedBytes+len(c.src))) {
		w.retire()
		return p.worker(s)
	}
	return w, nil
}

// compiledPerSourceByte is what a compiled codec costs a worker per byte
// of its source, with some margin: 495 versions of a 2.3 KB test codec
// (about 68 KB each, its top level frozen in the locked runtimes
// included) filled the default 32 MiB. budgetReserve is the part of the
// memory limit kept for the rest: the locked runtimes themselves and the
// calls' garbage.
const (
	compiledPerSourceByte = 48
	budgetReserve         = 2 << 20
)

// overBudget reports whether compiled sources of n bytes in total would
// take a worker past its memory limit (about 650 KB of source at the
// default 32 MiB; 300 codecs of the test codecs' 2 KB fit).
func (p *Pool) overBudget(n int) bool {
	return p.cfg.MemoryLimit > 0 && int64(n)*compiledPerSourceByte > p.cfg.MemoryLimit-budgetReserve
}

// worker returns s's live worker, starting one if needed.
func (p *Pool) worker(s *slot) (*proc, error) {
	if s.p != nil && !s.p.dead() {
		return s.p, nil
	}
	if s.p != nil {
		s.p.stop()
		s.p = nil
	}
	p.mu.Lock()
	if p.spawnFails > 0 && time.Now().Before(p.spawnAfter) {
		err := p.spawnErr
		p.mu.Unlock()
		return nil, err
	}
	p.mu.Unlock()
	w, err := p.spawn(s.idx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		// Back off, so a worker that cannot start (a limit too low for
		// the runtime, a missing binary) does not turn every uplink into
		// a process start.
		p.spawnFails++
		backoff := min(50*time.Millisecond<<min(p.spawnFails-1, 10), 5*time.Second)
		p.spawnAfter = time.Now().Add(backoff)
		p.spawnErr = fmt.Errorf("sandbox: codec workers do not start (%w); retrying in %v: check decoders.worker_memory and the daemon's log", err, backoff)
		return nil, p.spawnErr
	}
	p.spawnFails, p.spawnErr = 0, nil
	s.p = w
	return w, nil
}

// Reasons a worker was killed or died, the label of the kills counter.
type Reason uint8

const (
	ReasonTimeout  Reason = iota // ran past CallTimeout; killed
	ReasonMemory                 // hit its memory limit
	ReasonCrash                  // exited for another reason
	ReasonProtocol               // answered something that is not the protocol; killed
	numReasons
)

func (r Reason) String() string {
	switch r {
	case ReasonTimeout:
		return "timeout"
	case ReasonMemory:
		return "memory"
	case ReasonCrash:
		return "crash"
	case ReasonProtocol:
		return "protocol"
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// Reasons lists every reason, for metrics.
func Reasons() []Reason { return []Reason{ReasonTimeout, ReasonMemory, ReasonCrash, ReasonProtocol} }

// event is a kill (reason < numReasons) or an in-worker timeout
// (reason == numReasons) of a codec.
type event struct {
	at     time.Time
	reason Reason
	codec  string
}

// maxEvents bounds the events kept for Health: beyond it the oldest go.
const maxEvents = 4096

func (p *Pool) record(reason Reason, codec string) {
	if reason < numReasons {
		p.killed[reason].Add(1)
	} else {
		p.timeouts.Add(1)
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pruneLocked(now)
	if len(p.events) >= maxEvents {
		p.events = append(p.events[:0], p.events[1:]...)
	}
	p.events = append(p.events, event{at: now, reason: reason, codec: codec})
}

func (p *Pool) pruneLocked(now time.Time) {
	i := 0
	for i < len(p.events) && now.Sub(p.events[i].at) > time.Minute {
		i++
	}
	if i > 0 {
		p.events = append(p.events[:0], p.events[i:]...)
	}
}

// Stats are the pool's counters since it was made.
type Stats struct {
	Killed   map[Reason]uint64 // workers killed or died, by reason
	Timeouts uint64            // codec calls the worker itself interrupted
	Started  uint64            // worker processes started
	Live     int64             // worker processes running now
	// Workers are the live workers in service (not being replaced), by
	// slot: what each holds.
	Workers []WorkerStats
}

// WorkerStats is what one worker holds: each codec version compiled in
// it costs it memory, and each one that has run there also its top level
// frozen in the worker's locked runtime.
type WorkerStats struct {
	Slot     int // 0 … Config.Workers-1; a replacement takes its predecessor's
	PID      int
	Compiled int // codec versions compiled in it
	Run      int // of those, versions that have decoded an uplink there
}

// Stats returns the counters.
func (p *Pool) Stats() Stats {
	s := Stats{Killed: map[Reason]uint64{}, Timeouts: p.timeouts.Load(), Started: p.spawned.Load(), Live: p.live.Load()}
	for _, r := range Reasons() {
		s.Killed[r] = p.killed[r].Load()
	}
	p.mu.Lock()
	for w := range p.procs {
		if !w.dead() {
			s.Workers = append(s.Workers, WorkerStats{Slot: w.slot, PID: w.cmd.Process.Pid, Compiled: int(w.compiled.Load()), Run: int(w.run.Load())})
		}
	}
	p.mu.Unlock()
	slices.SortFunc(s.Workers, func(a, b WorkerStats) int { return a.Slot - b.Slot })
	return s
}

// Health is the pool's recent trouble, for /readyz.
type Health struct {
	// Killed counts the workers killed or dead in the last minute, by
	// reason; Timeouts the in-worker timeouts.
	Killed   map[Reason]int
	Timeouts int
	// Codecs are the codec files involved, sorted, at most ten.
	Codecs []string
	// StartErr is set while workers fail to start.
	StartErr error
}

// Degraded reports whether anything went wrong in the last minute.
func (h Health) Degraded() bool { return len(h.Killed) > 0 || h.Timeouts > 0 }

// Health reports the last minute.
func (p *Pool) Health() Health {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pruneLocked(now)
	h := Health{Killed: map[Reason]int{}, StartErr: p.spawnErr}
	seen := map[string]bool{}
	for _, e := range p.events {
		if e.reason < numReasons {
			h.Killed[e.reason]++
		} else {
			h.Timeouts++
		}
		if !seen[e.codec] && len(h.Codecs) < 10 {
			seen[e.codec] = true
			h.Codecs = append(h.Codecs, e.codec)
		}
	}
	if len(h.Killed) == 0 {
		h.Killed = nil
	}
	sortStrings(h.Codecs)
	return h
}

// spawn starts the worker of slot idx and waits for its hello answer.
func (p *Pool) spawn(idx int) (*proc, error) {
	var cmd *exec.Cmd
	if p.cfg.Command != nil {
		cmd = p.cfg.Command()
	} else {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find own binary: %w", err)
		}
		cmd = exec.Command(exe, WorkerArg)
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, EnvWorker+"=1", "GOMAXPROCS=1", "GOTRACEBACK=none")
	setDeathSignal(cmd)
	p.live.Add(1)
	w, err := startProc(cmd, p.log, func(w *proc) {
		w.slot = idx
		p.mu.Lock()
		p.procs[w] = struct{}{}
		p.mu.Unlock()
	}, func(w *proc) {
		p.live.Add(-1)
		p.mu.Lock()
		delete(p.procs, w)
		p.mu.Unlock()
	})
	if err != nil {
		p.live.Add(-1)
		return nil, err
	}
	p.spawned.Add(1)
	h := hello{ScriptTimeout: p.cfg.ScriptTimeout, MemoryLimit: max(p.cfg.MemoryLimit, 0),
		MaxOutput: p.cfg.MaxOutput, MaxRequest: MaxSource + 64<<10, Debug: p.log.GetLevel() <= zerolog.DebugLevel}
	w.wbuf = appendHello(beginFrame(w.wbuf, reqHello), h)
	typ, _, err := w.roundTrip(spawnTimeout, p.cfg.MaxOutput)
	if err == nil && typ != ansReady {
		err = fmt.Errorf("%w: hello answered with type %d", errFrame, typ)
	}
	if err != nil {
		w.stop()
		if tail := w.stderrTail(); tail != "" {
			err = fmt.Errorf("%w: %s", err, tail)
		}
		return nil, err
	}
	return w, nil
}

// sum is a codec version's key.
func sum(src []byte) [hashSize]byte { return sha256.Sum256(src) }

// stderrTail bounds what is kept of a worker's stderr, for the reason it
// died.
const stderrTail = 2 << 10

// maxLogLine bounds one forwarded line of a worker's stderr.
const maxLogLine = 4 << 10

// proc is one worker process, seen from the daemon.
type proc struct {
	cmd     *exec.Cmd
	in      *os.File // the worker's stdin
	out     *bufio.Reader
	outF    *os.File
	exited  chan struct{} // closed once the process is reaped
	errs    chan struct{} // closed once its stderr is read to the end
	killed  atomic.Bool   // the daemon killed it (deadline, protocol)
	retired atomic.Bool   // to be replaced after this call

	loaded      map[[hashSize]byte]loaded // codec versions compiled in it
	loadedBytes int                       // their sources' bytes
	slot        int                       // the pool's slot it serves
	// compiled and run count the versions in loaded, and those that
	// have decoded there (loaded.run), for Stats.
	compiled, run atomic.Int32
	wbuf          []byte
	rbuf          []byte

	oom  atomic.Bool // its stderr said it ran out of memory
	segv bool        // its stderr reported a segmentation fault (readStderr only)

	mu    sync.Mutex
	tail  []byte // end of its stderr
	fatal string // the first "fatal error" line of its stderr
	head  []byte
}

// loaded is what a worker said of a codec version it compiled; run is
// set once the daemon has sent it an uplink of that version.
type loaded struct {
	style     script.Style
	normalize bool
	run       bool
}

// startProc starts cmd as a worker; started runs before anything else
// sees it, reaped once it has exited and been waited for.
func startProc(cmd *exec.Cmd, log zerolog.Logger, started, reaped func(*proc)) (*proc, error) {
	inR, inW, err := blockingPipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := blockingPipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	err = cmd.Start()
	// The child has its copies; the daemon keeps only its own ends, so
	// the worker's exit closes them.
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("start worker: %w", err)
	}
	w := &proc{cmd: cmd, in: inW, outF: outR, out: bufio.NewReaderSize(outR, 16<<10),
		exited: make(chan struct{}), errs: make(chan struct{}), loaded: map[[hashSize]byte]loaded{},
		wbuf: make([]byte, 0, 4<<10)}
	started(w)
	go w.readStderr(errR, log)
	go func() {
		_ = cmd.Wait() // reaps it: no zombies
		reaped(w)
		close(w.exited)
	}()
	return w, nil
}

// readStderr keeps the end of the worker's stderr (the runtime's fatal
// error names the reason it died) and forwards its lines, the codecs'
// console output at debug level, to the daemon's log.
func (w *proc) readStderr(f *os.File, log zerolog.Logger) {
	defer close(w.errs)
	defer f.Close()
	r := bufio.NewReaderSize(f, maxLogLine)
	for {
		line, isPrefix, err := r.ReadLine()
		if len(line) > 0 {
			// The runtime's fatal error comes first, then a traceback
			// that may be longer than the tail.
			if isOOM(line) {
				w.oom.Store(true)
			}
			if bytes.HasPrefix(line, []byte("SIGSEGV")) {
				w.segv = true
			}
			// Go 1.26's collector maps its span queues with sysAlloc and
			// does not check for failure (runtime.newSpanSPMC): at the
			// mapping limit it faults on the nil ring instead of
			// reporting out of memory. That fault is the limit too.
			if w.segv && bytes.Contains(line, []byte("mgcmark_greenteagc.go")) {
				w.oom.Store(true)
			}
			w.mu.Lock()
			if w.fatal == "" && bytes.HasPrefix(line, []byte("fatal error:")) {
				w.fatal = string(line[:min(len(line), 200)])
			}
			if len(w.head) < 1024 {
				w.head = append(w.head, line[:min(len(line), 1024-len(w.head))]...)
				w.head = append(w.head, '\n')
			}
			w.tail = append(w.tail, line...)
			w.tail = append(w.tail, '\n')
			if len(w.tail) > stderrTail {
				w.tail = append(w.tail[:0], w.tail[len(w.tail)-stderrTail:]...)
			}
			w.mu.Unlock()
			if ev := log.Debug(); ev.Enabled() {
				ev = ev.Int("worker", w.cmd.Process.Pid)
				// A codec's console line is a JSON log record of the
				// worker's: its fields (codec, model, dev_eui) become
				// the daemon's own, so it reads as it does in-process.
				var rec map[string]any
				if !isPrefix && line[0] == '{' && json.Unmarshal(line, &rec) == nil {
					msg, _ := rec[zerolog.MessageFieldName].(string)
					delete(rec, zerolog.MessageFieldName)
					delete(rec, zerolog.LevelFieldName)
					ev.Fields(rec).Msg(msg)
				} else {
					ev.Bool("truncated", isPrefix).Msg(string(line))
				}
			}
			for isPrefix && err == nil { // the rest of an overlong line is dropped
				_, isPrefix, err = r.ReadLine()
			}
		}
		if err != nil {
			return
		}
	}
}

// isOOM reports whether a line of a dying worker's stderr says it ran
// out of memory: the Go runtime's fatal error, or the race detector's
// allocator (tests run workers built with -race).
func isOOM(line []byte) bool {
	for _, s := range []string{"out of memory", "cannot allocate memory", "failed to allocate"} {
		if bytes.Contains(line, []byte(s)) {
			return true
		}
	}
	return false
}

func (w *proc) stderrTail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(bytes.TrimSpace(w.tail))
}

// lastWords is the line that best says why the worker died.
func (w *proc) lastWords() string {
	w.mu.Lock()
	fatal := w.fatal
	w.mu.Unlock()
	if fatal != "" {
		return fatal
	}
	w.mu.Lock()
	first, _, _ := bytes.Cut(w.head, []byte("\n"))
	w.mu.Unlock()
	if len(first) > 0 {
		return string(first)
	}
	return lastLine(w.stderrTail())
}

func (w *proc) dead() bool {
	select {
	case <-w.exited:
		return true
	default:
		return w.killed.Load() || w.retired.Load()
	}
}

// retire marks a healthy worker for replacement: the slot stops it and
// starts another when it is released (see Pool.releaseSlot).
func (w *proc) retire() { w.retired.Store(true) }

// kill sends SIGKILL; the reaper goroutine collects it.
func (w *proc) kill() {
	w.killed.Store(true)
	_ = w.cmd.Process.Signal(syscall.SIGKILL)
}

// stop ends the worker: closing stdin lets an idle one exit; one that
// does not within a moment is killed. It returns once it is reaped.
func (w *proc) stop() {
	w.in.Close()
	select {
	case <-w.exited:
	case <-time.After(100 * time.Millisecond):
		w.kill()
		<-w.exited
	}
	w.outF.Close()
}

// roundTrip sends w.wbuf and reads the answer within limit, killing the
// worker when it does not come. The answer's body is valid until the
// next roundTrip.
func (w *proc) roundTrip(limit time.Duration, maxAnswer int) (byte, []byte, error) {
	timer := time.AfterFunc(limit, w.kill)
	err := writeFrame(w.in, w.wbuf)
	var (
		typ  byte
		body []byte
	)
	if err == nil {
		typ, body, w.rbuf, err = readFrame(w.out, w.rbuf, maxAnswer)
	}
	if !timer.Stop() && err == nil {
		// The answer came as the timer fired: use it; the worker is
		// killed and replaced before the next call.
		return typ, body, nil
	}
	if err != nil && errors.Is(err, errFrame) {
		w.kill()
	}
	return typ, body, err
}

// failure names why a round trip failed: the worker was killed for its
// deadline, ran out of memory, broke the protocol, or died otherwise. It
// waits for the worker's end, so the reason and the stderr are final.
func (w *proc) failure(err error) Reason {
	if !errors.Is(err, errFrame) && !w.killed.Load() {
		// It closed its end: wait for the exit and the last words.
		select {
		case <-w.exited:
		case <-time.After(time.Second):
			w.kill()
		}
	} else {
		w.kill()
	}
	<-w.exited
	<-w.errs
	switch {
	case errors.Is(err, errFrame):
		return ReasonProtocol
	case w.killed.Load():
		return ReasonTimeout
	case w.oom.Load():
		return ReasonMemory
	}
	return ReasonCrash
}
