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
	// slowUntil (Unix ns) is set when a call of this version ran into
	// the in-worker limit: until then its calls are not batched, so a
	// batch of such calls cannot hold the last of them past a second.
	slowUntil atomic.Int64
	// queue holds the calls waiting for a worker; whichever of them gets
	// one takes up to maxBatch of them along (see decodeBatched).
	qmu   sync.Mutex
	queue []*call
}

// call is one uplink waiting in a codec's queue.
type call struct {
	in    decoders.Input
	taken bool          // in a batch on a worker (under Codec.qmu)
	done  chan struct{} // closed once res and err are set
	res   decoders.Result
	err   error
}

// maxBatch bounds the decodes sent to a worker in one request, and
// maxBatchBytes the request's size: a batch saves a pipe round trip and
// the wake-ups on both sides per decode; a kill fails the whole batch.
const (
	maxBatch      = 16
	maxBatchBytes = 64 << 10
)

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
		l := loaded{style: style, normalize: norm}
		w.loaded[c.sum] = l
		w.loadedBytes += len(c.src)
		w.compiled.Add(1)
		return l, nil
	case ansError:
		return loaded{}, readError(body)
	}
	w.kill()
	return loaded{}, c.killed(w, fmt.Errorf("%w: load answered with type %d", errFrame, typ), "its top level")
}

// ensureRun is ensureLoaded for a decode: it also counts the version as
// run in w (WorkerStats.Run) the first time.
func (c *Codec) ensureRun(w *proc) error {
	l, err := c.ensureLoaded(w)
	if err == nil && !l.run {
		l.run = true
		w.loaded[c.sum] = l
		w.run.Add(1)
	}
	return err
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
	var (
		res decoders.Result
		err error
	)
	if c.batching() {
		res, err = c.decodeBatched(in, entry)
	} else {
		var s *slot
		s, err = p.acquire(p.cfg.QueueWait)
		if err != nil {
			return decoders.Result{}, fmt.Errorf("codec %s: %w", c.file, err)
		}
		if c.suspect() {
			// It went wrong on another worker while this call waited.
			p.release(s)
			return c.decodeQuarantined(in, entry)
		}
		res, err = c.decodeOn(s, in)
		p.releaseSlot(s)
	}
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

// decodeBatched queues the call and waits for a worker; the caller that
// gets one takes the calls of this codec queued by then (its own first
// if still there) to it in one request, so under load a round trip
// carries several decodes. Only calls of one codec share a batch: a
// worker killed for a codec fails only that codec's calls.
func (c *Codec) decodeBatched(in decoders.Input, entry time.Time) (decoders.Result, error) {
	p := c.pool
	cl := &call{in: in, done: make(chan struct{})}
	c.qmu.Lock()
	c.queue = append(c.queue, cl)
	c.qmu.Unlock()
	t := time.NewTimer(time.Until(entry.Add(p.cfg.QueueWait)))
	defer t.Stop()
	for {
		select {
		case <-cl.done:
			return c.finish(cl, entry)
		case <-p.done:
			if c.dequeue(cl) {
				return decoders.Result{}, ErrClosed
			}
		default:
		}
		select {
		case <-cl.done:
			return c.finish(cl, entry)
		case <-p.done:
			if c.dequeue(cl) {
				return decoders.Result{}, ErrClosed
			}
			<-cl.done
			return c.finish(cl, entry)
		case <-t.C:
			if c.dequeue(cl) {
				return decoders.Result{}, fmt.Errorf("codec %s: %w for %v (%d workers): codecs are too slow for the traffic; raise decoders.workers or fix slow codecs", c.file, ErrBusy, p.cfg.QueueWait, p.cfg.Workers)
			}
			<-cl.done
			return c.finish(cl, entry)
		case s := <-p.idle:
			batch := c.take()
			if len(batch) == 0 {
				// Another caller took this call along: its answer comes
				// on done.
				p.release(s)
				<-cl.done
				return c.finish(cl, entry)
			}
			if c.suspect() {
				// It went wrong on another worker while these waited:
				// each goes to the quarantine slot on its own.
				p.release(s)
				for _, b := range batch {
					b.err = errQuarantine
					close(b.done)
				}
				continue
			}
			c.runBatch(s, batch)
			p.releaseSlot(s)
		}
	}
}

// batching reports whether c's calls go through its queue, to be
// batched: once it has decoded without trouble, unless a call of it ran
// into the in-worker limit within the last minute.
func (c *Codec) batching() bool {
	return c.proven.Load() && !c.pool.cfg.noBatch && time.Now().UnixNano() >= c.slowUntil.Load()
}

// errQuarantine marks a queued call to be run on the quarantine slot by
// its own caller.
var errQuarantine = errors.New("sandbox: to the quarantine slot")

// finish returns a completed call's result.
func (c *Codec) finish(cl *call, entry time.Time) (decoders.Result, error) {
	if cl.err == errQuarantine {
		return c.decodeQuarantined(cl.in, entry)
	}
	return cl.res, cl.err
}

// dequeue removes cl from the queue unless a batch has taken it.
func (c *Codec) dequeue(cl *call) bool {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if cl.taken {
		return false
	}
	for i, q := range c.queue {
		if q == cl {
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			break
		}
	}
	return true
}

// take removes the oldest queued calls, up to maxBatch and
// maxBatchBytes of payload.
func (c *Codec) take() []*call {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	n, size := 0, 0
	for n < len(c.queue) && n < maxBatch {
		size += len(c.queue[n].in.Bytes) + 64
		if n > 0 && size > maxBatchBytes {
			break
		}
		n++
	}
	batch := make([]*call, n)
	copy(batch, c.queue)
	for _, b := range batch {
		b.taken = true
	}
	c.queue = append(c.queue[:0], c.queue[n:]...)
	if len(c.queue) == 0 && cap(c.queue) > 1024 {
		c.queue = nil // a burst's backlog is not kept
	}
	return batch
}

// runBatch decodes the calls on s's worker and completes each.
func (c *Codec) runBatch(s *slot, batch []*call) {
	defer func() {
		for _, b := range batch {
			close(b.done)
		}
	}()
	if len(batch) == 1 {
		batch[0].res, batch[0].err = c.decodeOn(s, batch[0].in)
		return
	}
	p := c.pool
	w, err := p.workerFor(s, c)
	if err == nil {
		err = c.ensureRun(w)
	}
	if err != nil {
		for _, b := range batch {
			b.err = err
		}
		return
	}
	p.batches.Add(1)
	ins := make([]decoders.Input, len(batch))
	for i, b := range batch {
		ins[i] = b.in
	}
	var keys [8]string
	w.wbuf = appendBatch(beginFrame(w.wbuf, reqBatch), c.sum, ins, keys[:0])
	// Each answer has CallTimeout from the one before it (from the
	// request, for the first): the worker sends what is ready whenever a
	// decode took long, so one slow call does not shorten the others'
	// time.
	timer := time.AfterFunc(p.cfg.CallTimeout, w.kill)
	err = writeFrame(w.in, w.wbuf)
	i := 0
	for ; err == nil && i < len(batch); i++ {
		var (
			typ  byte
			body []byte
		)
		typ, body, w.rbuf, err = readFrame(w.out, w.rbuf, p.cfg.MaxOutput+frameHeader)
		if err != nil {
			break
		}
		if !timer.Stop() {
			// The answer came as the deadline killed the worker: it is
			// used, and the kill counts like any other; the calls after
			// it fail below.
			p.record(ReasonTimeout, c.file)
			c.strike()
			batch[i].res, batch[i].err = c.answer(w, typ, body)
			i++
			err = fmt.Errorf("%w: killed after answering %d of %d decodes", ErrKilled, i, len(batch))
			break
		}
		timer.Reset(p.cfg.CallTimeout)
		var fatal bool
		batch[i].res, fatal = c.answerFatal(w, typ, body, &batch[i].err)
		if fatal {
			timer.Stop()
			ke := batch[i].err.(*killError)
			for i++; i < len(batch); i++ {
				e := *ke // each call its own error
				batch[i].err = &e
			}
			return
		}
	}
	timer.Stop()
	if i == len(batch) {
		return
	}
	if errors.Is(err, ErrKilled) && w.killed.Load() {
		// Answered as the deadline hit; the worker is gone.
		for ; i < len(batch); i++ {
			batch[i].err = &killError{remoteError{kind: ErrKilled, msg: fmt.Sprintf("sandbox: codec %s: its worker was killed for the call before this one in its batch (decoders.worker_timeout %v); this uplink was not decoded: replay it", c.file, p.cfg.CallTimeout)}, ReasonTimeout}
		}
		return
	}
	kerr := c.killed(w, err, c.entry())
	ke := kerr.(*killError)
	for ; i < len(batch); i++ {
		e := *ke // each call its own error
		batch[i].err = &e
	}
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
	if err := c.ensureRun(w); err != nil {
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
	return c.answer(w, typ, body)
}

// answerFatal is answer, also saying whether the worker was killed for
// it (so the calls after it in a batch fail too).
func (c *Codec) answerFatal(w *proc, typ byte, body []byte, err *error) (decoders.Result, bool) {
	res, e := c.answer(w, typ, body)
	*err = e
	var ke *killError
	return res, errors.As(e, &ke)
}

// answer turns a worker's answer to a decode into the call's result.
func (c *Codec) answer(w *proc, typ byte, body []byte) (decoders.Result, error) {
	p := c.pool
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
			c.slowUntil.Store(time.Now().Add(quarantine).UnixNano())
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
