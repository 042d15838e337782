package influx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/spool"
)

// The sorting lane takes the runs of spooled records InfluxDB refused,
// finds the refused records among them and keeps those as dead letters,
// while delivery goes on with the records after them: a backlog of
// refused records (a field type conflict, a series limit reached) then
// costs dead letters, not everyone's data. The records a run's refusal
// holds back are acknowledged in the spool only once the lane is done
// with the run, so nothing is acknowledged before it is stored or kept.

// defaultSortMax bounds the refused records waiting for the lane, in
// bytes (they are copied out of delivery's read buffers), and
// maxHolds in runs. Past either, delivery waits for the lane.
const (
	defaultSortMax = 8 << 20
	maxHolds       = 4096
)

// hold is a run of spooled records InfluxDB refused, at least in part,
// on its way through the sorting lane.
type hold struct {
	recs  []spool.Record // Data in the hold's own memory
	cause error          // InfluxDB's refusal of the whole run
	size  int            // bytes of Data
	done  chan struct{}  // closed when the lane is done with the hold
	ok    bool           // set before done closes: every record stored or kept as a dead letter
}

func (h *hold) first() spool.Position { return h.recs[0].Pos }

// newHold copies recs out of the read buffer they live in, which the next
// read reuses.
func newHold(recs []spool.Record, cause error) *hold {
	size := 0
	for _, r := range recs {
		size += len(r.Data)
	}
	data := make([]byte, 0, size)
	own := make([]spool.Record, len(recs))
	for i, r := range recs {
		data = append(data, r.Data...)
		own[i] = spool.Record{Pos: r.Pos, Time: r.Time, Data: data[len(data)-len(r.Data) : len(data) : len(data)]}
	}
	return &hold{recs: own, cause: cause, size: size, done: make(chan struct{})}
}

// barrier is a hold that is never resolved: the acknowledgement stops
// before rec, a record delivery did not finish.
func barrier(rec spool.Record) *hold {
	h := &hold{recs: []spool.Record{{Pos: rec.Pos}}, done: make(chan struct{})}
	close(h.done)
	return h
}

// sorter is the sorting lane: one goroutine taking holds in spool order,
// so that they are resolved in that order.
type sorter struct {
	s    *Spooled
	q    chan *hold
	room chan struct{} // a hold left the lane

	mu   sync.Mutex
	used int // bytes of the holds in q and in work
	// waits counts adds that found the lane full; tests wait on it.
	waits atomic.Int64
}

func newSorter(s *Spooled) *sorter {
	return &sorter{s: s, q: make(chan *hold, maxHolds), room: make(chan struct{}, 1)}
}

// add queues h for the lane, waiting while the lane holds sortMax bytes
// already; it fails only when ctx ends first.
func (l *sorter) add(ctx context.Context, h *hold) error {
	for {
		l.mu.Lock()
		if l.used == 0 || l.used+h.size <= l.s.sortMax {
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
			h.ok = l.resolve(ctx, h)
		}
		l.release(h.size)
		close(h.done)
	}
}

// resolve stores the records of h that InfluxDB takes and keeps the
// others as dead letters; false when ctx ended first.
func (l *sorter) resolve(ctx context.Context, h *hold) bool {
	errs := make([]error, len(h.recs))
	var ref *refusal
	if len(h.recs) == 1 || (errors.As(h.cause, &ref) && ref.all) {
		// Nothing in the run was taken: no need to send it again.
		for i := range errs {
			errs[i] = h.cause
		}
	} else {
		errs = l.sortOut(ctx, h)
	}
	return l.keepRefused(ctx, h.recs, errs)
}

// sortOut sends h's records, which InfluxDB refused together, so that its
// answers tell the refused records from the others (Sink.sortOut), and
// returns each one's outcome.
func (l *sorter) sortOut(ctx context.Context, h *hold) []error {
	recs := h.recs
	errs := make([]error, len(recs))
	reqs := make([]*request, len(recs))
	parts := make([]part, 0, len(recs))
	for i, rec := range recs {
		n := bytes.Count(rec.Data, newline)
		if n == 0 {
			continue // nothing to store
		}
		data := rec.Data
		r := newRequest(ctx, &data, n)
		r.quiet = true
		reqs[i] = r
		parts = append(parts, part{r: r, lines: data, n: n})
	}
	msg := h.cause.Error()
	var ref *refusal
	if errors.As(h.cause, &ref) {
		msg = ref.msg
	}
	l.s.sink.sortOut(parts, msg, true)
	for i, r := range reqs {
		if r == nil {
			continue
		}
		select {
		case errs[i] = <-r.result:
		default: // abandoned: ctx ended, or the Sink stopped
			errs[i] = ErrClosed
			if err := ctx.Err(); err != nil {
				errs[i] = err
			}
		}
	}
	return errs
}

// keepRefused keeps the records whose outcome is a refusal as dead
// letters, several at once; false when a record has neither been stored
// nor kept (ctx ended).
func (l *sorter) keepRefused(ctx context.Context, recs []spool.Record, errs []error) bool {
	var (
		wg     sync.WaitGroup
		failed atomic.Bool
		sem    = make(chan struct{}, max(1, l.s.dlConcurrency))
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
			if !l.keep(ctx, recs[i], err) {
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
func (l *sorter) keep(ctx context.Context, rec spool.Record, cause error) bool {
	dl := gateway.DeadLetter{
		Time: time.Now(), Source: tagValue(rec.Data, "source"), DevEUI: tagValue(rec.Data, "dev_eui"),
		Reason: gateway.ReasonRejected, Detail: cause.Error(), Raw: bytes.Clone(rec.Data),
	}
	for wait := time.Second; ; wait = min(2*wait, time.Minute) {
		err := l.s.dl.Put(ctx, dl)
		if err == nil {
			l.s.sink.refusals.add(refusedRecord{source: dl.Source, devEUI: dl.DevEUI, lines: bytes.Count(rec.Data, newline), err: cause})
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		l.s.log.Error().Err(fmt.Errorf("influx: keep refused points as a dead letter: %w", err)).Str("source", dl.Source).Str("dev_eui", dl.DevEUI).Stringer("retry_in", wait).
			Msg("InfluxDB refused spooled points and the dead-letter store failed; they stay in the spool and are tried again (check state_dir's disk)")
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}
