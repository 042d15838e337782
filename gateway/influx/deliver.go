package influx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/spool"
)

// Delivery, in one place (ARCHITECTURE §6):
//
//	Writer.Write ─► encode ─► spool.Append (fsync)          the pipeline's sink
//	Deliverer.Run: read a chunk of the spool ─► cut batches of batch_size lines
//	  ─► MaxInFlight batches in flight, each: post ─► status policy
//	       2xx: done · 429/5xx/network: backoff, Retry-After · 401/403/404: slow retry
//	       413: halve (records, then lines) · 400/422: to the sorting lane
//	  ─► sorting lane: suspect lines, halving ─► refused records become dead letters
//	  ─► acknowledge the spool in order, never past a batch not yet settled
//
// The spool is the only queue: a record leaves it only once InfluxDB took
// it or it is kept as a dead letter, so a crash or shutdown re-sends at
// most the records in flight, which overwrite, being byte-identical.

// Writer is the pipeline's gateway.Sink: Write encodes a message's points
// as line protocol and appends them to the spool as one record, returning
// once they are durable there, so the message can be acknowledged even
// while InfluxDB is down. A Deliverer sends the spool to InfluxDB.
type Writer struct {
	spool *spool.Spool
	bufs  sync.Pool // *[]byte
}

// NewWriter returns a Writer appending to sp.
func NewWriter(sp *spool.Spool) *Writer {
	w := &Writer{spool: sp}
	w.bufs.New = func() any { b := make([]byte, 0, 2048); return &b }
	return w
}

// Write encodes pts and appends them to the spool as one record. Points
// that cannot be encoded (NaN, bad names) are reported with an error
// wrapping ErrRejected after the others were spooled. It is done with
// pts when it returns, as gateway.Sink requires.
func (w *Writer) Write(ctx context.Context, pts []gateway.Point) error {
	if len(pts) == 0 {
		return nil
	}
	bp := w.bufs.Get().(*[]byte)
	buf := (*bp)[:0]
	var encErrs []error
	for _, p := range pts {
		var err error
		if buf, err = AppendPoint(buf, p); err != nil {
			encErrs = append(encErrs, err)
		}
	}
	var err error
	if len(buf) > 0 {
		err = w.spool.Append(ctx, buf)
	}
	*bp = buf
	if cap(buf) <= maxPooledBuffer {
		w.bufs.Put(bp)
	}
	if err != nil {
		return fmt.Errorf("influx: spool the points: %w", err)
	}
	if len(encErrs) > 0 {
		return fmt.Errorf("%w: %w", ErrRejected, errors.Join(encErrs...))
	}
	return nil
}

// Deliverer sends the spool to InfluxDB and acknowledges what InfluxDB
// took or what was kept as a dead letter. A record InfluxDB refuses for
// good (400/422) becomes a dead letter holding its line protocol, reason
// rejected_by_influx, so it is kept and can be re-sent after the conflict
// is fixed.
type Deliverer struct {
	c        *Client
	spool    *spool.Spool
	dl       gateway.DeadLetters
	log      zerolog.Logger
	refusals *refusalLog // refused records, summed up per period

	// chunk bounds the records one spool read takes; with group commit
	// they leave as a few large requests. chunkMax bounds its bytes
	// (Config.BatchBytes): MaxInFlight read buffers are in use at once,
	// so it is what delivery adds to the daemon's footprint. The default
	// 512 KiB is some 2,800 lines of typical uplinks; 2 MiB cost 10 MB
	// more peak RSS in the end-to-end backlog benchmark for 0.88× of
	// InfluxDB's CPU per uplink (BENCHMARKS.md, 2026-12-07 17:43 UTC).
	chunk    int
	chunkMax int // bytes
	// linger is the FlushInterval: without a backlog, the spool is read
	// at most once per linger, so that records arriving in a steady
	// stream leave as one request per interval rather than one per spool
	// commit. InfluxDB 1.8 syncs its WAL for every write request; at a
	// few hundred small requests a second that was most of its work.
	linger time.Duration
	// sortMax bounds the bytes of refused records waiting for, or in,
	// the sorting lane; past it, delivery waits for the lane.
	sortMax int
	// dlConcurrency is how many dead letters the lane stores at once, so
	// that a store that commits concurrent writes together can.
	dlConcurrency int
	// settled, when set (tests), hears each record's outcome: nil stored,
	// else the refusal it was kept as a dead letter for.
	settled func(data []byte, err error)
	// buffers counts the read buffers allocated: at most MaxInFlight
	// when finished batches hand theirs back in time (tests check).
	buffers atomic.Int64
	// hurry is closed by Drain: the shutdown drain does not linger.
	hurry     chan struct{}
	hurryOnce sync.Once
	// liveAfter: a full read whose first record is older than this is a
	// backlog, and the records appended from then on are read by a live
	// reader of the spool and sent alongside it, once per linger, rather
	// than after it (see read).
	liveAfter time.Duration
	// liveBatches counts batches read by a live reader (tests).
	liveBatches atomic.Int64
}

// defaultLiveAfter: a backlog older than this gets a live reader. Under
// normal load records wait at most linger plus a request; a drain after
// a restart or an outage is what leaves older ones.
const defaultLiveAfter = 2 * time.Second

// NewDeliverer returns a Deliverer of sp to InfluxDB through c, keeping
// refused records in dl; Run starts it.
func NewDeliverer(c *Client, sp *spool.Spool, dl gateway.DeadLetters, log zerolog.Logger) *Deliverer {
	return &Deliverer{c: c, spool: sp, dl: dl, log: log, refusals: newRefusalLog(log, refusalPeriod),
		chunk: 2 * c.cfg.BatchSize, chunkMax: c.cfg.BatchBytes, linger: c.cfg.FlushInterval,
		sortMax: defaultSortMax, dlConcurrency: 16, hurry: make(chan struct{}), liveAfter: defaultLiveAfter}
}

// Start runs Run until the returned stop is called. stop is the shutdown
// drain of the daemon and of an offline replay alike: it waits until every
// spooled record is delivered or ctx ends (notDrained then says how many
// records stay in the spool for the next start), then stops delivery,
// abandoning requests under way, and returns Run's error.
func (d *Deliverer) Start() (stop func(ctx context.Context) (notDrained, runErr error)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	return func(drainCtx context.Context) (error, error) {
		notDrained := d.Drain(drainCtx)
		cancel()
		return notDrained, <-done
	}
}

// Drain waits until every spooled record was delivered or ctx ends; from
// its call on, delivery reads the spool without lingering.
func (d *Deliverer) Drain(ctx context.Context) error {
	d.hurryOnce.Do(func() { close(d.hurry) })
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for d.spool.Stats().Pending > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("influx: %d spooled records not yet in InfluxDB at shutdown; they stay in the spool for the next start: %w", d.spool.Stats().Pending, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// batch is consecutive spooled records sent as one request.
type batch struct {
	recs []spool.Record // in a read buffer: valid until the batch leaves its worker
	body []byte         // recs' data as one slice, when they lie together
	last spool.Position
	done chan struct{} // closed when every record is settled, or never will be in this run
	ok   bool          // set before done closes: every record stored or kept as a dead letter
	// live: read by the spool's live reader, ahead of the backlog;
	// join: no records, the mark that the spool's reader has passed
	// every record before the live reader's (the acknowledgement takes
	// the live batches next).
	live, join bool
}

// readChunk is one spool read: its buffer is free again once each of its
// batches has left its worker.
type readChunk struct {
	buf  *spool.Buffer
	left atomic.Int32
	idle chan struct{} // closed when left reaches 0
}

// Run delivers spooled records until ctx ends: it reads the spool in
// chunks, cuts them into batches of up to BatchSize lines and has up to
// MaxInFlight of them posted at once, each retried under the status
// policy until it is settled. A batch InfluxDB refused in part goes to the
// sorting lane, which finds the refused records among it while the batches
// after it keep flowing. Records are acknowledged in spool order, up to
// the last batch settled with every batch before it, so a batch still
// retrying or being sorted holds back the acknowledgement of those after
// it. Without a backlog (a read did not fill its chunk) a chunk is
// delivered before the next is read, and the next is read no sooner than
// linger after it.
func (d *Deliverer) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer d.refusals.close()
	defer d.c.client.CloseIdleConnections()
	var (
		slots = make(chan struct{}, d.c.cfg.MaxInFlight)
		order = make(chan *batch, d.c.cfg.MaxInFlight)
		// Read buffers whose batches are done with, for the next reads:
		// as many as can be in use at once.
		free          = make(chan *spool.Buffer, d.c.cfg.MaxInFlight)
		lane          = newSorter(d)
		workers, rest sync.WaitGroup
		ackErr        error
	)
	rest.Add(2)
	go func() {
		defer rest.Done()
		if ackErr = d.acknowledge(order); ackErr != nil {
			cancel(ackErr)
		}
	}()
	go func() {
		defer rest.Done()
		lane.run(ctx)
	}()
	err := d.read(ctx, lane, order, slots, free, &workers)
	close(order)
	workers.Wait() // no batch hands the lane a run any more
	lane.close()
	rest.Wait() // every batch settled or abandoned, and acknowledged as far as it may be
	if ackErr != nil {
		return ackErr
	}
	return err
}

// read reads chunks, cuts them into batches, queues each for acknowledge
// in order and hands it to a worker, at most MaxInFlight at once.
//
// A backlog (a full read of records older than liveAfter: InfluxDB was
// down, or the daemon stopped) is not all that gets sent until it is
// drained: a live reader of the spool takes the records appended from
// then on, and once per linger what it has goes out between the
// backlog's batches, so live readings reach InfluxDB within about a
// linger and a request instead of after hours of drain. When the spool's
// reader has caught up with the live reader's first record, it takes
// over the live reader's position (the spool's join) and the read goes
// on as before. Acknowledgement stays in spool order (acknowledge).
func (d *Deliverer) read(ctx context.Context, lane *sorter, order chan<- *batch, slots chan struct{}, free chan *spool.Buffer, workers *sync.WaitGroup) error {
	r := &reader{d: d, lane: lane, order: order, slots: slots, free: free, workers: workers}
	pause := time.NewTimer(time.Hour)
	pause.Stop()
	defer pause.Stop()
	var (
		live     *spool.Live
		liveRead time.Time
	)
	defer func() {
		if live != nil {
			live.Close() // not joined: its records are read again, by the next start
		}
	}()
	for {
		// A slot before the read, for its first batch: a read buffer is
		// filled only when a batch can leave, so at most MaxInFlight of
		// them hold records (one chunk is usually one batch).
		if !r.slot(ctx) {
			return nil
		}
		buf := r.buffer()
		recs, err := d.spool.ReadBuffered(ctx, buf, d.chunk, d.chunkMax)
		readAt := time.Now()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, spool.ErrClosed) {
				return nil
			}
			return fmt.Errorf("influx: read spool: %w", err)
		}
		if live != nil && live.Joined() {
			// The spool's reader has passed every record before the live
			// reader's (one read never holds records of both sides).
			if !r.queue(ctx, &batch{join: true, ok: true, done: closedChan}) {
				return nil
			}
			live = nil
		}
		if len(recs) == 0 { // the join, with nothing after it yet
			r.release(buf)
			continue
		}
		c, ok := r.send(ctx, buf, recs, false)
		if !ok {
			return nil
		}
		if live == nil && d.full(recs) && readAt.Sub(recs[0].Time) >= d.liveAfter {
			if live, err = d.spool.StartLive(); err != nil {
				return fmt.Errorf("influx: start the spool's live reader: %w", err)
			}
			liveRead = readAt
			d.log.Info().Dur("backlog_age", readAt.Sub(recs[0].Time)).Uint64("live_from", uint64(live.From())).
				Msg("delivering a backlog; uplinks arriving meanwhile are sent alongside it")
		}
		if live != nil && readAt.Sub(liveRead) >= d.linger {
			liveRead = readAt
			if err := r.sendLive(ctx, live); err != nil {
				return fmt.Errorf("influx: read spool (live reader): %w", err)
			}
			if ctx.Err() != nil {
				return nil
			}
		}
		if !d.full(recs) {
			// The spool had no more: no backlog to pipeline. Wait for
			// this chunk, so that during an outage delivery holds one
			// small chunk rather than every record as it arrives.
			select {
			case <-c.idle:
			case <-ctx.Done():
				return nil
			}
			// And let the next chunk gather what arrives meanwhile. The
			// records are already safe in the spool; they reach InfluxDB
			// at most linger later.
			if wait := d.linger - time.Since(readAt); wait > 0 {
				pause.Reset(wait)
				select {
				case <-pause.C:
				case <-d.hurry:
				case <-ctx.Done():
					return nil
				}
			}
		}
	}
}

// closedChan is the done of a batch settled from the start.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// reader is read's plumbing: slots, read buffers, the acknowledgement's
// queue and the workers.
type reader struct {
	d       *Deliverer
	lane    *sorter
	order   chan<- *batch
	slots   chan struct{}
	free    chan *spool.Buffer
	workers *sync.WaitGroup
}

// slot takes a slot for a batch; false when ctx ended first.
func (r *reader) slot(ctx context.Context) bool {
	select {
	case r.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// buffer is a free read buffer, or a new one.
func (r *reader) buffer() *spool.Buffer {
	select {
	case buf := <-r.free:
		return buf
	default:
		r.d.buffers.Add(1)
		return new(spool.Buffer)
	}
}

// release gives back an unused read buffer and its slot.
func (r *reader) release(buf *spool.Buffer) {
	select {
	case r.free <- buf:
	default:
	}
	<-r.slots
}

// queue hands b to acknowledge; false when ctx ended first (acknowledge
// failed and is gone).
func (r *reader) queue(ctx context.Context, b *batch) bool {
	select {
	case r.order <- b:
		return true
	case <-ctx.Done():
		return false
	}
}

// sendLive reads what the live reader has, a chunk at a time while
// chunks come full, and sends it, until none is left or ctx ends.
func (r *reader) sendLive(ctx context.Context, live *spool.Live) error {
	for {
		if !r.slot(ctx) {
			return nil
		}
		buf := r.buffer()
		recs, err := live.Read(buf, r.d.chunk, r.d.chunkMax)
		if err != nil || len(recs) == 0 {
			r.release(buf)
			return err
		}
		if _, ok := r.send(ctx, buf, recs, true); !ok || !r.d.full(recs) {
			return nil
		}
	}
}

// send cuts recs, read into buf, into batches, queues each for
// acknowledge in order and starts a worker for it. The caller holds the
// first batch's slot; send takes the others. false when ctx ended (the
// batches not queued are read again at the next start).
func (r *reader) send(ctx context.Context, buf *spool.Buffer, recs []spool.Record, live bool) (*readChunk, bool) {
	d := r.d
	batches := d.cut(buf, recs)
	c := &readChunk{buf: buf, idle: make(chan struct{})}
	c.left.Store(int32(len(batches)))
	for i, b := range batches {
		b.live = live
		if live {
			d.liveBatches.Add(1)
		}
		if i > 0 && !r.slot(ctx) {
			return c, false
		}
		if !r.queue(ctx, b) {
			return c, false
		}
		r.workers.Add(1)
		go func() {
			defer r.workers.Done()
			d.work(ctx, r.lane, b)
			// The buffer goes back before the slot does: the reader,
			// waiting for a slot, takes a free buffer at once, and
			// finding none it would allocate and clear a fresh one
			// per read.
			if c.left.Add(-1) == 0 {
				select {
				case r.free <- c.buf:
				default:
				}
				close(c.idle)
			}
			<-r.slots
		}()
	}
	return c, true
}

// full reports whether a read stopped at a chunk's limits rather than at
// the end of the spool: more records are likely waiting.
func (d *Deliverer) full(recs []spool.Record) bool {
	if len(recs) >= d.chunk {
		return true
	}
	n := 0
	for _, r := range recs {
		n += len(r.Data)
	}
	return n >= d.chunkMax
}

// cut divides recs into batches of up to BatchSize lines (a record larger
// than that is a batch of its own).
func (d *Deliverer) cut(buf *spool.Buffer, recs []spool.Record) []*batch {
	var out []*batch
	for from := 0; from < len(recs); {
		to, n := from, 0
		for ; to < len(recs); to++ {
			k := bytes.Count(recs[to].Data, newline)
			if to > from && n+k > d.c.cfg.BatchSize {
				break
			}
			n += k
		}
		b := &batch{recs: recs[from:to], last: recs[to-1].Pos, done: make(chan struct{})}
		// Consecutive records lie together in the read buffer and leave
		// as one piece of the request, without a copy.
		b.body, _ = buf.Lines(b.recs)
		out = append(out, b)
		from = to
	}
	return out
}

// work settles batch b, or hands what InfluxDB refused of it to the
// sorting lane, which settles it.
func (d *Deliverer) work(ctx context.Context, lane *sorter, b *batch) {
	defer func() { b.recs, b.body = nil, nil }() // the read buffer is reused
	errs := make([]error, len(b.recs))
	var body [][]byte
	if b.body != nil {
		body = [][]byte{b.body}
	}
	d.deliver(ctx, b.recs, body, errs)
	refused := false
	for _, err := range errs {
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrRejected) {
			close(b.done) // ctx ended: not settled
			return
		}
		refused = true
	}
	d.report(b.recs, errs, false)
	if !refused {
		b.ok = true
		close(b.done)
		return
	}
	if err := lane.add(ctx, newHold(b, errs)); err != nil {
		close(b.done)
	}
}

// report tells the settled hook of the records stored (and, with
// refused, of those refused too).
func (d *Deliverer) report(recs []spool.Record, errs []error, refused bool) {
	if d.settled == nil {
		return
	}
	for i, r := range recs {
		if errs[i] == nil || refused {
			d.settled(r.Data, errs[i])
		}
	}
}

// deliver sends recs as one request (body, or their data when body is
// nil) until each is settled or ctx ends, applying the status policy, and
// sets errs[i] to the outcome of recs[i]: nil when InfluxDB took it, a
// *refusal when InfluxDB refused it (mixed when InfluxDB refused the
// request in part and which records it took is not known yet), ctx.Err()
// when ctx ended first.
func (d *Deliverer) deliver(ctx context.Context, recs []spool.Record, body [][]byte, errs []error) {
	if body == nil {
		body = pieces(recs)
	}
	n := lineCount(body)
	if n == 0 {
		clear(errs) // nothing to store
		return
	}
	for attempt := 0; ; attempt++ {
		o := d.c.post(ctx, body)
		if o.err == nil {
			d.c.stats.points.Add(uint64(n))
			if attempt > 0 {
				d.log.Info().Int("attempts", attempt+1).Int("points", n).Msg("InfluxDB took the batch after retries")
			}
			clear(errs)
			return
		}
		if err := ctx.Err(); err != nil {
			fill(errs, err)
			return
		}
		var delay time.Duration
		switch o.status {
		case http.StatusBadRequest, http.StatusUnprocessableEntity:
			ref := &refusal{status: o.status, msg: o.msg}
			if k, ok := droppedCount(o.msg); ok && k >= n {
				ref.all = true
			}
			// Some records' points are bad; InfluxDB kept the rest
			// (partial write) and did not say which: the lane sorts them.
			ref.mixed = len(recs) > 1 && !ref.all
			fill(errs, ref)
			return
		case http.StatusRequestEntityTooLarge:
			d.split(ctx, recs, errs, o)
			return
		case http.StatusUnauthorized, http.StatusForbidden:
			delay = d.c.timing.authRetry
			d.log.Error().Int("status", o.status).Str("url", d.c.cfg.URL).Str("error", o.msg).Stringer("retry_in", delay).
				Msg("InfluxDB refuses the token: fix influx.token (on InfluxDB 1.8 with auth: user:password); points are kept and retried")
		case http.StatusNotFound:
			delay = d.c.timing.authRetry
			d.log.Error().Int("status", o.status).Str("bucket", d.c.cfg.Target()).Str("error", o.msg).Stringer("retry_in", delay).
				Msg(`InfluxDB bucket not found: create it or fix influx.bucket (on InfluxDB 1.8: CREATE DATABASE, bucket "db/rp"); points are kept and retried`)
		default: // 429, 5xx, no response, timeouts, anything unexpected
			delay = d.c.backoff(attempt)
			if o.retryAfter > delay {
				delay = min(o.retryAfter, d.c.timing.maxRetryAfter)
			}
			if attempt&(attempt+1) == 0 { // attempts 0, 1, 3, 7, …: loud at first, then throttled
				ev := d.log.Warn().Int("attempt", attempt+1).Stringer("retry_in", delay).Int("points", n)
				if o.status != 0 {
					ev = ev.Int("status", o.status)
				}
				ev.Str("error", o.msg).Msg("InfluxDB write failed; retrying")
			}
		}
		d.c.stats.retries[classIndex(o.status)].Add(1)
		d.c.waitRetry(ctx, delay)
	}
}

// split delivers recs, too large for InfluxDB as one request (413), in
// halves: by records when there are several, otherwise by the lines of
// the one record, which is refused when one of its points alone is too
// large.
func (d *Deliverer) split(ctx context.Context, recs []spool.Record, errs []error, o outcome) {
	if len(recs) > 1 {
		d.log.Warn().Int("records", len(recs)).Msg("request too large for InfluxDB (413); splitting it")
		h := len(recs) / 2
		d.deliver(ctx, recs[:h], nil, errs[:h])
		d.deliver(ctx, recs[h:], nil, errs[h:])
		return
	}
	data := recs[0].Data
	if bytes.Count(data, newline) < 2 {
		d.log.Warn().Int("status", o.status).Int("bytes", len(data)).Msg("one point is larger than InfluxDB takes (http max-body-size); its message goes to dead letters")
		errs[0] = &refusal{status: o.status, msg: fmt.Sprintf("one point of %d bytes is larger than InfluxDB's max-body-size", len(data)), all: true}
		return
	}
	d.log.Warn().Int("points", bytes.Count(data, newline)).Msg("request too large for InfluxDB (413); splitting it")
	// Cut after the line that holds the middle byte.
	cut := bytes.IndexByte(data[len(data)/2:], '\n') + len(data)/2 + 1
	if cut >= len(data) {
		cut = bytes.LastIndexByte(data[:len(data)-1], '\n') + 1
	}
	halves := []spool.Record{{Pos: recs[0].Pos, Data: data[:cut]}, {Pos: recs[0].Pos, Data: data[cut:]}}
	herrs := make([]error, 2)
	d.deliver(ctx, halves, nil, herrs)
	errs[0] = cmp(herrs[0], herrs[1])
}

// cmp is the outcome of a record sent in two parts: a refusal of either
// part refuses it; otherwise the first failure.
func cmp(a, b error) error {
	if errors.Is(b, ErrRejected) && !errors.Is(a, ErrRejected) {
		return b
	}
	if a != nil {
		return a
	}
	return b
}

// The sorting lane takes the runs of spooled records InfluxDB refused,
// finds the refused records among them and keeps those as dead letters,
// while delivery goes on with the records after them: a backlog of
// refused records (a field type conflict, a series limit reached) then
// costs dead letters, not everyone's data. A refusal names the first
// refused point's reason; when that names suspect lines (suspects.go),
// sending those alone settles every record holding one in a request;
// otherwise halving does, in O(log n) requests per refused record.

// defaultSortMax bounds the refused records waiting for the lane, in
// bytes (they are copied out of the read buffers), and maxHolds in
// batches. Past either, delivery waits for the lane.
const (
	defaultSortMax = 8 << 20
	maxHolds       = 4096
)

// hold is what InfluxDB refused of a batch, on its way through the
// sorting lane.
type hold struct {
	b    *batch
	recs []spool.Record // the refused records, Data in the hold's own memory
	errs []error        // their refusals
	size int            // bytes of Data
}

// newHold copies b's refused records out of the read buffer they live
// in, which the next read reuses.
func newHold(b *batch, errs []error) *hold {
	h := &hold{b: b}
	for i, r := range b.recs {
		if errs[i] != nil {
			h.size += len(r.Data)
		}
	}
	data := make([]byte, 0, h.size)
	for i, r := range b.recs {
		if errs[i] == nil {
			continue
		}
		data = append(data, r.Data...)
		h.recs = append(h.recs, spool.Record{Pos: r.Pos, Time: r.Time, Data: data[len(data)-len(r.Data) : len(data) : len(data)]})
		h.errs = append(h.errs, errs[i])
	}
	return h
}

// sorter is the sorting lane: one goroutine taking holds in spool order,
// so that they are resolved in that order.
type sorter struct {
	d    *Deliverer
	q    chan *hold
	room chan struct{} // a hold left the lane

	mu   sync.Mutex
	used int // bytes of the holds in q and in work
	// waits counts adds that found the lane full; tests wait on it.
	waits atomic.Int64
}

func newSorter(d *Deliverer) *sorter {
	return &sorter{d: d, q: make(chan *hold, maxHolds), room: make(chan struct{}, 1)}
}

// add queues h for the lane, waiting while the lane holds sortMax bytes
// already; it fails only when ctx ends first.
func (l *sorter) add(ctx context.Context, h *hold) error {
	for {
		l.mu.Lock()
		if l.used == 0 || l.used+h.size <= l.d.sortMax {
			l.used += h.size
			l.mu.Unlock()
			break
		}
		l.mu.Unlock()
		l.waits.Add(1)
		select {
		case <-l.room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case l.q <- h:
		return nil
	case <-ctx.Done():
		l.release(h.size)
		return ctx.Err()
	}
}

func (l *sorter) release(n int) {
	l.mu.Lock()
	l.used -= n
	l.mu.Unlock()
	select {
	case l.room <- struct{}{}:
	default:
	}
}

// close tells run that no more holds come; call it once every add has
// returned.
func (l *sorter) close() { close(l.q) }

// run resolves holds until close; after ctx ends it gives up the rest,
// unresolved, so that they are read again at the next start.
func (l *sorter) run(ctx context.Context) {
	for h := range l.q {
		if ctx.Err() == nil {
			h.b.ok = l.resolve(ctx, h)
		}
		l.release(h.size)
		close(h.b.done)
	}
}

// resolve stores the records of h that InfluxDB takes and keeps the
// others as dead letters; false when ctx ended first.
func (l *sorter) resolve(ctx context.Context, h *hold) bool {
	l.d.sortMixed(ctx, h.recs, h.errs, true)
	if !l.d.keepRefused(ctx, h.recs, h.errs) {
		return false
	}
	l.d.report(h.recs, h.errs, true)
	return true
}

// sortMixed replaces each mixed refusal in errs (records refused together
// with others InfluxDB may have taken) by the outcome of its record alone.
func (d *Deliverer) sortMixed(ctx context.Context, recs []spool.Record, errs []error, probe bool) {
	for i := 0; i < len(recs); {
		ref, ok := errs[i].(*refusal)
		if !ok || !ref.mixed {
			i++
			continue
		}
		j := i + 1
		for j < len(recs) && errs[j] == errs[i] {
			j++
		}
		d.sortOut(ctx, recs[i:j], errs[i:j], ref.msg, probe)
		i = j
	}
}

// sortOut sends recs, which InfluxDB refused together with msg, so that
// its answers tell the refused records from the others, and sets errs.
// When msg names suspect lines (suspects.go) and InfluxDB refuses each of
// them alone, their records are refused and the rest delivered; otherwise
// the records go in halves, each halved further while refused with some
// lines taken.
func (d *Deliverer) sortOut(ctx context.Context, recs []spool.Record, errs []error, msg string, probe bool) {
	if len(recs) >= 2 && probe && d.probe(ctx, recs, errs, msg) {
		return
	}
	if len(recs) < 2 {
		d.deliver(ctx, recs, nil, errs)
		return
	}
	h := len(recs) / 2
	for _, half := range [2][2]int{{0, h}, {h, len(recs)}} {
		r, e := recs[half[0]:half[1]], errs[half[0]:half[1]]
		d.deliver(ctx, r, nil, e)
		d.sortMixed(ctx, r, e, probe)
	}
}

// probe settles recs by their suspect lines, those msg names, and
// delivers the other records; false when msg names none of their lines.
func (d *Deliverer) probe(ctx context.Context, recs []spool.Record, errs []error, msg string) bool {
	match := suspects(msg)
	if match == nil {
		return false
	}
	var sus, rest []int
	var lines [][]byte
	for i, r := range recs {
		var mine []byte
		for ln := r.Data; len(ln) > 0; {
			line := ln
			if k := bytes.IndexByte(ln, '\n'); k >= 0 {
				line, ln = ln[:k+1], ln[k+1:]
			} else {
				ln = nil
			}
			if match(line) {
				mine = append(mine, line...)
			}
		}
		if mine != nil {
			sus, lines = append(sus, i), append(lines, mine)
		} else {
			rest = append(rest, i)
		}
	}
	if len(sus) == 0 {
		return false
	}
	srecs, serrs := pick(recs, sus)
	d.probeSuspects(ctx, srecs, lines, serrs)
	put(errs, sus, serrs)
	if len(rest) > 0 {
		rrecs, rerrs := pick(recs, rest)
		d.deliver(ctx, rrecs, nil, rerrs)
		d.sortMixed(ctx, rrecs, rerrs, true)
		put(errs, rest, rerrs)
	}
	return true
}

// probeSuspects sends the suspect lines of recs (lines[i] of recs[i]) as
// one request. When InfluxDB refuses them all, the records are refused;
// when some, each half is probed apart, and a record alone is refused
// (one refused point refuses the record); when InfluxDB takes them, or
// fails otherwise, the records are delivered whole, without probing. The
// suspect lines are the records' own, so storing them does no harm.
func (d *Deliverer) probeSuspects(ctx context.Context, recs []spool.Record, lines [][]byte, errs []error) {
	n := lineCount(lines)
	o := d.c.post(ctx, lines)
	if o.status != http.StatusBadRequest && o.status != http.StatusUnprocessableEntity {
		d.deliver(ctx, recs, nil, errs)
		d.sortMixed(ctx, recs, errs, false)
		return
	}
	k, ok := droppedCount(o.msg)
	if all := ok && k >= n; all || len(recs) == 1 {
		fill(errs, &refusal{status: o.status, msg: o.msg, all: all && n == lineCount(pieces(recs))})
		return
	}
	h := len(recs) / 2
	d.probeSuspects(ctx, recs[:h], lines[:h], errs[:h])
	d.probeSuspects(ctx, recs[h:], lines[h:], errs[h:])
}

// keepRefused keeps the records whose outcome is a refusal as dead
// letters, several at once; false when a record has neither been stored
// nor kept (ctx ended).
func (d *Deliverer) keepRefused(ctx context.Context, recs []spool.Record, errs []error) bool {
	var (
		wg     sync.WaitGroup
		failed atomic.Bool
		sem    = make(chan struct{}, max(1, d.dlConcurrency))
	)
	for i, err := range errs {
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrRejected) {
			failed.Store(true)
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			failed.Store(true)
		}
		if failed.Load() {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if !d.keep(ctx, recs[i], err) {
				failed.Store(true)
			}
		}()
	}
	wg.Wait()
	return !failed.Load()
}

// keep stores rec as a dead letter, retrying while the dead-letter store
// fails (the record stays in the spool meanwhile); false when ctx ended
// first.
func (d *Deliverer) keep(ctx context.Context, rec spool.Record, cause error) bool {
	dl := gateway.DeadLetter{
		Time: time.Now(), Source: tagValue(rec.Data, "source"), DevEUI: tagValue(rec.Data, "dev_eui"),
		Reason: gateway.ReasonRejected, Detail: cause.Error(), Raw: bytes.Clone(rec.Data),
	}
	for wait := time.Second; ; wait = min(2*wait, time.Minute) {
		err := d.dl.Put(ctx, dl)
		if err == nil {
			d.refusals.add(refusedRecord{source: dl.Source, devEUI: dl.DevEUI, lines: bytes.Count(rec.Data, newline), err: cause})
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		d.log.Error().Err(fmt.Errorf("influx: keep refused points as a dead letter: %w", err)).Str("source", dl.Source).Str("dev_eui", dl.DevEUI).Stringer("retry_in", wait).
			Msg("InfluxDB refused spooled points and the dead-letter store failed; they stay in the spool and are tried again (check state_dir's disk)")
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

// acknowledge waits for batches in the order they were read and
// acknowledges them in the spool as each is settled. A batch that ended
// unsettled (shutdown) stops the acknowledgement: it and everything after
// it are read again at the next start.
//
// Batches of the spool's live reader come interleaved with the backlog's
// but lie after it in the spool: they wait aside until the join mark
// says the backlog's batches before them have all been queued, and then
// follow them; the batches read after the join follow those.
func (d *Deliverer) acknowledge(order <-chan *batch) error {
	var (
		in     = order
		queue  []*batch // read, not yet passed by the acknowledgement, in spool order
		live   []*batch // the live reader's, until the join
		frozen bool     // a batch ended unsettled: acknowledge nothing more
	)
	for in != nil || len(queue) > 0 {
		var head <-chan struct{}
		if len(queue) > 0 {
			head = queue[0].done
		}
		select {
		case b, ok := <-in:
			if !ok {
				in = nil
				continue
			}
			switch {
			case b.live:
				live = compactSettled(append(live, b))
			case b.join:
				queue = append(queue, live...)
				live = nil
			default:
				queue = append(queue, b)
			}
			continue
		case <-head:
		}
		// Acknowledge every settled batch at the head at once.
		var to spool.Position
		for len(queue) > 0 && isClosed(queue[0].done) {
			b := queue[0]
			queue = queue[1:]
			if frozen || !b.ok {
				frozen = true
				continue
			}
			to = b.last
		}
		if to > 0 {
			if err := d.spool.Ack(to); err != nil {
				return fmt.Errorf("influx: ack spool: %w", err)
			}
		}
	}
	return nil
}

// compactSettled drops each batch settled in full that is followed by
// another settled in full: acknowledging the later one covers both. It
// keeps the live batches waiting for a long drain to a handful.
func compactSettled(q []*batch) []*batch {
	out := q[:0]
	for _, b := range q {
		if n := len(out); n > 0 && settledOK(out[n-1]) && settledOK(b) {
			out[n-1] = b
			continue
		}
		out = append(out, b)
	}
	clear(q[len(out):])
	return out
}

func settledOK(b *batch) bool { return isClosed(b.done) && b.ok }

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

var newline = []byte{'\n'}

// pieces is recs' data as request pieces.
func pieces(recs []spool.Record) [][]byte {
	out := make([][]byte, len(recs))
	for i, r := range recs {
		out[i] = r.Data
	}
	return out
}

func lineCount(body [][]byte) int {
	n := 0
	for _, p := range body {
		n += bytes.Count(p, newline)
	}
	return n
}

func fill(errs []error, err error) {
	for i := range errs {
		errs[i] = err
	}
}

// pick gathers recs[idx] and fresh outcomes for them; put scatters the
// outcomes back.
func pick(recs []spool.Record, idx []int) ([]spool.Record, []error) {
	out := make([]spool.Record, len(idx))
	for k, i := range idx {
		out[k] = recs[i]
	}
	return out, make([]error, len(idx))
}

func put(errs []error, idx []int, from []error) {
	for k, i := range idx {
		errs[i] = from[k]
	}
}

// tagValue finds a tag's value in the first line of line protocol, for
// labelling a dead letter; escapes are left as they are. The lines are
// AppendPoint's own encoding, read back only for a record InfluxDB
// refused. Carrying the labels in the record instead would cost bytes in
// every record for the rare refusal, and a header InfluxDB must not see
// would split each batch into a piece per record rather than one slice
// of the read buffer.
func tagValue(lines []byte, key string) string {
	line := lines
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	needle := []byte("," + key + "=")
	i := bytes.Index(line, needle)
	if i < 0 {
		return ""
	}
	v := line[i+len(needle):]
	for j := 0; j < len(v); j++ {
		switch v[j] {
		case '\\':
			j++
		case ',', ' ':
			return string(v[:j])
		}
	}
	return string(v)
}
