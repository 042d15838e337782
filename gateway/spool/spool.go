package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// Sentinel errors; test for them with errors.Is.
var (
	// ErrClosed is returned by every method once Close has begun.
	ErrClosed = errors.New("spool: closed")
	// ErrTooLarge is returned by Append for a record that would not fit
	// in one segment.
	ErrTooLarge = errors.New("spool: record too large")
	// ErrCorrupt marks damage the spool cannot repair while running.
	ErrCorrupt = errors.New("spool: corrupt")
)

// Position is a record's sequence number: 1 for the first record ever
// appended to a spool directory, then one more for each record. Positions
// are never reused, also not across restarts or drops, so a consumer can
// compare them.
type Position uint64

// Record is one record returned by Read.
type Record struct {
	// Pos is what to pass to Ack once this record (and all before it) has
	// been delivered.
	Pos Position
	// Time is when Append wrote the record (the local clock), for
	// measuring delivery lag.
	Time time.Time
	// Data is the caller's bytes as given to Append. It belongs to the
	// caller: the spool never touches it again.
	Data []byte

	off int // where Data starts in its Buffer's memory
}

// Stats is a snapshot of the spool's state and counters, for metrics and
// the status page.
type Stats struct {
	Bytes    int64  // bytes in segment files on disk
	Segments int    // segment files on disk
	Pending  uint64 // records appended and not yet acked
	// OldestAge is the age of the oldest pending record (0 when none):
	// how far delivery lags behind.
	OldestAge time.Duration
	// DroppedRecords and DroppedBytes count what max_bytes pushed out
	// before it was acked; DroppedBytes is the size of the segment files
	// removed for it.
	DroppedRecords uint64
	DroppedBytes   uint64
	// CorruptRecords counts records lost to checksum or format errors
	// found by Read in sealed segments (media damage, not crashes).
	CorruptRecords uint64
	// RepairedBytes counts bytes of torn or corrupt tail cut off by Open.
	RepairedBytes int64
	// Syncs counts fdatasync calls on segment files since Open: appended
	// records per sync is the size of the group commits.
	Syncs uint64
}

// segment is one segment file as the spool tracks it.
type segment struct {
	first uint64 // sequence number of its first record
	size  int64  // bytes: final size when sealed, committed bytes when active
}

// Spool is a durable on-disk FIFO of opaque records. Append is safe for
// many goroutines at once; Read and Ack are meant for one consumer (calls
// are serialized, so a second one is safe but gains nothing). See the
// package documentation for the delivery contract.
type Spool struct {
	cfg      Config
	dir      string
	log      zerolog.Logger
	interval time.Duration // 0 means fsync=always
	delay    time.Duration // commit delay with fsync=always; 0 for none
	gatherT  *time.Timer   // the writer's commit-delay timer, stopped when idle
	maxRec   int           // largest payload Append takes
	maxBatch int           // bytes at which Append starts another batch

	lockF *os.File
	ackF  *os.File

	kick       chan struct{} // appenders → writer: batches are waiting (cap 1)
	wake       chan struct{} // writer → reader: records were committed (cap 1)
	stop       chan struct{} // closed by Close
	writerDone chan struct{} // closed when the writer goroutine returns

	mu        sync.Mutex
	closed    bool
	failed    error    // sticky: set when the spool's files are in an unknown state
	lastErr   error    // the last batch's failure, nil once a batch commits (health.go)
	cur       *batch   // batch that Append is filling
	queue     []*batch // full batches waiting for the writer, oldest first
	freeBufs  [][]byte // batch buffers to reuse
	segs      []segment
	committed uint64 // last sequence number readable (0: none yet)
	total     int64  // sum of segs[].size
	ackSeq    uint64 // last acked sequence number
	ackDirty  bool   // interval mode: ack file written but not synced
	// published reader position, for Stats
	readNext  uint64
	readSeg   uint64
	readOff   int64
	readTimes []int64 // append times of records read and not acked
	readBase  uint64  // sequence number of readTimes[0]
	oldestSeq uint64  // cache of one pread in Stats
	oldestT   int64
	dropRecs  uint64
	dropBytes uint64
	corrupt   uint64
	repaired  int64
	// lastAppend is the time of the latest Append (unix ns) and gap the
	// moving average of the time between Appends: with fsync=always the
	// writer gathers a lone record only when another is due within the
	// commit delay (gatherFor).
	lastAppend int64
	gap        int64

	// owned by the writer goroutine (and by Open before it starts)
	wf     *os.File
	wsize  int64  // bytes in wf that are committed
	wend   int64  // wf's size: wsize plus the zeros written ahead of it
	zeros  []byte // source of those zeros
	wnext  uint64 // sequence number the next committed record gets
	wdirty bool   // interval mode: wf written but not synced
	syncs  atomic.Uint64
	// lastMulti is when the writer last committed a group of two
	// records or more: appenders overlap, so there is more than one.
	lastMulti time.Time

	// owned by whoever holds readMu (Read, Ack, Close)
	readMu  sync.Mutex
	rd      segReader
	live    *liveReader // a live reader ahead of rd, if any (live.go)
	ackSlot int         // slot the next ack write goes to

	// testHookWrite replaces the segment write in tests that inject
	// errors such as ENOSPC; nil in production.
	testHookWrite func(f *os.File, p []byte, off int64) (int, error)
	// testHookSync runs before each batch's fdatasync and can fail it.
	testHookSync func(f *os.File) error
}

// Open opens the spool in cfg.Dir, creating it if needed, and reconciles
// what a crash may have left: it checks every segment header, verifies
// every record of the last segment, cuts off a torn or corrupt tail
// (logged), deletes segments that were fully acked and restores the ack
// position. Only one process may have a spool directory open.
func Open(cfg Config, log zerolog.Logger) (*Spool, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	interval, _ := cfg.syncInterval()
	delay, _ := cfg.commitDelay()
	if interval > 0 {
		delay = 0 // records are committed without a sync: nothing to share
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool: create %s: %w: check that state_dir exists and is writable", cfg.Dir, err)
	}
	s := &Spool{
		cfg:        cfg,
		dir:        cfg.Dir,
		log:        log,
		interval:   interval,
		delay:      delay,
		gatherT:    stoppedTimer(),
		maxRec:     int(cfg.SegmentBytes) - segHeaderSize - recHeaderSize,
		maxBatch:   int(min(cfg.SegmentBytes-segHeaderSize, 1<<20)),
		kick:       make(chan struct{}, 1),
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	if err := s.openFiles(); err != nil {
		s.closeFiles()
		return nil, err
	}
	go s.run()
	return s, nil
}

// openFiles takes the lock and reconciles the directory.
func (s *Spool) openFiles() error {
	var err error
	lockPath := filepath.Join(s.dir, lockFileName)
	if s.lockF, err = os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o640); err != nil {
		return fmt.Errorf("spool: open %s: %w: check that the spool directory is writable", lockPath, err)
	}
	if err := lockFile(s.lockF); err != nil {
		if errors.Is(err, errLocked) {
			return fmt.Errorf("spool: %s is in use by another process: stop it or give this one its own spool.dir", s.dir)
		}
		return fmt.Errorf("spool: lock %s: %w", lockPath, err)
	}
	if err := s.loadAck(); err != nil {
		return err
	}
	firsts, err := s.listSegments()
	if err != nil {
		return err
	}
	if len(firsts) == 0 {
		// A fresh spool continues after the acked position, so positions
		// stay unique even if someone emptied the directory by hand.
		return s.createFirstSegment(s.ackSeq + 1)
	}
	for i, first := range firsts {
		size, err := s.checkSegment(first, i == len(firsts)-1)
		if err != nil {
			return err
		}
		s.segs = append(s.segs, segment{first: first, size: size})
	}
	if err := s.recoverTail(); err != nil {
		return err
	}
	s.removeAckedAtOpen()
	for _, seg := range s.segs {
		s.total += seg.size
	}
	s.total += s.wend - s.wsize // the active segment's zeros written ahead
	s.rd.next = max(s.ackSeq+1, s.segs[0].first)
	s.readNext = s.rd.next
	return nil
}

// listSegments returns the first sequence numbers of the segment files in
// the directory, in order.
func (s *Spool) listSegments() ([]uint64, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("spool: read %s: %w", s.dir, err)
	}
	var firsts []uint64
	for _, e := range entries {
		if first, ok := parseSegName(e.Name()); ok && e.Type().IsRegular() {
			firsts = append(firsts, first)
		}
	}
	slices.Sort(firsts)
	return firsts, nil
}

// checkSegment verifies a segment's header and returns its size. A last
// segment whose header is missing or blank was being created when the
// process died (nothing is written to a segment before its header is
// synced), so it is reset to an empty segment; any other bad header is
// damage or a foreign file, which the operator must look at.
func (s *Spool) checkSegment(first uint64, last bool) (int64, error) {
	path := s.segPath(first)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("spool: open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("spool: stat %s: %w", path, err)
	}
	var hdr [segHeaderSize]byte
	n, err := f.ReadAt(hdr[:], 0)
	if err != nil && err != io.EOF {
		return 0, fmt.Errorf("spool: read %s: %w", path, err)
	}
	var want [segHeaderSize]byte
	putSegHeader(want[:], first)
	if n == segHeaderSize && hdr == want {
		return fi.Size(), nil
	}
	blank := allZero(hdr[:n])
	if !last || (n == segHeaderSize && !blank) {
		return 0, fmt.Errorf("spool: %s has no valid segment header for record %d (damaged or not a spool file): move it out of %s and restart; its records are lost: %w", path, first, s.dir, ErrCorrupt)
	}
	if fi.Size() > segHeaderSize && !allZeroRange(f, 0, fi.Size()) {
		return 0, fmt.Errorf("spool: %s has a blank header but data after it (damaged): move it out of %s and restart; its records are lost: %w", path, s.dir, ErrCorrupt)
	}
	s.log.Warn().Str("segment", path).Int64("bytes", fi.Size()).
		Msg("spool: last segment was being created at a crash; resetting it")
	if err := f.Truncate(0); err != nil {
		return 0, fmt.Errorf("spool: repair %s: %w", path, err)
	}
	if _, err := f.WriteAt(want[:], 0); err != nil {
		return 0, s.ioError("repair", err)
	}
	if err := fdatasync(f); err != nil {
		return 0, s.ioError("repair", err)
	}
	s.repaired += fi.Size()
	return segHeaderSize, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// allZeroRange reports whether f holds only zero bytes from off to end:
// space written ahead of the records, or a file extended by a power cut
// before its data reached the disk.
func allZeroRange(f *os.File, off, end int64) bool {
	buf := make([]byte, 64<<10)
	for off < end {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), end-off)], off)
		if !allZero(buf[:n]) {
			return false
		}
		if err != nil {
			return err == io.EOF
		}
		off += int64(n)
	}
	return true
}

// createFirstSegment starts an empty spool whose first record will be first.
func (s *Spool) createFirstSegment(first uint64) error {
	f, err := s.createSegment(first)
	if err != nil {
		return err
	}
	s.wf, s.wsize, s.wend, s.wnext = f, segHeaderSize, segHeaderSize, first
	s.committed = first - 1
	s.segs = []segment{{first: first, size: segHeaderSize}}
	s.total = segHeaderSize
	s.rd.next, s.readNext = first, first
	return nil
}

// recoverTail verifies every record of the last segment, cuts off the
// first bad one and everything after it (a torn write or a power cut
// before fsync), and opens the segment for appending. Zeros after the
// last record are the space written ahead of the records
// (preallocation), left by a crash or kill: they are kept, silently.
func (s *Spool) recoverTail() error {
	tail := &s.segs[len(s.segs)-1]
	path := s.segPath(tail.first)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("spool: open %s: %w", path, err)
	}
	var sr segReader
	sr.attach(f, tail.first)
	var reason error
	for sr.off < tail.size {
		if _, _, err := sr.record(tail.size); err != nil {
			reason = err
			break
		}
		sr.skip()
	}
	sr.buf = nil
	fileSize := tail.size
	if sr.off < tail.size && allZeroRange(f, sr.off, tail.size) {
		tail.size = sr.off
	}
	if sr.off < tail.size {
		cut := tail.size - sr.off
		s.log.Warn().Str("segment", path).Int64("offset", sr.off).Uint64("record", sr.seq).
			Int64("discarded_bytes", cut).AnErr("reason", reason).
			Msg("spool: cut off a torn or corrupt tail (a crash interrupted a write; that record was never acknowledged unless the disk is damaged)")
		if err := f.Truncate(sr.off); err != nil {
			f.Close()
			return fmt.Errorf("spool: repair %s: %w", path, err)
		}
		if err := fdatasync(f); err != nil {
			f.Close()
			return s.ioError("repair", err)
		}
		s.repaired += cut
		tail.size, fileSize = sr.off, sr.off
	}
	s.wf, s.wsize, s.wend, s.wnext = f, tail.size, fileSize, sr.seq
	s.committed = sr.seq - 1
	if s.ackSeq > s.committed {
		// The ack file is ahead of the data: records were lost from the
		// tail (a power cut with an fsync interval, or files removed by
		// hand). Acking what no longer exists would skip future records.
		s.log.Warn().Uint64("ack", s.ackSeq).Uint64("last_record", s.committed).
			Msg("spool: ack position is past the last record; resetting it")
		s.ackSeq = s.committed
		if err := s.writeAck(s.ackSeq, true); err != nil {
			return err
		}
	}
	return nil
}

// removeAckedAtOpen deletes sealed segments whose records were all acked
// before a crash cut the deletion short.
func (s *Spool) removeAckedAtOpen() {
	n := 0
	for n < len(s.segs)-1 && s.segs[n+1].first-1 <= s.ackSeq {
		n++
	}
	for _, seg := range s.segs[:n] {
		s.removeSegment(seg.first)
	}
	s.segs = slices.Delete(s.segs, 0, n)
}

// removeSegment deletes a segment file; a failure only costs disk space
// until the next Open, so it is logged rather than returned.
func (s *Spool) removeSegment(first uint64) {
	if err := os.Remove(s.segPath(first)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Error().Err(err).Str("segment", s.segPath(first)).Msg("spool: cannot remove segment; it is retried on the next start")
	}
}

// loadAck reads the ack file, creating it if missing.
func (s *Spool) loadAck() error {
	path := filepath.Join(s.dir, ackFileName)
	var err error
	if s.ackF, err = os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o640); err != nil {
		return fmt.Errorf("spool: open %s: %w", path, err)
	}
	var buf [ackSlot1Off + ackSlotSize]byte
	n, err := s.ackF.ReadAt(buf[:], 0)
	if err != nil && err != io.EOF {
		return fmt.Errorf("spool: read %s: %w", path, err)
	}
	a0, ok0 := parseAckSlot(buf[:min(n, ackSlotSize)])
	a1, ok1 := parseAckSlot(buf[min(n, ackSlot1Off):n])
	switch {
	case ok0 && (!ok1 || a0 >= a1):
		s.ackSeq, s.ackSlot = a0, 1
	case ok1:
		s.ackSeq, s.ackSlot = a1, 0
	case n > 0:
		s.log.Warn().Str("file", path).Msg("spool: ack file unreadable; re-delivering from the oldest record")
	}
	return nil
}

// writeAck stores seq in the slot not holding the current ack, so a torn
// write leaves the previous ack readable.
func (s *Spool) writeAck(seq uint64, sync bool) error {
	var slot [ackSlotSize]byte
	putAckSlot(slot[:], seq)
	off := int64(0)
	if s.ackSlot == 1 {
		off = ackSlot1Off
	}
	if _, err := s.ackF.WriteAt(slot[:], off); err != nil {
		return s.ioError("write ack", err)
	}
	if sync {
		if err := fdatasync(s.ackF); err != nil {
			return s.ioError("sync ack", err)
		}
	}
	s.ackSlot ^= 1
	return nil
}

// ioError wraps a file error with what the operator should do.
func (s *Spool) ioError(op string, err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("spool: %s: %s: no space left on device: free disk space or lower spool.max_bytes: %w", s.dir, op, err)
	}
	return fmt.Errorf("spool: %s: %w", op, err)
}

// Close stops accepting records, writes and syncs every record already
// accepted, syncs the ack position and releases the directory. Read calls
// blocked in Close's way return ErrClosed. Closing twice is a no-op.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.writerDone
	s.readMu.Lock()
	defer s.readMu.Unlock()
	s.rd.close()
	if s.live != nil {
		s.live.rd.close()
		s.live = nil
	}
	s.mu.Lock()
	err := s.failed
	s.mu.Unlock()
	return errors.Join(err, s.closeFiles())
}

// closeFiles closes whatever files are open; used by Close and by a
// failed Open.
func (s *Spool) closeFiles() error {
	var errs []error
	for _, f := range []*os.File{s.wf, s.ackF, s.lockF} {
		if f != nil {
			if err := f.Close(); err != nil {
				errs = append(errs, fmt.Errorf("spool: close: %w", err))
			}
		}
	}
	s.wf, s.ackF, s.lockF = nil, nil, nil
	return errors.Join(errs...)
}

// Stats returns a snapshot of sizes and counters. It may read one record
// header from disk to find the oldest pending record's age.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	st := Stats{
		Bytes:          s.total,
		Segments:       len(s.segs),
		DroppedRecords: s.dropRecs,
		DroppedBytes:   s.dropBytes,
		CorruptRecords: s.corrupt,
		RepairedBytes:  s.repaired,
		Syncs:          s.syncs.Load(),
	}
	oldest := max(s.ackSeq+1, s.segs[0].first)
	if oldest > s.committed {
		s.mu.Unlock()
		return st
	}
	st.Pending = s.committed - oldest + 1
	t, path, off := s.oldestTimeLocked(oldest)
	s.mu.Unlock()
	if t == 0 && path != "" {
		if t = readRecordTime(path, off); t != 0 {
			s.mu.Lock()
			s.oldestSeq, s.oldestT = oldest, t
			s.mu.Unlock()
		}
	}
	if t != 0 {
		st.OldestAge = max(0, time.Since(time.Unix(0, t)))
	}
	return st
}

// oldestTimeLocked returns the append time of record seq if it is known
// in memory, or else where its header is on disk.
func (s *Spool) oldestTimeLocked(seq uint64) (int64, string, int64) {
	if seq >= s.readBase && seq-s.readBase < uint64(len(s.readTimes)) {
		return s.readTimes[seq-s.readBase], "", 0
	}
	if seq == s.oldestSeq {
		return s.oldestT, "", 0
	}
	if seq == s.readNext && s.readSeg != 0 {
		return 0, s.segPath(s.readSeg), s.readOff
	}
	for _, seg := range s.segs {
		if seg.first == seq {
			return 0, s.segPath(seq), segHeaderSize
		}
	}
	return 0, "", 0
}

// readRecordTime reads the append time from the record header at off; 0
// if it cannot (the segment was dropped meanwhile).
func readRecordTime(path string, off int64) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var hdr [recHeaderSize]byte
	if _, err := f.ReadAt(hdr[:], off); err != nil {
		return 0
	}
	return int64(binary.LittleEndian.Uint64(hdr[8:16]))
}

// Positions returns the last committed record's position and the last
// acknowledged one: a caller that must wait for everything appended so
// far to be delivered waits until acked reaches committed.
func (s *Spool) Positions() (committed, acked Position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Position(s.committed), Position(s.ackSeq)
}
