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
// records only after InfluxDB answered 2xx (DESIGN §6).
//
// A record InfluxDB refuses for good (400/422) becomes a dead letter
// holding its line protocol, reason rejected_by_influx, so it is kept and
// can be re-sent after the conflict is fixed.
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
}

var _ gateway.PointsCopier = (*Spooled)(nil)

// CopiesPoints marks Write as done with the points when it returns: it
// encodes them into its own buffer.
func (s *Spooled) CopiesPoints() {}

// NewSpooled returns a spooled sink over an open spool and a Sink whose
// Run is running (or will be).
func NewSpooled(sink *Sink, sp *spool.Spool, dl gateway.DeadLetters, log zerolog.Logger) *Spooled {
	s := &Spooled{sink: sink, spool: sp, dl: dl, log: log, chunk: 2 * sink.cfg.BatchSize, chunkMax: 512 << 10, linger: sink.cfg.FlushInterval}
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
	n    int // records done with, from the first: set before done closes
}

// Run delivers spooled records until ctx ends. Records are acknowledged
// to the spool in order, only up to the last one InfluxDB took (or that
// was kept as a dead letter), so a crash or shutdown re-sends at most the
// records in flight — which overwrite, being byte-identical.
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
	var wg sync.WaitGroup
	var ackErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		ackErr = s.acknowledge(order, slots, free)
		if ackErr != nil {
			cancel(ackErr)
		}
	}()
	err := s.read(ctx, order, slots, free, &wg)
	close(order)
	wg.Wait()
	if ackErr != nil {
		return ackErr
	}
	return err
}

// read hands chunks of the spool to delivery goroutines, at most
// chunksInFlight at once, and queues them for acknowledge in order.
func (s *Spooled) read(ctx context.Context, order chan<- *chunk, slots chan struct{}, free chan *spool.Buffer, wg *sync.WaitGroup) error {
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
			c.n = s.deliverChunk(ctx, c.buf, c.recs)
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
// acknowledges each one's records in the spool. A chunk that ended
// unfinished (shutdown) is acknowledged up to where it got, and nothing
// after it is: those records are read again at the next start. The read
// buffer of a chunk whose every record is done with goes to free; an
// unfinished chunk's is left to the collector, since a request the Sink
// still holds may point into it.
func (s *Spooled) acknowledge(order <-chan *chunk, slots <-chan struct{}, free chan<- *spool.Buffer) error {
	stuck := false
	for c := range order {
		<-c.done
		// Taken before c.buf is reused by the next read.
		n, total := c.n, len(c.recs)
		var last spool.Position
		if n > 0 {
			last = c.recs[n-1].Pos
		}
		if n == total {
			select {
			case free <- c.buf:
			default:
			}
		}
		<-slots
		if stuck || n == 0 {
			stuck = stuck || total > 0
			continue
		}
		if err := s.spool.Ack(last); err != nil {
			return fmt.Errorf("influx: ack spool: %w", err)
		}
		stuck = n < total
	}
	return nil
}

// deliverChunk sends recs until every one is done with or ctx ends, and
// returns how many are, from the first. The spool hands a record out once
// per run, so records that did not make it are retried from here, not
// read again.
func (s *Spooled) deliverChunk(ctx context.Context, buf *spool.Buffer, recs []spool.Record) int {
	done := 0
	for wait := time.Second; done < len(recs); wait = min(2*wait, time.Minute) {
		n, err := s.deliver(ctx, buf, recs[done:])
		done += n
		if done == len(recs) || ctx.Err() != nil {
			break
		}
		s.log.Error().Err(err).Int("records", len(recs)-done).Dur("retry_in", wait).Msg("spooled points not delivered; retrying")
		select {
		case <-ctx.Done():
			return done
		case <-time.After(wait):
		}
	}
	return done
}

// deliver sends records of buf to InfluxDB and returns how many of them,
// from the first, are done with (stored, or kept as dead letters), and
// the error that stopped the rest.
//
// Consecutive records leave together, up to a batch of lines per
// request, straight from buf: a request per record cost an allocation
// and a round trip through the Sink's collector per message. A run that
// InfluxDB refuses for good (400/422) is sent again record by record, so
// that only the records at fault become dead letters; the run's good
// lines, which InfluxDB 1.8 stored anyway, are written again, which
// overwrites them.
func (s *Spooled) deliver(ctx context.Context, buf *spool.Buffer, recs []spool.Record) (int, error) {
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
		l, ok := buf.Lines(recs[from:to])
		if !ok {
			return s.deliverEach(ctx, recs)
		}
		runs, lines = append(runs, run{from, to}), append(lines, l)
		from = to
	}
	done := 0
	for i, err := range s.sink.writeLines(ctx, lines) {
		r := runs[i]
		if err != nil && errors.Is(err, ErrRejected) {
			n, err := s.deliverEach(ctx, recs[r.from:r.to])
			if done += n; err != nil {
				return done, err
			}
			continue
		}
		if err != nil {
			return done, err
		}
		done = r.to
	}
	return done, nil
}

var newline = []byte{'\n'}

// deliverEach sends each record as a request of its own, so InfluxDB's
// answer is per record: one refused for good becomes a dead letter.
func (s *Spooled) deliverEach(ctx context.Context, recs []spool.Record) (int, error) {
	data := make([][]byte, len(recs))
	for i, r := range recs {
		data[i] = r.Data
	}
	for i, err := range s.sink.writeLines(ctx, data) {
		if err != nil && errors.Is(err, ErrRejected) {
			err = s.deadLetter(ctx, recs[i], err)
		}
		if err != nil {
			return i, err
		}
	}
	return len(recs), nil
}

func (s *Spooled) deadLetter(ctx context.Context, rec spool.Record, cause error) error {
	dl := gateway.DeadLetter{
		Time: time.Now(), Source: tagValue(rec.Data, "source"), DevEUI: tagValue(rec.Data, "dev_eui"),
		Reason: gateway.ReasonRejected, Detail: cause.Error(), Raw: bytes.Clone(rec.Data),
	}
	s.log.Warn().Str("source", dl.Source).Str("dev_eui", dl.DevEUI).Err(cause).Msg("InfluxDB refused spooled points for good; kept as a dead letter")
	if err := s.dl.Put(ctx, dl); err != nil {
		return fmt.Errorf("influx: keep rejected points as a dead letter: %w", err)
	}
	return nil
}

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
