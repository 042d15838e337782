package influx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/spool"
)

// Spooled is the Sink the daemon uses: Write appends a message's encoded
// lines to the on-disk spool and returns once they are durable there, so
// the MQTT message can be acknowledged even while InfluxDB is down; Run
// delivers the spool to InfluxDB through a Sink, in order, and removes
// records only after InfluxDB answered 2xx (ARCHITECTURE §6).
//
// A record InfluxDB refuses for good (400/422) becomes a dead letter
// holding its line protocol, reason rejected_by_influx, so it is kept and
// can be re-sent after the conflict is fixed. Refused runs are sorted out
// on a lane of their own (sorter.go), so that while they are, the records
// after them keep reaching InfluxDB.
type Spooled struct {
	sink  *Sink
	spool *spool.Spool
	dl    gateway.DeadLetters
	log   zerolog.Logger
	bufs  sync.Pool // *[]byte
	// chunk bounds the records one Read hands to delivery; with group
	// commit they leave as a few large requests. chunkMax bounds its
	// bytes: chunksInFlight of them are in memory at once, so it is what
	// delivery adds to the daemon's footprint. 512 KiB is some 2,800
	// lines of typical uplinks; 1 MiB cost 2–3 MB more peak RSS in the
	// end-to-end backlog benchmark, with no measurable gain in
	// sensorgate's or InfluxDB's CPU.
	chunk    int
	chunkMax int // bytes
	// linger is the sink's FlushInterval: without a backlog, a chunk is
	// read at most once per linger, so that records arriving in a steady
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
}

var _ gateway.PointsCopier = (*Spooled)(nil)

// CopiesPoints marks Write as done with the points when it returns: it
// encodes them into its own buffer.
func (s *Spooled) CopiesPoints() {}

// NewSpooled returns a spooled sink over an open spool and a Sink whose
// Run is running (or will be).
func NewSpooled(sink *Sink, sp *spool.Spool, dl gateway.DeadLetters, log zerolog.Logger) *Spooled {
	s := &Spooled{sink: sink, spool: sp, dl: dl, log: log, chunk: 2 * sink.cfg.BatchSize, chunkMax: 512 << 10, linger: sink.cfg.FlushInterval,
		sortMax: defaultSortMax, dlConcurrency: 16}
	s.bufs.New = func() any { b := make([]byte, 0, 2048); return &b }
	return s
}

// Write encodes pts and appends them to the spool as one record. Points
// that cannot be encoded (NaN, bad names) are reported with an error
// wrapping ErrRejected after the others were spooled, as Sink.Write does.
func (s *Spooled) Write(ctx context.Context, pts []gateway.Point) error {
	if len(pts) == 0 {
		return nil
	}
	bp := s.bufs.Get().(*[]byte)
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
		err = s.spool.Append(ctx, buf)
	}
	*bp = buf
	if cap(buf) <= maxPooledBuffer {
		s.bufs.Put(bp)
	}
	if err != nil {
		return fmt.Errorf("influx: spool the points: %w", err)
	}
	if len(encErrs) > 0 {
		return fmt.Errorf("%w: %w", ErrRejected, errors.Join(encErrs...))
	}
	return nil
}

// chunksInFlight is how many chunks delivery has under way: while one
// chunk's last requests are answered, the next one's fill the Sink's
// batches, so InfluxDB is never idle waiting for the spool to be read.
const chunksInFlight = 2

// chunk is records read from the spool in one Read and their delivery.
type chunk struct {
	recs []spool.Record
	buf  *spool.Buffer // the memory recs live in
	done chan struct{}
	// Set before done closes: records done with, from the first (stored,
	// or handed to the sorting lane), and the lane's holds among them.
	n     int
	holds []*hold
}

// Run delivers spooled records until ctx ends. Records are acknowledged
// to the spool in order, only up to the last one InfluxDB took (or that
// was kept as a dead letter), so a crash or shutdown re-sends at most the
// records in flight — which overwrite, being byte-identical.
//
// A run of records InfluxDB refuses goes to the sorting lane, which
// finds the refused records among them and keeps those as dead letters;
// delivery goes on with the records after it meanwhile, but none of
// those is acknowledged before the lane is done with the run.
//
// While the spool has a backlog (a Read filled its chunk), up to
// chunksInFlight chunks are delivered at once, each by its own goroutine
// retrying until its records are done with; an acknowledger acknowledges
// them in the order they were read, so a chunk that is still retrying
// holds back the acknowledgement of those after it. Without a backlog a
// chunk is delivered before the next is read, and the next is read no
// sooner than linger (the sink's FlushInterval) after it.
func (s *Spooled) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	slots := make(chan struct{}, chunksInFlight)
	order := make(chan *chunk, chunksInFlight)
	// Read buffers of chunks done with, for the next reads: one per
	// chunk in flight, as many as can be in use at once.
	free := make(chan *spool.Buffer, chunksInFlight)
	lane := newSorter(s)
	var wg, acks, sorting sync.WaitGroup
	var ackErr error
	acks.Add(1)
	go func() {
		defer acks.Done()
		ackErr = s.acknowledge(order, slots, free)
		if ackErr != nil {
			cancel(ackErr)
		}
	}()
	sorting.Add(1)
	go func() {
		defer sorting.Done()
		lane.run(ctx)
	}()
	err := s.read(ctx, lane, order, slots, free, &wg)
	close(order)
	wg.Wait() // no chunk hands the lane a run any more
	lane.close()
	sorting.Wait() // every hold is resolved or abandoned
	acks.Wait()
	if ackErr != nil {
		return ackErr
	}
	return err
}

// read hands chunks of the spool to delivery goroutines, at most
// chunksInFlight at once, and queues them for acknowledge in order.
func (s *Spooled) read(ctx context.Context, lane *sorter, order chan<- *chunk, slots chan struct{}, free chan *spool.Buffer, wg *sync.WaitGroup) error {
	pause := time.NewTimer(time.Hour)
	pause.Stop()
	defer pause.Stop()
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		var buf *spool.Buffer
		select {
		case buf = <-free:
		default:
			buf = new(spool.Buffer)
		}
		recs, err := s.spool.ReadBuffered(ctx, buf, s.chunk, s.chunkMax)
		readAt := time.Now()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, spool.ErrClosed) {
				return nil
			}
			return fmt.Errorf("influx: read spool: %w", err)
		}
		c := &chunk{recs: recs, buf: buf, done: make(chan struct{})}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(c.done)
			c.n, c.holds = s.deliverChunk(ctx, lane, c.buf, c.recs)
		}()
		order <- c // room: a slot is held per queued chunk
		if !s.full(recs) {
			// The spool had no more: no backlog to pipeline. Wait for
			// this chunk, so that during an outage delivery holds one
			// small chunk rather than every record as it arrives.
			select {
			case <-c.done:
			case <-ctx.Done():
				return nil
			}
			// And let the next chunk gather what arrives meanwhile. The
			// records are already safe in the spool; they reach InfluxDB
			// at most linger later.
			if wait := s.linger - time.Since(readAt); wait > 0 {
				pause.Reset(wait)
				select {
				case <-pause.C:
				case <-ctx.Done():
					return nil
				}
			}
		}
	}
}

// full reports whether Read stopped at a chunk's limits rather than at
// the end of the spool: more records are likely waiting.
func (s *Spooled) full(recs []spool.Record) bool {
	if len(recs) >= s.chunk {
		return true
	}
	n := 0
	for _, r := range recs {
		n += len(r.Data)
	}
	return n >= s.chunkMax
}

// acknowledge waits for chunks in the order they were read and
// acknowledges their records in the spool, up to the first run the
// sorting lane still holds. A chunk that ended unfinished (shutdown), or
// a hold the lane gave up (shutdown), is acknowledged up to where it got,
// and nothing after it is: those records are read again at the next
// start. The read buffer of a chunk whose every record is done with goes
// to free; an unfinished chunk's is left to the collector, since a
// request the Sink still holds may point into it.
func (s *Spooled) acknowledge(order <-chan *chunk, slots <-chan struct{}, free chan<- *spool.Buffer) error {
	var (
		in     = order
		cur    *chunk  // the oldest chunk not yet done with
		holds  []*hold // holds not yet passed by the acknowledgement, in spool order
		latest spool.Position
		acked  spool.Position
		frozen bool // something ended unfinished: acknowledge nothing more
	)
	ack := func(to spool.Position) error {
		if to <= acked {
			return nil
		}
		if err := s.spool.Ack(to); err != nil {
			return fmt.Errorf("influx: ack spool: %w", err)
		}
		acked = to
		return nil
	}
	for in != nil || cur != nil || len(holds) > 0 {
		var (
			next     <-chan *chunk
			curDone  <-chan struct{}
			headDone <-chan struct{}
		)
		if cur == nil {
			next = in
		} else {
			curDone = cur.done
		}
		if len(holds) > 0 {
			headDone = holds[0].done
		}
		select {
		case c, ok := <-next:
			if !ok {
				in = nil
			}
			cur = c
			continue
		case <-curDone:
			c := cur
			cur = nil
			// Taken before c.buf is reused by the next read.
			n, total := c.n, len(c.recs)
			if n == total {
				select {
				case free <- c.buf:
				default:
				}
			}
			var last spool.Position
			if n > 0 {
				last = c.recs[n-1].Pos
			}
			<-slots
			if frozen {
				continue
			}
			holds = append(holds, c.holds...)
			if n > 0 {
				latest = last
			}
			if n < total {
				// Nothing from the first record not done with on may be
				// acknowledged; the records before it may, once the holds
				// among them are resolved.
				holds = append(holds, barrier(c.recs[n]))
			}
		case <-headDone:
			h := holds[0]
			holds = holds[1:]
			if !h.ok {
				frozen = true
				if err := ack(h.first() - 1); err != nil {
					return err
				}
			}
		}
		if frozen {
			holds = nil
			continue
		}
		to := latest
		if len(holds) > 0 {
			to = holds[0].first() - 1
		}
		if err := ack(to); err != nil {
			return err
		}
	}
	return nil
}

// deliverChunk sends recs until every one is done with or ctx ends, and
// returns how many are, from the first, and the holds it handed the
// sorting lane among them. The spool hands a record out once per run, so
// records that did not make it are retried from here, not read again.
func (s *Spooled) deliverChunk(ctx context.Context, lane *sorter, buf *spool.Buffer, recs []spool.Record) (int, []*hold) {
	done := 0
	var holds []*hold
	for wait := time.Second; done < len(recs); wait = min(2*wait, time.Minute) {
		n, hs, err := s.deliver(ctx, lane, buf, recs[done:])
		done += n
		holds = append(holds, hs...)
		if done == len(recs) || ctx.Err() != nil {
			break
		}
		s.log.Error().Err(err).Int("records", len(recs)-done).Stringer("retry_in", wait).Msg("spooled points not delivered; retrying")
		select {
		case <-ctx.Done():
			return done, holds
		case <-time.After(wait):
		}
	}
	return done, holds
}

// deliver sends records of buf to InfluxDB and returns how many of them,
// from the first, are done with (stored, or handed to the sorting lane),
// the lane's holds among them, and the error that stopped the rest.
//
// Consecutive records leave together, up to a batch of lines per
// request, straight from buf: a request per record cost an allocation
// and a round trip through the Sink's collector per message. A run that
// InfluxDB refuses for good (400/422) goes to the sorting lane, which
// tells its refused records from the rest while this goes on.
func (s *Spooled) deliver(ctx context.Context, lane *sorter, buf *spool.Buffer, recs []spool.Record) (int, []*hold, error) {
	type run struct{ from, to int }
	var (
		runs  []run
		lines [][]byte
	)
	for from := 0; from < len(recs); {
		to, n := from, 0
		for ; to < len(recs); to++ {
			k := bytes.Count(recs[to].Data, newline)
			if to > from && n+k > s.sink.cfg.BatchSize {
				break
			}
			n += k
		}
		if l, ok := buf.Lines(recs[from:to]); ok {
			runs, lines = append(runs, run{from, to}), append(lines, l)
		} else {
			// Not one piece of buf (not expected of one read): a run per
			// record.
			for i := from; i < to; i++ {
				runs, lines = append(runs, run{i, i + 1}), append(lines, recs[i].Data)
			}
		}
		from = to
	}
	done := 0
	var holds []*hold
	for i, err := range s.sink.writeLines(ctx, lines) {
		r := runs[i]
		if err != nil && errors.Is(err, ErrRejected) {
			h := newHold(recs[r.from:r.to], err)
			if err := lane.add(ctx, h); err != nil {
				return done, holds, err
			}
			holds = append(holds, h)
		} else if err != nil {
			return done, holds, err
		}
		done = r.to
	}
	return done, holds, nil
}

var newline = []byte{'\n'}

// Drain waits until every spooled record was delivered or ctx ends: the
// shutdown flush. What is left stays on disk for the next start.
func (s *Spooled) Drain(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for s.spool.Stats().Pending > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("influx: %d spooled records not yet in InfluxDB at shutdown; they stay in the spool for the next start: %w", s.spool.Stats().Pending, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// tagValue finds a tag's value in the first line of line protocol, for
// labelling a dead letter; escapes are left as they are.
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
