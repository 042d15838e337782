package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"
)

// batch is a group commit: the records of every Append that arrived while
// the writer was busy, written with one write and synced with one
// fdatasync. Its appenders wait on done and then read err.
type batch struct {
	buf  []byte // encoded records
	n    int    // records in buf
	done chan struct{}
	err  error
}

// Append adds one record and returns once it is durable per the fsync
// policy: synced to disk with fsync=always, handed to the kernel with an
// interval. Calls from many goroutines share one write and one sync.
//
// An error means the record must be treated as not stored: the caller
// must not acknowledge its source message. If ctx ends first, Append
// returns ctx's error although the record may still be written; a
// redelivered message then is spooled twice, which the consumer's
// idempotency absorbs.
func (s *Spool) Append(ctx context.Context, rec []byte) error {
	if len(rec) > s.maxRec {
		return fmt.Errorf("spool: record of %d bytes exceeds the %d bytes a segment holds: raise spool.segment_bytes: %w", len(rec), s.maxRec, ErrTooLarge)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Checksum outside the lock so appenders on both cores do it in
	// parallel; under the lock there is only a copy.
	var hdr [recHeaderSize]byte
	now := time.Now().UnixNano()
	putRecHeader(&hdr, rec, now)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.failed != nil {
		err := s.failed
		s.mu.Unlock()
		return err
	}
	b := s.cur
	if b == nil || (b.n > 0 && len(b.buf)+recHeaderSize+len(rec) > s.maxBatch) {
		if b != nil {
			s.queue = append(s.queue, b)
		}
		b = s.newBatchLocked()
		s.cur = b
	}
	b.buf = append(b.buf, hdr[:]...)
	b.buf = append(b.buf, rec...)
	b.n++
	s.noteAppendLocked(now)
	// Only the changes the writer waits for wake it: a batch's first
	// record (the writer may be idle) and a group large enough to stop
	// gathering (a batch queued full starts a new one, so it counts as a
	// first record). A busy writer looks at cur when its commit is done;
	// waking it for every record cost a goroutine switch per record.
	wake := b.n == 1 || b.n == commitGroup
	s.mu.Unlock()

	if wake {
		select {
		case s.kick <- struct{}{}:
		default: // the writer already has a wake-up pending
		}
	}
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return fmt.Errorf("spool: append abandoned before the record was durable (it may still be written): %w", ctx.Err())
	}
}

func (s *Spool) newBatchLocked() *batch {
	b := &batch{done: make(chan struct{})}
	if n := len(s.freeBufs); n > 0 {
		b.buf = s.freeBufs[n-1][:0]
		s.freeBufs = s.freeBufs[:n-1]
	}
	return b
}

// run is the writer goroutine: it commits batches in order, syncs on the
// interval, and on Close commits what is left and syncs once more.
func (s *Spool) run() {
	defer close(s.writerDone)
	var tick <-chan time.Time
	if s.interval > 0 {
		t := time.NewTicker(s.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-s.kick:
			s.drain()
		case <-tick:
			s.syncDirty()
		case <-s.stop:
			s.drain()
			s.syncDirty()
			if err := s.trimActive(); err != nil {
				// Only costs the next Open a look at the zeros.
				s.log.Warn().Err(err).Msg("spool: could not trim the space written ahead of the last record")
			}
			return
		}
	}
}

// commitGroup is the number of records at which a group commit stops
// waiting for more (CommitDelay). Past a few dozen records a larger group
// saves little, and the broker's in-flight window (100 recommended) must
// not run dry while the group waits.
const commitGroup = 32

// noteAppendLocked updates the moving average of the time between
// Appends (an eighth of each new gap; a pause counts as at most a
// second, so a stream that resumes is recognised within a few records).
func (s *Spool) noteAppendLocked(now int64) {
	if s.lastAppend != 0 {
		d := min(max(now-s.lastAppend, 0), int64(time.Second))
		s.gap += (d - s.gap) / 8
	} else {
		s.gap = int64(time.Second)
	}
	s.lastAppend = now
}

// drain commits every waiting batch, oldest first.
func (s *Spool) drain() {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 && s.cur != nil && s.gatherFor(s.cur.n, time.Now(), time.Duration(s.gap)) {
			s.mu.Unlock()
			s.gather()
			s.mu.Lock()
		}
		var b *batch
		if len(s.queue) > 0 {
			b = s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
		} else if s.cur != nil && s.cur.n > 0 {
			b = s.cur
			s.cur = nil
		}
		s.mu.Unlock()
		if b == nil {
			return
		}
		b.err = s.commit(b)
		if b.n > 1 {
			s.lastMulti = time.Now()
		}
		close(b.done)
		s.mu.Lock()
		if len(s.freeBufs) < 4 && cap(b.buf) <= 2*s.maxBatch {
			s.freeBufs = append(s.freeBufs, b.buf)
		}
		s.mu.Unlock()
		if s.interval == 0 && b.n > 1 {
			// Let the appenders just released run their next Append
			// before the next batch is taken: otherwise they miss it and
			// batches alternate between two halves of the appenders,
			// halving the records per fsync. It costs the time they need
			// to copy a record each, microseconds against an fsync; the
			// benchmark's records/fsync went from 31 to 48 with 64
			// appenders.
			runtime.Gosched()
		}
	}
}

// gatherFor reports whether the writer should wait for more records
// before committing an open batch of n, given the average time between
// Appends: when several are waiting already, or when a single one is and
// the stream is both concurrent (a group of several was committed within
// flowWindow) and fast enough that another record is due within the
// commit delay. Committing a single record the moment it arrives made
// the size of the groups, and with it the CPU an uplink costs (an fsync,
// a write of acknowledgements and a round of goroutine wake-ups per
// group), follow how long the previous fsync took: at 1,000 uplinks/s
// a quiet machine, whose fsyncs are quick, committed uplinks one by one
// and spent 25-30 % more CPU per uplink than a busy one (BENCHMARKS.md,
// 2026-12-07, the soak's CPU per uplink). A lone appender, whose groups
// hold one record, and a trickle slower than the delay never wait.
func (s *Spool) gatherFor(n int, now time.Time, gap time.Duration) bool {
	switch {
	case s.delay <= 0 || n >= commitGroup:
		return false
	case n >= 2:
		return true
	}
	return !s.lastMulti.IsZero() && now.Sub(s.lastMulti) < flowWindow && gap < s.delay
}

// flowWindow is how long after a group of several records the writer
// still takes the appenders to be concurrent (gatherFor): long enough to
// bridge the stretches of single records of a stream whose appends
// rarely overlap, short enough that an appender left alone soon stops
// waiting.
const flowWindow = time.Second

// gather waits until the open batch holds commitGroup records, fills up,
// the commit delay has passed, or Close begins.
func (s *Spool) gather() {
	s.gatherT.Reset(s.delay)
	defer s.gatherT.Stop()
	for {
		select {
		case <-s.kick:
			s.mu.Lock()
			enough := len(s.queue) > 0 || s.cur.n >= commitGroup // Append never leaves cur nil
			s.mu.Unlock()
			if enough {
				return
			}
		case <-s.gatherT.C:
			return
		case <-s.stop:
			return
		}
	}
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// commit writes one batch at the end of the active segment (starting a
// new segment first if it would overflow), syncs it with fsync=always,
// and only then makes its records visible to Read. A failed batch is cut
// off again, so the file never holds records the appenders were told
// failed.
func (s *Spool) commit(b *batch) error {
	s.mu.Lock()
	failed := s.failed
	s.mu.Unlock()
	if failed != nil {
		return failed
	}
	n := int64(len(b.buf))
	if s.wsize > segHeaderSize && s.wsize+n > s.cfg.SegmentBytes {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	pre, end := s.wsize, s.wsize+n
	fileEnd := max(s.wend, s.preallocEnd(end))
	s.enforceMaxBytes(fileEnd - s.wend)
	if err := s.write(b.buf, pre); err != nil {
		return s.rollback(pre, s.ioError("write", err), false)
	}
	// The file already reaches max(end, s.wend): the records and the
	// zeros of earlier fills.
	if reached := max(end, s.wend); s.zeroFill(reached, fileEnd) != nil {
		// Filling ahead only saves work: on a disk too full for it the
		// records go in without it.
		fileEnd = reached
		if err := s.wf.Truncate(fileEnd); err != nil {
			return s.rollback(pre, s.ioError("cut off a partial fill", err), false)
		}
	}
	if s.interval == 0 {
		if err := s.syncActive(); err != nil {
			// After a failed fsync the kernel may have dropped the dirty
			// pages and will not report it again: nothing written since
			// the last good sync can be trusted, so stop appending until
			// a restart re-verifies the files.
			return s.rollback(pre, s.ioError("fsync", err), true)
		}
		s.syncs.Add(1)
	} else {
		s.wdirty = true
	}
	grow := fileEnd - s.wend
	s.wsize, s.wend = end, fileEnd
	s.wnext += uint64(b.n)
	s.mu.Lock()
	s.lastErr = nil
	s.committed = s.wnext - 1
	s.segs[len(s.segs)-1].size = s.wsize
	s.total += grow
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// preallocStep is how far ahead of its records the active segment is
// filled with zeros, with fsync=always. An fdatasync after a write that
// grows the file must also allocate blocks and write the inode; into
// zeros already on disk it writes only the data. On ext4 that took a
// lone append and fsync from about 170 to about 115 µs of CPU
// (BenchmarkAppendAlways, goroutines=1). The price is
// writing each byte of a segment twice, once as a zero: a megabyte ahead
// at a time, so it is not on every commit's path.
const preallocStep = 1 << 20

// preallocEnd is the size the active segment should have for records up
// to end: end rounded up to preallocStep, within the segment size. With
// an fsync interval the syncs are too few to be worth it.
func (s *Spool) preallocEnd(end int64) int64 {
	if s.interval > 0 || end >= s.cfg.SegmentBytes {
		return end
	}
	return min(s.cfg.SegmentBytes, (end+preallocStep-1)/preallocStep*preallocStep)
}

// zeroFill writes zeros from off to end in the active segment.
func (s *Spool) zeroFill(off, end int64) error {
	if off >= end {
		return nil
	}
	if s.zeros == nil {
		s.zeros = make([]byte, preallocStep)
	}
	for off < end {
		k := min(int64(len(s.zeros)), end-off)
		if err := s.write(s.zeros[:k], off); err != nil {
			return err
		}
		off += k
	}
	return nil
}

// trimActive cuts the zeros written ahead off the active segment and
// syncs its size, so the segment ends with its last record: before it is
// sealed, where readers take the file's size as its end, and at Close.
func (s *Spool) trimActive() error {
	if s.wend <= s.wsize {
		return nil
	}
	if err := s.wf.Truncate(s.wsize); err != nil {
		return err
	}
	if err := fdatasync(s.wf); err != nil {
		return err
	}
	s.mu.Lock()
	s.total -= s.wend - s.wsize
	s.mu.Unlock()
	s.wend = s.wsize
	return nil
}

// write writes p at off in the active segment.
func (s *Spool) write(p []byte, off int64) error {
	if s.testHookWrite != nil {
		n, err := s.testHookWrite(s.wf, p, off)
		if err != nil {
			return err
		}
		p, off = p[n:], off+int64(n)
	}
	_, err := s.wf.WriteAt(p, off)
	return err
}

// syncActive syncs the active segment after a batch.
func (s *Spool) syncActive() error {
	if s.testHookSync != nil {
		if err := s.testHookSync(s.wf); err != nil {
			return err
		}
	}
	return fdatasync(s.wf)
}

// rollback cuts a failed batch off the active segment. If that fails too,
// or sticky is set, the spool refuses further appends until restarted.
func (s *Spool) rollback(pre int64, cause error, sticky bool) error {
	if err := s.wf.Truncate(pre); err != nil {
		sticky = true
		cause = errors.Join(cause, fmt.Errorf("spool: cut off failed write: %w", err))
	} else if s.wend > pre {
		// The zeros written ahead went with the cut.
		s.mu.Lock()
		s.total -= s.wend - pre
		s.mu.Unlock()
		s.wend = pre
	}
	if sticky {
		err := fmt.Errorf("%w; the spool stopped accepting records: restart sensorgate to re-verify it", cause)
		s.mu.Lock()
		s.failed = err
		s.mu.Unlock()
		s.log.Error().Err(cause).Msg("spool: append failed and the files are in an unknown state; refusing appends until restart")
		return err
	}
	s.log.Warn().Err(cause).Msg("spool: append failed; the batch was not stored")
	s.mu.Lock()
	s.lastErr = cause
	s.mu.Unlock()
	return cause
}

// rotate seals the active segment and starts a new one for the next
// record. The old segment is synced first and the new one is complete
// (header synced, name synced in the directory) before any record goes
// into it, so after any crash every segment but the last is whole.
func (s *Spool) rotate() error {
	if s.wdirty {
		if err := fdatasync(s.wf); err != nil {
			return s.rollback(s.wsize, s.ioError("fsync", err), true)
		}
		s.wdirty = false
		s.syncs.Add(1)
	}
	if err := s.trimActive(); err != nil {
		return s.rollback(s.wsize, s.ioError("seal segment", err), true)
	}
	f, err := s.createSegment(s.wnext)
	if err != nil {
		return err
	}
	if err := s.wf.Close(); err != nil {
		s.log.Warn().Err(err).Msg("spool: closing a sealed segment failed")
	}
	s.wf, s.wsize, s.wend = f, segHeaderSize, segHeaderSize
	s.mu.Lock()
	s.segs = append(s.segs, segment{first: s.wnext, size: segHeaderSize})
	s.total += segHeaderSize
	s.mu.Unlock()
	return nil
}

// createSegment creates an empty segment whose first record is first.
// A leftover file of that name can only hold records that were never
// committed, so it is overwritten.
func (s *Spool) createSegment(first uint64) (*os.File, error) {
	path := s.segPath(first)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o640)
	if err != nil {
		return nil, s.ioError("create segment", err)
	}
	var hdr [segHeaderSize]byte
	putSegHeader(hdr[:], first)
	if _, err = f.WriteAt(hdr[:], 0); err == nil {
		if err = fdatasync(f); err == nil {
			err = syncDir(s.dir)
		}
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, s.ioError("create segment", err)
	}
	return f, nil
}

// enforceMaxBytes drops the oldest sealed segments until n more bytes fit
// under MaxBytes. Appends never fail for lack of room under the cap;
// unacked records in dropped segments are counted and logged.
func (s *Spool) enforceMaxBytes(n int64) {
	s.mu.Lock()
	if s.total+n <= s.cfg.MaxBytes || len(s.segs) < 2 {
		s.mu.Unlock()
		return
	}
	var gone []uint64
	var recs, bytes uint64
	var oldest uint64
	for s.total+n > s.cfg.MaxBytes && len(s.segs) > 1 {
		seg, next := s.segs[0], s.segs[1].first
		from := max(seg.first, s.ackSeq+1)
		if from < next {
			if recs == 0 {
				oldest = from
			}
			recs += next - from
			bytes += uint64(seg.size)
		}
		s.total -= seg.size
		s.segs = slices.Delete(s.segs, 0, 1)
		gone = append(gone, seg.first)
	}
	s.dropRecs += recs
	s.dropBytes += bytes
	totalRecs := s.dropRecs
	s.pruneTimesLocked()
	s.mu.Unlock()
	for _, first := range gone {
		s.removeSegment(first)
	}
	if recs > 0 {
		s.log.Warn().Uint64("dropped_records", recs).Uint64("dropped_bytes", bytes).
			Uint64("from_position", oldest).Int("segments", len(gone)).
			Int64("max_bytes", s.cfg.MaxBytes).Uint64("dropped_records_total", totalRecs).
			Msg("spool: full; dropped the oldest undelivered records (InfluxDB unreachable for too long? raise spool.max_bytes to keep more)")
	}
}

// syncDirty syncs what the interval mode left unsynced: the active
// segment and the ack file.
func (s *Spool) syncDirty() {
	if s.wdirty {
		if err := fdatasync(s.wf); err != nil {
			err = fmt.Errorf("%w; records appended in the last %s may be lost on power failure; the spool stopped accepting records: restart sensorgate to re-verify it", s.ioError("fsync", err), s.interval)
			s.mu.Lock()
			if s.failed == nil {
				s.failed = err
			}
			s.mu.Unlock()
			s.log.Error().Err(err).Msg("spool: periodic fsync failed")
		}
		s.wdirty = false
		s.syncs.Add(1)
	}
	s.mu.Lock()
	dirty := s.ackDirty
	s.ackDirty = false
	s.mu.Unlock()
	if dirty {
		if err := fdatasync(s.ackF); err != nil {
			// Only costs re-delivery after a power cut: log, do not fail.
			s.log.Warn().Err(err).Msg("spool: syncing the ack position failed; some records may be delivered twice after a power cut")
		}
	}
}
