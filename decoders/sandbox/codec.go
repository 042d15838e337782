package sandbox

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/decoders/script"
)

// Codec is a codec file registered with a pool: a decoders.Decoder whose
// calls run in the pool's workers.
type Codec struct {
	pool      *Pool
	file      string
	model     string
	src       []byte
	sum       [hashSize]byte
	style     script.Style
	normalize bool
	// suspectUntil (Unix ns) is set when calls of this version killed
	// quarantineStrikes workers within a minute: until then its calls
	// take the quarantine slot.
	suspectUntil atomic.Int64
	mu           sync.Mutex
	strikes      int       // kills since strikeAt
	strikeAt     time.Time // the first of them
	// proven is set once a call completed without trouble; until then
	// first lets one call run at a time.
	proven atomic.Bool
	first  chan struct{}
	// quarantined is closed when the codec first enters quarantine.
	quarantined chan struct{}
}

var _ decoders.Decoder = (*Codec)(nil)

// ErrKilled is a call whose worker was killed or died: it overran
// Config.CallTimeout, its memory limit, or crashed.
var ErrKilled = errors.New("sandbox: codec worker killed")

// ErrQuarantined is a call of a codec whose calls killed two workers
// within the last minute, which found no room on the quarantine slot in
// time.
var ErrQuarantined = errors.New("sandbox: codec quarantined")

// Load compiles a codec file in a worker, so that a file that does not
// parse, fails at its top level, defines no entry point, or wrecks the
// worker while its top level runs, fails here as script.Compile fails;
// name is "<model-id>.js". The daemon never runs the file itself.
func (p *Pool) Load(name string, src []byte) (*Codec, error) {
	if len(src) > MaxSource {
		return nil, &remoteError{kind: script.ErrLoad, msg: fmt.Sprintf("sandbox: codec %s is %d bytes, more than %d: it is not a codec", name, len(src), MaxSource)}
	}
	c := &Codec{pool: p, file: name, model: strings.TrimSuffix(name, ".js"), src: append([]byte(nil), src...), sum: sum(src),
		first: make(chan struct{}, 1), quarantined: make(chan struct{})}
	s, err := p.acquire(p.cfg.QueueWait)
	if errors.Is(err, ErrClosed) {
		return nil, err
	}
	if err != nil {
		return c.unchecked(err), nil
	}
	defer p.releaseSlot(s)
	w, err := p.workerFor(s, c)
	if err != nil {
		return c.unchecked(err), nil
	}
	l, err := c.ensureLoaded(w)
	if err != nil {
		return nil, err
	}
	// Set before c is shared: calls only read them.
	c.style, c.normalize = l.style, l.normalize
	p.warm()
	return c, nil
}

// unchecked returns c when no worker could check it (they do not start,
// or all stay busy): a passing problem must not leave the model without
// its codec until the file changes (the Watcher loads a version once).
// A worker compiles it before its first uplink; a codec that does not
// load then fails each uplink with the load error.
func (c *Codec) unchecked(err error) *Codec {
	c.pool.log.Warn().Err(err).Str("codec", c.file).Msg("no codec worker to check the codec now; it is compiled before its first uplink")
	return c
}

// Model is the model id the codec decodes for.
func (c *Codec) Model() string { return c.model }

// File is the codec's file name.
func (c *Codec) File() string { return c.file }

// Style is the codec's calling convention.
func (c *Codec) Style() script.Style { return c.style }

// HasNormalize reports whether the codec defines normalizeUplink.
func (c *Codec) HasNormalize() bool { return c.normalize }

func (c *Codec) loadTimeout() time.Duration {
	return max(10*c.pool.cfg.ScriptTimeout, time.Second) + loadTimeoutExtra
}

// ensureLoaded compiles c in w unless it is there already, and returns
// what the worker said of it.
func (c *Codec) ensureLoaded(w *proc) (loaded, error) {
	if l, ok := w.loaded[c.sum]; ok {
		return l, nil
	}
	w.wbuf = appendLoad(beginFrame(w.wbuf, reqLoad), c.sum, c.file, c.src)
	typ, body, err := w.roundTrip(c.loadTimeout(), c.pool.cfg.MaxOutput)
	if err != nil {
		return loaded{}, c.killed(w, err, "its top level")
	}
	if w.killed.Load() {
		c.pool.record(ReasonTimeout, c.file) // answered as the deadline hit
	}
	switch typ {
	case ansLoaded:
		style, norm, err := readLoaded(body)
		if err != nil {
			w.kill()
			return loaded{}, c.killed(w, err, "its top level")
		}
		l := loaded{style, norm}
		w.loaded[c.sum] = l
		return l, nil
	case ansError:
		return loaded{}, readError(body)
	}
	w.kill()
	return loaded{}, c.killed(w, fmt.Errorf("%w: load answered with type %d", errFrame, typ), "its top level")
}

// Decode runs the codec in a worker. Any failure is an error for this
// uplink only; a worker that overran or died is replaced.
//
// Two rules keep a runaway codec from taking every worker: a codec
// version runs one call at a time until one call of it has completed
// without its worker being killed (so a new codec that wrecks workers
// holds at most one while it is found out), and a codec whose calls
// killed two workers within a minute runs on the quarantine slot only
// for the next minute; its call waits for that slot and a worker at most
// half CallTimeout from its start, so each of its uplinks is an error
// within one and a half CallTimeout.
func (c *Codec) Decode(in decoders.Input) (decoders.Result, error) {
	p := c.pool
	entry := time.Now()
	if !c.proven.Load() && !c.suspect() {
		done, err := c.firstFlight()
		if err != nil {
			return decoders.Result{}, err
		}
		defer done()
	}
	if c.suspect() {
		return c.decodeQuarantined(in, entry)
	}
	s, err := p.acquire(p.cfg.QueueWait)
	if err != nil {
		return decoders.Result{}, fmt.Errorf("codec %s: %w", c.file, err)
	}
	if c.suspect() {
		// It went wrong on another worker while this call waited.
		p.release(s)
		return c.decodeQuarantined(in, entry)
	}
	res, err := c.decodeOn(s, in)
	p.releaseSlot(s)
	var ke *killError
	if errors.As(err, &ke) && ke.reason != ReasonTimeout && c.proven.Load() && !c.suspect() {
		// A codec that has decoded before lost its worker to memory or
		// a crash: the worker may have been left near its limit by an
		// earlier codec. Once more on a fresh one; a codec that is
		// itself to blame is quarantined after its second kill.
		if s, err2 := p.acquire(p.cfg.QueueWait); err2 == nil {
			res, err = c.decodeOn(s, in)
			p.releaseSlot(s)
		}
	}
	if !errors.Is(err, ErrKilled) {
		c.proven.Store(true)
	}
	return res, err
}

// firstFlight waits until no other call of an unproven codec runs; done
// lets the next one go. A codec put in quarantine meanwhile lets its
// waiting calls go at once (to the quarantine slot).
func (c *Codec) firstFlight() (done func(), err error) {
	p := c.pool
	t := time.NewTimer(p.cfg.QueueWait)
	defer t.Stop()
	select {
	case c.first <- struct{}{}:
		return func() { <-c.first }, nil
	case <-c.quarantined:
		return func() {}, nil
	case <-p.done:
		return nil, ErrClosed
	case <-t.C:
		return nil, fmt.Errorf("codec %s: %w for %v: its first call has not completed", c.file, ErrBusy, p.cfg.QueueWait)
	}
}

// decodeQuarantined runs the call on the quarantine slot if it gets the
// slot and a worker within half CallTimeout of entry, and fails otherwise: a
// codec that keeps overrunning gets its uplinks dead-lettered quickly
// while the other workers serve everyone else.
func (c *Codec) decodeQuarantined(in decoders.Input, entry time.Time) (decoders.Result, error) {
	p := c.pool
	busy := func() (decoders.Result, error) {
		return decoders.Result{}, fmt.Errorf("%w: codec %s overran or wrecked a worker within the last minute, and its other uplinks hold the one worker it may use meanwhile: fix the codec (see the dead letters of this model), then replay them", ErrQuarantined, c.file)
	}
	wait := time.Until(entry.Add(p.cfg.CallTimeout / 2))
	if wait <= 0 {
		return busy()
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case p.suspect <- struct{}{}:
	case <-p.done:
		return decoders.Result{}, ErrClosed
	case <-t.C:
		return busy()
	}
	defer func() { <-p.suspect }()
	var s *slot
	select {
	case s = <-p.prio:
	case s = <-p.idle:
	case <-p.done:
		return decoders.Result{}, ErrClosed
	case <-t.C:
		return busy()
	}
	defer p.releaseSlot(s)
	return c.decodeOn(s, in)
}

func (c *Codec) suspect() bool {
	u := c.suspectUntil.Load()
	return u != 0 && time.Now().UnixNano() < u
}

// quarantineStrikes is how many kills within a minute put a codec in
// quarantine: one could be a loaded box stalling a good codec; two are
// a pattern.
const quarantineStrikes = 2

// strike counts a killed worker against c.
func (c *Codec) strike() {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.strikeAt) > quarantine {
		c.strikes, c.strikeAt = 0, now
	}
	c.strikes++
	if c.strikes >= quarantineStrikes {
		if c.suspectUntil.Swap(now.Add(quarantine).UnixNano()) == 0 {
			close(c.quarantined)
		}
	}
}

func (c *Codec) decodeOn(s *slot, in decoders.Input) (decoders.Result, error) {
	p := c.pool
	w, err := p.workerFor(s, c)
	if err != nil {
		return decoders.Result{}, err
	}
	if _, err := c.ensureLoaded(w); err != nil {
		return decoders.Result{}, err
	}
	var keys [8]string
	w.wbuf = appendDecode(beginFrame(w.wbuf, reqDecode), c.sum, in, keys[:0])
	typ, body, err := w.roundTrip(p.cfg.CallTimeout, p.cfg.MaxOutput+frameHeader)
	if err != nil {
		return decoders.Result{}, c.killed(w, err, c.entry())
	}
	if w.killed.Load() {
		// The answer came as the deadline killed the worker: it is used,
		// and the kill counts like any other.
		p.record(ReasonTimeout, c.file)
		c.strike()
	}
	switch typ {
	case ansResult:
		res, err := readResult(body, maxNodes(p.cfg.MaxOutput))
		if err != nil {
			w.kill()
			return decoders.Result{}, c.killed(w, err, c.entry())
		}
		return res, nil
	case ansError:
		err := readError(body)
		if errors.Is(err, script.ErrTimeout) {
			// The worker stopped it itself: a bounded cost, counted for
			// /readyz but no strike. The worker is replaced all the
			// same: what the interrupted call allocated may leave its
			// heap near the limit, where the next codec would pay.
			p.record(numReasons, c.file)
			w.retire()
		}
		if errors.Is(err, errFrame) {
			w.kill()
			return decoders.Result{}, c.killed(w, err, c.entry())
		}
		return decoders.Result{}, err
	}
	w.kill()
	return decoders.Result{}, c.killed(w, fmt.Errorf("%w: decode answered with type %d", errFrame, typ), c.entry())
}

// maxNodes bounds the values of a result: a value takes at least three
// bytes on the wire.
func maxNodes(maxOutput int) int { return maxOutput/3 + 1 }

func (c *Codec) entry() string {
	if c.style == 0 {
		return "its top level"
	}
	return c.style.String()
}

// killed turns a failed round trip into the uplink's error, records it
// and quarantines the codec.
func (c *Codec) killed(w *proc, err error, fn string) error {
	p := c.pool
	reason := w.failure(err)
	p.record(reason, c.file)
	c.strike()
	var msg string
	switch reason {
	case ReasonTimeout:
		msg = fmt.Sprintf("codec %s: %s ran longer than %v (decoders.worker_timeout), so its worker was killed: fix the codec (an endless loop, or a regular expression that backtracks) or raise the limit", c.file, fn, p.cfg.CallTimeout)
	case ReasonMemory:
		msg = fmt.Sprintf("codec %s: %s allocated more than %d MiB (decoders.worker_memory), so its worker died: fix the codec or raise the limit", c.file, fn, p.cfg.MemoryLimit>>20)
	case ReasonProtocol:
		msg = fmt.Sprintf("codec %s: %s: its worker answered out of protocol (%v) and was killed: keep the payload and report it", c.file, fn, err)
	default:
		msg = fmt.Sprintf("codec %s: %s: its worker died (%v; %s): keep the payload and report it", c.file, fn, err, w.lastWords())
	}
	ev := p.log.Warn().Str("codec", c.file).Stringer("reason", reason).Int("worker", w.cmd.Process.Pid)
	if reason != ReasonTimeout {
		ev = ev.Str("last_words", w.lastWords())
	}
	ev.Msg("codec worker killed; a new one takes its place")
	return &killError{remoteError{kind: ErrKilled, msg: "sandbox: " + msg}, reason}
}

// killError is a call whose worker was killed or died; a timeout also
// matches script.ErrTimeout.
type killError struct {
	remoteError
	reason Reason
}

func (e *killError) Is(target error) bool {
	return (e.reason == ReasonTimeout && target == script.ErrTimeout) || e.remoteError.Is(target)
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" {
		return "no message"
	}
	return s
}

func sortStrings(s []string) { sort.Strings(s) }
