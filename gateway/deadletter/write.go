package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
)

// The write path: Put queues, one writer goroutine commits groups.

// item is a record waiting for the writer.
type item struct {
	seq  uint64
	kind byte
	id   uint64 // a mark's letter, or a migrated letter's id; 0: assign
	js   []byte
	meta
	mark *markState // the state a mark record sets
	done chan error // marks wait for their commit
}

// group is items written together with one fsync.
type group struct {
	items   []*item
	buf     []byte
	ids     []uint64 // per item: letter id (letters) or 0
	lastSeq uint64
}

// Put queues one dead letter for the writer and returns at once. It
// fails with ErrQueueFull (counted) when the writer is a whole queue
// behind, and with ErrClosed after Close. A letter too large for a record
// (a quarter of max_bytes, at most 64 MiB encoded) is counted as lost and
// logged, and Put returns nil: refusing it would only make a broker send
// it again forever.
func (s *File) Put(ctx context.Context, dl gateway.DeadLetter) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	js, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("deadletter: encode: %w", err)
	}
	if recordSize(js) > s.maxRecord {
		s.lost.Add(1)
		s.msgLog.Error().Str("source", dl.Source).Str("reason", string(dl.Reason)).Int("raw_bytes", len(dl.Raw)).Int64("max_bytes", s.opt.MaxBytes).
			Msg("dead letter too large for the store (a quarter of deadletters.max_bytes at most): not kept, counted as lost")
		return nil
	}
	it := &item{kind: kindLetter, js: js, meta: letterMeta(&dl)}
	return s.enqueue(it, false)
}

// enqueue adds it to the queue; bypass ignores the bounds (replay marks,
// which an operator's replay waits for one at a time).
func (s *File) enqueue(it *item, bypass bool) error {
	s.qmu.Lock()
	if s.closed {
		s.qmu.Unlock()
		return ErrClosed
	}
	if !bypass && (len(s.queue) >= s.opt.QueueLetters || s.queueBytes+int64(len(it.js)) > s.opt.QueueBytes) {
		s.qmu.Unlock()
		s.queueFull.Add(1)
		s.msgLog.Warn().Int("queued", s.opt.QueueLetters).Msg("dead-letter write queue full: letter refused and counted")
		return ErrQueueFull
	}
	s.enq++
	it.seq = s.enq
	s.queue = append(s.queue, it)
	s.queueBytes += int64(len(it.js))
	s.qmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// mark appends the outcome of a replay of letter id and waits until it
// is on disk.
func (s *File) mark(ctx context.Context, id uint64, status string, at time.Time, reason gateway.Reason, detail string) error {
	if len(detail) > 1024 {
		detail = detail[:1024] + "…"
	}
	m := markJSON{Status: status, At: at, Reason: reason, Detail: detail}
	js, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("deadletter: encode mark: %w", err)
	}
	st := m.state()
	it := &item{kind: kindMark, id: id, js: js, meta: meta{t: at.UnixNano()}, mark: &st, done: make(chan error, 1)}
	if err := s.enqueue(it, true); err != nil {
		return err
	}
	select {
	case err := <-it.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Flush waits until every letter queued before it is written (or given
// up at Close), or ctx ends.
func (s *File) Flush(ctx context.Context) error { return s.wait(ctx, true) }

// wait waits for the letters queued before it; unless strict, it does not
// wait while writes fail (a listing shows what is on disk).
func (s *File) wait(ctx context.Context, strict bool) error {
	s.qmu.Lock()
	target := s.enq
	for s.doneSeq < target && (strict || !s.failing) {
		ch := s.committed
		s.qmu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.qmu.Lock()
	}
	s.qmu.Unlock()
	return nil
}

// take removes a group's worth of items from the queue.
func (s *File) take() *group {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if len(s.queue) == 0 {
		return nil
	}
	// A group of a quarter segment keeps a flood's groups from making
	// room by dropping most of the store at once.
	limit := max(s.segBytes/4, 64<<10)
	n, size := 0, int64(0)
	for n < len(s.queue) && (n == 0 || size+int64(len(s.queue[n].js)) <= limit) {
		size += int64(len(s.queue[n].js))
		n++
	}
	g := &group{items: slices.Clone(s.queue[:n])}
	clear(s.queue[:n])
	s.queue = s.queue[n:]
	if len(s.queue) == 0 {
		s.queue = nil
	}
	s.queueBytes -= size
	g.lastSeq = g.items[n-1].seq
	return g
}

// finish records the end of a group (written or given up) and wakes
// Flush and the marks waiting for it.
func (s *File) finish(g *group, err error) {
	s.qmu.Lock()
	s.doneSeq = g.lastSeq
	s.failing = err != nil && !errors.Is(err, errGivenUp)
	close(s.committed)
	s.committed = make(chan struct{})
	s.qmu.Unlock()
	for _, it := range g.items {
		if it.done != nil {
			it.done <- err
		}
	}
}

var errGivenUp = errors.New("deadletter: not written before Close")

// setFailing marks the writer as retrying, so Flush does not wait for it.
func (s *File) setFailing() {
	s.qmu.Lock()
	s.failing = true
	close(s.committed)
	s.committed = make(chan struct{})
	s.qmu.Unlock()
}

// run is the writer: it commits queued groups, retrying a failed one with
// backoff (new letters queue up meanwhile, up to the queue's bounds), and
// on Close writes what is queued, giving up on what still fails.
func (s *File) run() {
	defer close(s.done)
	backoff := s.opt.retry
	stopping := false
	var pending *group
	for {
		g := pending
		if g == nil {
			g = s.take()
		}
		if g == nil {
			if stopping {
				return
			}
			select {
			case <-s.wake:
			case <-s.stop:
				stopping = true
			}
			continue
		}
		err := s.commit(g)
		if err == nil {
			pending, backoff = nil, s.opt.retry
			s.finish(g, nil)
			continue
		}
		s.writeErrors.Add(1)
		if stopping {
			letters := 0
			for _, it := range g.items {
				if it.kind == kindLetter {
					letters++
				}
			}
			s.lost.Add(uint64(letters))
			s.log.Error().Err(err).Int("letters", letters).Msg("dead letters: could not write them before stopping; they are lost (counted)")
			s.err = errors.Join(s.err, err)
			pending = nil
			s.finish(g, fmt.Errorf("%w: %w", errGivenUp, err))
			continue
		}
		s.msgLog.Error().Err(err).Stringer("retry_in", backoff).Msg("dead letters: write failed; retrying (letters queue up meanwhile)")
		pending = g
		s.setFailing()
		select {
		case <-time.After(backoff):
			backoff = min(2*backoff, retryMax)
		case <-s.stop:
			stopping = true
		}
	}
}

// commit writes a group and syncs it: room first (dropping the oldest
// segments past max_bytes), a new segment when the active one is full,
// then one write and one fsync. A write that fails part-way is cut off
// again; if that fails too, the fragment stays (readers skip it) and the
// next group goes to a new segment.
func (s *File) commit(g *group) error {
	if g.buf == nil {
		s.encode(g)
	}
	size := int64(len(g.buf))
	s.makeRoom(size)
	s.mu.Lock()
	var seg *segment
	if n := len(s.segs); n > 0 {
		seg = s.segs[n-1]
	}
	s.mu.Unlock()
	if seg == nil || s.rollNext || seg.size > 0 && seg.size+size > s.segBytes {
		var err error
		if seg, err = s.newSegment(g); err != nil {
			return err
		}
	}
	if s.active == nil {
		f, err := s.opt.openSeg(seg.path)
		if err != nil {
			return fmt.Errorf("deadletter: open %s: %w (check state_dir is writable)", seg.path, err)
		}
		s.active = f
	}
	n, err := s.active.Write(g.buf)
	if err == nil {
		if err = s.active.Sync(); err != nil {
			n = int(size)
			err = fmt.Errorf("deadletter: sync %s: %w (check the disk)", seg.path, err)
		}
	} else {
		err = fmt.Errorf("deadletter: write %s: %w (free space in state_dir)", seg.path, err)
	}
	if err != nil {
		if n > 0 {
			if terr := s.active.Truncate(seg.size); terr != nil {
				// The fragment stays: count it, keep readers able to read
				// past it, and append no more to this segment.
				s.corrupt.Add(1)
				s.corruptBytes.Add(int64(n))
				s.mu.Lock()
				seg.size += int64(n)
				s.bytes += int64(n)
				s.mu.Unlock()
				s.rollNext = true
			}
		}
		return err
	}
	s.mu.Lock()
	off := seg.size
	for i, it := range g.items {
		switch it.kind {
		case kindLetter:
			s.addLetter(seg, g.ids[i], off, it.meta)
		case kindMark:
			s.applyMark(it.id, *it.mark)
		}
		off += recordSize(it.js)
	}
	seg.size += size
	s.bytes += size
	s.mu.Unlock()
	return nil
}

// encode assigns the letters their ids and frames the group.
func (s *File) encode(g *group) {
	s.mu.Lock()
	next := s.nextID
	s.mu.Unlock()
	g.ids = make([]uint64, len(g.items))
	n := 0
	for _, it := range g.items {
		n += int(recordSize(it.js))
	}
	g.buf = make([]byte, 0, n)
	for i, it := range g.items {
		id := it.id
		if it.kind == kindLetter {
			if id == 0 || id < next {
				id = next
			}
			next = id + 1
			g.ids[i] = id
		}
		g.buf = appendRecord(g.buf, it.kind, id, it.meta, it.js)
	}
}

// newSegment closes the active segment and creates the next one.
func (s *File) newSegment(g *group) (*segment, error) {
	if s.active != nil {
		_ = s.active.Close()
		s.active = nil
	}
	s.mu.Lock()
	name := s.nextID
	for _, id := range g.ids {
		if id != 0 {
			name = id
			break
		}
	}
	if n := len(s.segs); n > 0 {
		name = max(name, s.segs[n-1].name+1)
	}
	s.mu.Unlock()
	seg := &segment{name: name, path: filepath.Join(s.dir, segName(name))}
	f, err := s.opt.openSeg(seg.path)
	if err != nil {
		return nil, fmt.Errorf("deadletter: create %s: %w (free space in state_dir)", seg.path, err)
	}
	syncDir(s.dir)
	s.active = f
	s.rollNext = false
	s.mu.Lock()
	s.segs = append(s.segs, seg)
	s.mu.Unlock()
	return seg, nil
}

// makeRoom drops the oldest segments until size more bytes fit in
// max_bytes. The segment appended to is dropped only when it is the last
// one left, and then the group goes to a new one.
func (s *File) makeRoom(size int64) {
	for {
		s.mu.Lock()
		if s.bytes+size <= s.opt.MaxBytes || len(s.segs) == 0 {
			s.mu.Unlock()
			return
		}
		seg := s.segs[0]
		last := len(s.segs) == 1
		s.segs = s.segs[1:]
		s.bytes -= seg.size
		s.letters -= seg.letters
		s.dropped.Add(int64(seg.letters))
		s.droppedBytes.Add(seg.size)
		s.lowID = s.nextID
		for _, sg := range s.segs {
			if sg.letters > 0 {
				s.lowID = sg.firstID
				break
			}
		}
		for id := range s.marks {
			if id < s.lowID {
				delete(s.marks, id)
			}
		}
		s.mu.Unlock()
		if last && s.active != nil {
			_ = s.active.Close()
			s.active = nil
		}
		if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Error().Err(err).Str("file", seg.path).Msg("dead letters: could not remove a dropped segment")
		}
		s.log.Warn().Uint64("letters", seg.letters).Int64("bytes", seg.size).Uint64("first_id", seg.firstID).Uint64("last_id", seg.lastID).
			Int64("max_bytes", s.opt.MaxBytes).Msg("dead letters: oldest segment dropped to stay within deadletters.max_bytes")
	}
}

// syncDir makes a new file's directory entry durable; an error only
// risks the file after a power cut, which Open tolerates.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
