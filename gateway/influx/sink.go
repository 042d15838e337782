package influx

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	ihttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
)

// ErrRejected is wrapped by Write's error when InfluxDB refused points for
// good (400 or 422: a field type conflict, a point outside the retention
// policy) or AppendPoint could not encode them. Retrying cannot help, so
// the caller dead-letters the message. errors.Is(err,
// gateway.ErrRejected) holds as well, which is what the pipeline checks.
//
// Points of the same Write that InfluxDB did take stay stored; replaying
// the message after a fix rewrites them byte for byte, which overwrites.
var ErrRejected error = rejectedError("influx: InfluxDB rejected the points")

type rejectedError string

func (e rejectedError) Error() string        { return string(e) }
func (e rejectedError) Is(target error) bool { return target == gateway.ErrRejected }

// ErrClosed is returned by Write when the Sink is closed (or its Run has
// ended) before InfluxDB took the points; they are not stored, so the
// message must not be acknowledged.
var ErrClosed = errors.New("influx: sink closed before InfluxDB took the points")

// timing holds the retry delays; tests shorten them.
type timing struct {
	minBackoff    time.Duration // first retry after a 429, 5xx or network error
	maxBackoff    time.Duration // cap of the doubling
	maxRetryAfter time.Duration // cap on a server's Retry-After
	authRetry     time.Duration // 401, 403, 404: an operator has to act; do not hammer
}

var defaultTiming = timing{
	minBackoff:    100 * time.Millisecond,
	maxBackoff:    30 * time.Second,
	maxRetryAfter: 5 * time.Minute,
	authRetry:     10 * time.Second,
}

// maxPooledBuffer keeps one huge Write from pinning its buffer in the pool.
const maxPooledBuffer = 1 << 20

// Sink writes points to InfluxDB through the v2 write API. It gathers
// concurrent Write calls into one request (group commit): a batch leaves
// when it holds BatchSize points or FlushInterval after its first point,
// and each Write returns only when the request carrying its points got a
// 2xx, so whatever a caller acknowledges upstream is stored.
//
// Run must be running for writes to go out; Close flushes and stops it.
//
// The HTTP exchange goes through influxdb-client-go's api/http Service
// rather than its WriteAPI: the Service takes our request body as is, so
// the Sink keeps its own byte-exact encoding, its own gzip and batching,
// and sees every status code and Retry-After for the policy below, which
// WriteAPIBlocking (no batching of our own, its own retry and error
// mapping) would hide.
type Sink struct {
	cfg      Config
	log      zerolog.Logger
	client   *http.Client
	svc      ihttp.Service
	writeURL string
	auth     string // Authorization header value, "" for none
	gzip     bool   // compress request bodies (Config.Gzip resolved)
	timing   timing

	reqs      chan *request
	closing   chan struct{} // closed by Close: flush, accept no more
	closeOnce sync.Once
	abortCtx  context.Context // cancelled when Run's ctx ends or Close gives up
	abort     context.CancelFunc
	running   atomic.Bool
	done      chan struct{} // closed when Run has returned

	// accepted counts requests taken into a batch; tests wait on it.
	accepted atomic.Int64
	// stats counts requests, retries and latency for Stats (stats.go).
	stats *writeStats
	// refusals logs records InfluxDB refused, summed up per period.
	refusals *refusalLog
	// retryNow is closed (and replaced) by RetryNow.
	retryMu  sync.Mutex
	retryNow chan struct{}

	bufs  sync.Pool // *[]byte, one Write's lines
	gzips sync.Pool // *gzip.Writer
}

var _ gateway.PointsCopier = (*Sink)(nil)

// CopiesPoints marks Write as done with the points when it returns: it
// encodes them before queueing the request.
func (s *Sink) CopiesPoints() {}

// New checks cfg, fills in its defaults and returns a Sink; call Run to
// start it. It does not contact InfluxDB: an unreachable server at start
// is just the first thing the retry policy handles.
func New(cfg Config, log zerolog.Logger) (*Sink, error) {
	return newSink(cfg, log, defaultTiming)
}

func newSink(cfg Config, log zerolog.Logger, tm timing) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	u, _ := url.Parse(cfg.URL) // checked by Validate
	var tc *tls.Config
	if u.Scheme == "https" {
		var err error
		if tc, err = cfg.TLS.Client(u.Hostname()); err != nil {
			return nil, fmt.Errorf("influx: %w", err)
		}
		if cfg.TLS.InsecureSkipVerify {
			log.Warn().Msg("influx.tls.insecure_skip_verify is on: InfluxDB's certificate is not checked, so anyone on the network path can read the token and change the data; use influx.tls.ca_file instead")
		}
	}

	client := &http.Client{
		// A backstop only: every request also has its own context deadline.
		Timeout: cfg.Timeout + 5*time.Second,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:       tc,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: cfg.Timeout,
			MaxIdleConnsPerHost:   cfg.MaxInFlight + 2,
			IdleConnTimeout:       90 * time.Second,
		},
	}
	writeURL, auth := cfg.writeURL()
	s := &Sink{
		cfg:      cfg,
		log:      log,
		client:   client,
		svc:      ihttp.NewService(cfg.URL, auth, ihttp.DefaultOptions().SetHTTPClient(client).SetApplicationName("sensorgate")),
		writeURL: writeURL,
		auth:     auth,
		gzip:     cfg.compress(),
		timing:   tm,
		reqs:     make(chan *request),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
		stats:    newWriteStats(),
		refusals: newRefusalLog(log, refusalPeriod),
		retryNow: make(chan struct{}),
	}
	s.abortCtx, s.abort = context.WithCancel(context.Background())
	s.bufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	return s, nil
}

// request is one Write call waiting for InfluxDB.
type request struct {
	ctx    context.Context
	buf    *[]byte // encoded lines, from Sink.bufs
	n      int     // lines in buf
	result chan error
	// quiet: the caller logs a refusal itself (a Spooled, which keeps
	// the record as a dead letter).
	quiet bool

	mu    sync.Mutex
	parts int   // parts not yet finished (a 413 may split one request)
	err   error // first failure of any part
}

// finish records the outcome of one part; the last part reports to Write.
func (r *request) finish(err error) {
	r.mu.Lock()
	if err != nil && r.err == nil {
		r.err = err
	}
	r.parts--
	last := r.parts == 0
	r.mu.Unlock()
	if last {
		r.result <- r.err // buffered: never blocks
	}
}

// part is a request's lines, or a slice of them after a 413 split.
type part struct {
	r     *request
	lines []byte
	n     int
}

// Write stores pts in InfluxDB. It returns nil once a request carrying
// them got a 2xx; an error wrapping ErrRejected when InfluxDB refused some
// of them for good or some could not be encoded (the others are stored);
// ctx.Err() when ctx ended first (the points may or may not be stored:
// do not acknowledge, a redelivery overwrites); ErrClosed after Close.
// It is safe for concurrent use; concurrent calls share requests.
func (s *Sink) Write(ctx context.Context, pts []gateway.Point) error {
	if len(pts) == 0 {
		return nil
	}
	select {
	case <-s.closing:
		return ErrClosed
	case <-s.done:
		return ErrClosed
	default:
	}
	bp := s.bufs.Get().(*[]byte)
	buf := (*bp)[:0]
	n := 0
	var encErrs []error
	for _, p := range pts {
		before := len(buf)
		var err error
		buf, err = AppendPoint(buf, p)
		if len(buf) > before {
			n++
		}
		if err != nil {
			encErrs = append(encErrs, err)
		}
	}
	*bp = buf
	var encErr error
	if len(encErrs) > 0 {
		encErr = fmt.Errorf("%w: %w", ErrRejected, errors.Join(encErrs...))
	}
	if n == 0 {
		s.putBuf(bp)
		return encErr
	}

	r := newRequest(ctx, bp, n)
	if err := s.enqueue(ctx, r); err != nil {
		s.putBuf(bp)
		return err
	}
	select {
	case err := <-r.result:
		s.putBuf(bp) // every part is finished: nobody reads buf any more
		if err != nil {
			return errors.Join(err, encErr)
		}
		return encErr
	case <-ctx.Done():
		// The batch may still carry buf, so it is not reused.
		return ctx.Err()
	}
}

func newRequest(ctx context.Context, buf *[]byte, n int) *request {
	return &request{ctx: ctx, buf: buf, n: n, parts: 1, result: make(chan error, 1)}
}

// enqueue hands a request to the collector.
func (s *Sink) enqueue(ctx context.Context, r *request) error {
	select {
	case s.reqs <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return ErrClosed
	case <-s.done:
		return ErrClosed
	}
}

// writeLines stores already encoded records (each one message's lines,
// newline-terminated) and returns one outcome per record, as Write would
// for each. The records share requests like concurrent Writes do; the
// call returns when every record has its outcome or ctx ends (the records
// without an outcome then get ctx.Err()).
func (s *Sink) writeLines(ctx context.Context, recs [][]byte) []error {
	errs := make([]error, len(recs))
	reqs := make([]*request, len(recs))
	for i, rec := range recs {
		n := bytes.Count(rec, []byte{'\n'})
		if n == 0 {
			continue // nothing to store
		}
		rec := rec
		r := newRequest(ctx, &rec, n)
		r.quiet = true
		if err := s.enqueue(ctx, r); err != nil {
			for j := i; j < len(recs); j++ {
				errs[j] = err
			}
			break
		}
		reqs[i] = r
	}
	for i, r := range reqs {
		if r == nil {
			continue
		}
		select {
		case errs[i] = <-r.result:
		case <-ctx.Done():
			errs[i] = ctx.Err()
		}
	}
	return errs
}

func (s *Sink) putBuf(bp *[]byte) {
	if cap(*bp) <= maxPooledBuffer {
		s.bufs.Put(bp)
	}
}

// Run sends batches until ctx ends or Close has flushed everything. When
// ctx ends first, pending and in-flight writes fail with ErrClosed (their
// messages stay unacknowledged) and Run returns ctx.Err(); after Close it
// returns nil. Run may be called once.
func (s *Sink) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("influx: Run called twice")
	}
	defer close(s.done)
	defer s.refusals.close()
	stop := context.AfterFunc(ctx, s.abort)
	defer stop()
	defer s.client.CloseIdleConnections()
	if s.collect() {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// Close stops accepting writes, sends what is pending and waits until
// InfluxDB took it or ctx ends; then it fails the rest with ErrClosed and
// returns an error wrapping ctx.Err(). Run returns once Close is done.
func (s *Sink) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { close(s.closing) })
	if !s.running.Load() {
		s.abort()
		return nil // never ran: nothing was accepted
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.abort()
		<-s.done
		return fmt.Errorf("influx: flush at close: InfluxDB did not take every pending point in time (their messages stay unacknowledged): %w", ctx.Err())
	}
}

// collect gathers requests into batches and hands them to delivery
// goroutines, at most MaxInFlight at once. It reports whether it was
// aborted rather than closed.
func (s *Sink) collect() (aborted bool) {
	var (
		wg       sync.WaitGroup
		pending  []part
		npts     int
		timer    = time.NewTimer(time.Hour)
		timerC   <-chan time.Time
		due      bool // the pending batch may leave before it is full
		closed   bool
		inflight int
		freed    = make(chan struct{}, s.cfg.MaxInFlight)
		reqs     = s.reqs
		closing  = s.closing
	)
	timer.Stop()
	defer timer.Stop()
	for {
		if closed && len(pending) == 0 && inflight == 0 {
			return false
		}
		in := reqs
		if npts >= s.cfg.BatchSize {
			in = nil // full and every sender busy: writers wait (backpressure)
		}
		select {
		case r := <-in:
			s.accepted.Add(1)
			pending = append(pending, part{r: r, lines: *r.buf, n: r.n})
			npts += r.n
			if len(pending) == 1 {
				timer.Reset(s.cfg.FlushInterval)
				timerC = timer.C
			}
		case <-timerC:
			due, timerC = true, nil
		case <-freed:
			inflight--
		case <-closing:
			closed, due, closing, reqs = true, true, nil, nil
		case <-s.abortCtx.Done():
			for _, p := range pending {
				p.r.finish(ErrClosed)
			}
			wg.Wait()
			return true
		}
		// Group commit: with no request in flight, send at once; while one
		// is in flight, let the batch grow until it is full, its flush
		// interval passes or the link is idle again. Waiting for the timer
		// on an idle link would cap throughput at in-flight writers per
		// interval, since writers wait for their batch's answer.
		if len(pending) > 0 && inflight < s.cfg.MaxInFlight && (due || inflight == 0 || npts >= s.cfg.BatchSize) {
			batch := pending
			pending, npts, due, timerC = nil, 0, closed, nil
			timer.Stop()
			inflight++
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.deliver(batch)
				freed <- struct{}{}
			}()
		}
	}
}

// outcome is what one write request came to.
type outcome struct {
	status     int // 0: no HTTP response
	msg        string
	retryAfter time.Duration
	err        error // nil on 2xx
}

// deliver sends parts until each is stored, rejected, or abandoned by its
// caller, applying the status policy.
func (s *Sink) deliver(parts []part) { s.deliverProbing(parts, true) }

// deliverProbing is deliver; probe says whether a refusal that names
// suspect lines may be settled by sending those alone (Sink.probe). A
// probe that settles nothing delivers its parts without probing, so that
// the sorting ends however InfluxDB answers.
func (s *Sink) deliverProbing(parts []part, probe bool) {
	for attempt := 0; ; attempt++ {
		parts = alive(parts)
		if len(parts) == 0 {
			return // every caller gave up; their messages stay unacknowledged
		}
		if s.abortCtx.Err() != nil {
			finishAll(parts, ErrClosed)
			return
		}
		ctx, release := s.liveContext(parts)
		o := s.post(ctx, parts)
		if o.err == nil {
			release()
			s.stats.points.Add(uint64(countPoints(parts)))
			if attempt > 0 {
				s.log.Info().Int("attempts", attempt+1).Int("points", countPoints(parts)).Msg("InfluxDB took the batch after retries")
			}
			finishAll(parts, nil)
			return
		}
		if ctx.Err() != nil {
			// Every caller gave up or the Sink aborts: not InfluxDB's
			// failure; the next round drops or fails the parts.
			release()
			continue
		}
		var delay time.Duration
		switch o.status {
		case http.StatusBadRequest, http.StatusUnprocessableEntity:
			release()
			ref := &refusal{status: o.status, msg: o.msg}
			if n, ok := droppedCount(o.msg); ok && n >= countPoints(parts) {
				ref.all = true
			}
			if len(parts) > 1 && !ref.all {
				// Some callers' points are bad; InfluxDB kept the rest
				// (partial write) and did not say which. Halve until each
				// half is taken or refused whole: a run of refused writes
				// costs a request per halving, not one per write.
				// Resending the good lines overwrites them.
				s.log.Debug().Int("status", o.status).Int("writes", len(parts)).Str("error", o.msg).Msg("batch rejected; retrying its writes apart")
				s.sortOut(parts, o.msg, probe)
				return
			}
			s.refuse(parts, ref)
			return
		case http.StatusRequestEntityTooLarge:
			release()
			a, b, ok := split(parts)
			if !ok {
				s.log.Warn().Int("status", o.status).Int("bytes", len(parts[0].lines)).Msg("one point is larger than InfluxDB takes (http max-body-size); its message goes to dead letters")
				parts[0].r.finish(fmt.Errorf("%w (413): one point of %d bytes is larger than InfluxDB's max-body-size", ErrRejected, len(parts[0].lines)))
				return
			}
			s.log.Warn().Int("points", countPoints(parts)).Msg("request too large for InfluxDB (413); splitting it")
			s.deliver(a)
			s.deliver(b)
			return
		case http.StatusUnauthorized, http.StatusForbidden:
			delay = s.timing.authRetry
			s.log.Error().Int("status", o.status).Str("url", s.cfg.URL).Str("error", o.msg).Stringer("retry_in", delay).
				Msg("InfluxDB refuses the token: fix influx.token (on InfluxDB 1.8 with auth: user:password); points are kept and retried")
		case http.StatusNotFound:
			delay = s.timing.authRetry
			s.log.Error().Int("status", o.status).Str("bucket", s.cfg.Target()).Str("error", o.msg).Stringer("retry_in", delay).
				Msg(`InfluxDB bucket not found: create it or fix influx.bucket (on InfluxDB 1.8: CREATE DATABASE, bucket "db/rp"); points are kept and retried`)
		default: // 429, 5xx, no response, timeouts, anything unexpected
			delay = s.backoff(attempt)
			if o.retryAfter > delay {
				delay = min(o.retryAfter, s.timing.maxRetryAfter)
			}
			if attempt&(attempt+1) == 0 { // attempts 0, 1, 3, 7, …: loud at first, then throttled
				ev := s.log.Warn().Int("attempt", attempt+1).Stringer("retry_in", delay).Int("points", countPoints(parts))
				if o.status != 0 {
					ev = ev.Int("status", o.status)
				}
				ev.Str("error", o.msg).Msg("InfluxDB write failed; retrying")
			}
		}
		s.stats.retries[classIndex(o.status)].Add(1)
		s.waitRetry(ctx, delay)
		release()
	}
}

// sortOut delivers parts InfluxDB refused, at least in part, as one
// request, with msg its refusal: sending them together again would only
// be refused again. When msg names suspect lines (suspects.go) and
// InfluxDB refuses each of them alone, their parts are refused and the
// rest delivered; otherwise the parts go in halves, each halved further
// while refused with some lines taken. It returns when every part is
// finished or abandoned.
func (s *Sink) sortOut(parts []part, msg string, probe bool) {
	if len(parts) < 2 {
		s.deliverProbing(parts, probe)
		return
	}
	if probe && s.probe(parts, msg) {
		return
	}
	h := len(parts) / 2
	s.deliverProbing(parts[:h], probe)
	s.deliverProbing(parts[h:], probe)
}

// probe settles parts by their suspect lines, those msg names (see
// suspects.go), and delivers the other parts; false when msg names none
// of their lines.
func (s *Sink) probe(parts []part, msg string) bool {
	match := suspects(msg)
	if match == nil {
		return false
	}
	var sus, rest []part
	var lines [][]byte
	for _, p := range parts {
		var mine []byte
		for ln := p.lines; len(ln) > 0; {
			line := ln
			if i := bytes.IndexByte(ln, '\n'); i >= 0 {
				line, ln = ln[:i+1], ln[i+1:]
			} else {
				ln = nil
			}
			if match(line) {
				mine = append(mine, line...)
			}
		}
		if mine != nil {
			sus, lines = append(sus, p), append(lines, mine)
		} else {
			rest = append(rest, p)
		}
	}
	if len(sus) == 0 {
		return false
	}
	s.probeSuspects(sus, lines)
	if len(rest) > 0 {
		s.deliverProbing(rest, true)
	}
	return true
}

// probeSuspects sends the suspect lines of parts (lines[i] of parts[i])
// as one request. When InfluxDB refuses them all, the parts are refused;
// when some, each half is probed apart, and a part alone is refused (one
// refused point refuses the write); when InfluxDB takes them, or fails
// otherwise, the parts are delivered whole, without probing. The suspect
// lines are the parts' own, so storing them does no harm.
func (s *Sink) probeSuspects(parts []part, lines [][]byte) {
	var body []byte
	for _, l := range lines {
		body = append(body, l...)
	}
	n := bytes.Count(body, newline)
	ctx, release := s.liveContext(parts)
	o := s.post(ctx, []part{{r: parts[0].r, lines: body, n: n}})
	release()
	if o.status != http.StatusBadRequest && o.status != http.StatusUnprocessableEntity {
		s.deliverProbing(parts, false)
		return
	}
	d, ok := droppedCount(o.msg)
	if all := ok && d >= n; all || len(parts) == 1 {
		// A part alone is refused, but not all its lines need be: it may
		// hold several records (a Spooled run), which its caller sorts.
		s.refuse(parts, &refusal{status: o.status, msg: o.msg, all: all && n == countPoints(parts)})
		return
	}
	h := len(parts) / 2
	s.probeSuspects(parts[:h], lines[:h])
	s.probeSuspects(parts[h:], lines[h:])
}

// refuse finishes parts InfluxDB refused for good.
func (s *Sink) refuse(parts []part, ref *refusal) {
	for _, p := range parts {
		if !p.r.quiet {
			s.refusals.add(refusedRecord{lines: p.n, err: ref})
		}
		p.r.finish(ref)
	}
}

// alive drops parts whose caller has given up: its Write already returned
// ctx.Err(), so storing them would be wasted work (and harmless).
func alive(parts []part) []part {
	out := parts[:0:0]
	for _, p := range parts {
		if p.r.ctx.Err() == nil {
			out = append(out, p)
		}
	}
	return out
}

func finishAll(parts []part, err error) {
	for _, p := range parts {
		p.r.finish(err)
	}
}

func countPoints(parts []part) int {
	n := 0
	for _, p := range parts {
		n += p.n
	}
	return n
}

// split halves a batch for a 413: by parts when there are several,
// otherwise by lines of the single part. ok is false for one line.
func split(parts []part) (a, b []part, ok bool) {
	if len(parts) > 1 {
		h := len(parts) / 2
		return parts[:h], parts[h:], true
	}
	p := parts[0]
	if p.n < 2 {
		return nil, nil, false
	}
	// Cut after the line that holds the middle byte.
	cut := bytes.IndexByte(p.lines[len(p.lines)/2:], '\n') + len(p.lines)/2 + 1
	if cut >= len(p.lines) {
		cut = bytes.LastIndexByte(p.lines[:len(p.lines)-1], '\n') + 1
	}
	na := bytes.Count(p.lines[:cut], []byte{'\n'})
	p.r.mu.Lock()
	p.r.parts++
	p.r.mu.Unlock()
	return []part{{r: p.r, lines: p.lines[:cut], n: na}}, []part{{r: p.r, lines: p.lines[cut:], n: p.n - na}}, true
}

// liveContext is cancelled when every caller of parts has given up, or the
// Sink aborts, so a batch nobody waits for stops retrying.
func (s *Sink) liveContext(parts []part) (context.Context, func()) {
	ctx, cancel := context.WithCancel(s.abortCtx)
	// Parts from one writeLines call (a spool chunk: hundreds of records)
	// share one context, and they come in a row: watch each context once.
	var ctxs []context.Context
	for i, p := range parts {
		if i == 0 || p.r.ctx != parts[i-1].r.ctx {
			ctxs = append(ctxs, p.r.ctx)
		}
	}
	var live atomic.Int64
	live.Store(int64(len(ctxs)))
	stops := make([]func() bool, len(ctxs))
	for i, c := range ctxs {
		stops[i] = context.AfterFunc(c, func() {
			if live.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// waitRetry waits d or until ctx ends, cut short when the Monitor saw InfluxDB take
// writes again (RetryNow): a database just created, a server back.
func (s *Sink) waitRetry(ctx context.Context, d time.Duration) {
	s.retryMu.Lock()
	now := s.retryNow
	s.retryMu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-now:
	case <-ctx.Done():
	}
}

// RetryNow ends every retry delay under way: the target takes writes
// again, so held points need not wait out their backoff.
func (s *Sink) RetryNow() {
	s.retryMu.Lock()
	close(s.retryNow)
	s.retryNow = make(chan struct{})
	s.retryMu.Unlock()
}

// backoff doubles from minBackoff up to maxBackoff, with jitter (half to
// all of it) so edge boxes recovering together do not retry in lockstep.
func (s *Sink) backoff(attempt int) time.Duration {
	d := s.timing.maxBackoff
	if attempt < 30 {
		d = min(s.timing.minBackoff<<attempt, s.timing.maxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

// post sends parts as one request.
func (s *Sink) post(ctx context.Context, parts []part) outcome {
	var (
		body    io.Reader
		size    int64
		getBody func() (io.ReadCloser, error)
	)
	if s.gzip {
		body = bytes.NewReader(s.gzipped(parts)) // NewRequest sets the rest
	} else {
		// Sent from where the lines are: a batch is up to a few MiB, and
		// joining it into one buffer would be the sink's largest
		// allocation. GetBody lets the transport retry on a fresh
		// connection when a kept-alive one turns out closed.
		getBody = func() (io.ReadCloser, error) { return io.NopCloser(linesReader(parts)), nil }
		body = linesReader(parts)
		for _, p := range parts {
			size += int64(len(p.lines))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	start := time.Now()
	perr := s.svc.DoPostRequest(ctx, s.writeURL, body,
		func(req *http.Request) {
			req.Header.Set("Content-Type", "text/plain; charset=utf-8")
			if s.gzip {
				req.Header.Set("Content-Encoding", "gzip")
			} else {
				// Content-Length rather than chunked, which NewRequest
				// chooses for a reader it does not know.
				req.ContentLength, req.GetBody = size, getBody
			}
		},
		func(resp *http.Response) error {
			// Drain so the connection is reused; the Service leaves a 2xx
			// body to us.
			_, _ = io.Copy(io.Discard, resp.Body)
			return resp.Body.Close()
		})
	took := time.Since(start)
	if perr == nil {
		s.stats.request(http.StatusNoContent, took, false, "")
		return outcome{}
	}
	o := outcome{status: perr.StatusCode, err: perr}
	defer func() { s.stats.request(o.status, took, ctx.Err() == nil, o.msg) }()
	if o.status == 0 {
		o.msg = perr.Error()
		return o
	}
	// InfluxDB 1.8 answers {"error": "..."}, which the Service does not
	// decode; it copies X-Influxdb-Error (the first 1 KiB) into Message.
	o.msg = perr.Message
	if o.msg == "" {
		o.msg = perr.Error()
	}
	o.retryAfter = retryAfter(perr.Header.Get("Retry-After"))
	return o
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

// linesReader reads the parts' lines one after the other.
func linesReader(parts []part) *net.Buffers {
	bufs := make(net.Buffers, len(parts))
	for i, p := range parts {
		bufs[i] = p.lines
	}
	return &bufs
}

// gzipped compresses the parts' lines into one buffer.
func (s *Sink) gzipped(parts []part) []byte {
	size := 0
	for _, p := range parts {
		size += len(p.lines)
	}
	var out bytes.Buffer
	out.Grow(size/4 + 64)
	zw, _ := s.gzips.Get().(*gzip.Writer)
	if zw == nil {
		// BestSpeed: line protocol compresses well anyway, and the edge
		// box's CPU is better spent decoding.
		zw, _ = gzip.NewWriterLevel(&out, gzip.BestSpeed)
	} else {
		zw.Reset(&out)
	}
	for _, p := range parts {
		_, _ = zw.Write(p.lines) // a bytes.Buffer does not fail
	}
	_ = zw.Close()
	zw.Reset(io.Discard) // let the pool not hold on to this body
	s.gzips.Put(zw)
	return out.Bytes()
}
