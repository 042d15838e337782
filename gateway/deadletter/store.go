package deadletter

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
)

// FileName is the dead-letter store's directory under the state
// directory. Stores of earlier versions were one file, FileName+".jsonl";
// Open migrates it.
const FileName = "deadletters"

// Config bounds the store; it is the deadletters section of the config.
type Config struct {
	// MaxBytes bounds the store's files on disk (default 256 MiB). Beyond
	// it the oldest segment is dropped, its letters counted and logged.
	MaxBytes int64 `yaml:"max_bytes"`
}

// Limits.
const (
	DefaultMaxBytes = 256 << 20
	// MinMaxBytes keeps room for a few segments of letters of UDP size.
	MinMaxBytes = 1 << 20

	defaultQueueLetters = 4096
	defaultQueueBytes   = 16 << 20
	maxSegmentBytes     = 64 << 20
	minSegmentBytes     = 256 << 10
	// indexEvery is the spacing of the per-segment offset index: a
	// listing reads at most this much (or one record) past what it needs.
	indexEvery = 64 << 10
	retryMin   = 50 * time.Millisecond
	retryMax   = 5 * time.Second
)

// Errors of Put.
var (
	// ErrQueueFull is Put's answer while the writer is behind by the
	// whole queue (a flood, or a disk that does not take writes). The
	// letter is counted (Stats.QueueFull) and not kept; an MQTT source
	// leaves the message unacknowledged, so the broker sends it again.
	ErrQueueFull = errors.New("deadletter: write queue full: the disk is not keeping up or refuses writes (check free space in state_dir); the letter is not kept")
	// ErrClosed is Put's answer after Close.
	ErrClosed = errors.New("deadletter: store is closed")
)

// Stats are the store's counters since Open (and the current sizes).
type Stats struct {
	Letters  uint64 // letters on disk
	Bytes    int64  // bytes of segment files
	Segments int
	Queued   int // letters waiting for the writer
	// Dropped letters were removed, oldest first, to keep the files
	// within max_bytes (DroppedBytes their segments' bytes).
	Dropped      uint64
	DroppedBytes int64
	// Corrupt counts damaged or torn records skipped (found at Open, or
	// left by a write that failed part-way), CorruptBytes their bytes.
	Corrupt      uint64
	CorruptBytes int64
	// QueueFull counts letters Put refused because the queue was full.
	QueueFull uint64
	// Lost counts letters Put took that never reached the disk: larger
	// than a record may be, or still failing to write at Close.
	Lost uint64
	// WriteErrors counts failed writes or syncs (each retried).
	WriteErrors uint64
}

// Options configure Open beyond Config.
type Options struct {
	Config
	Log zerolog.Logger
	// QueueLetters and QueueBytes bound the letters waiting for the
	// writer (defaults 4096 letters, 16 MiB or a quarter of MaxBytes).
	QueueLetters int
	QueueBytes   int64

	// openSeg opens a segment for appending (tests inject failures);
	// retry is the first wait after a failed write.
	openSeg func(path string) (segFile, error)
	retry   time.Duration
}

// segFile is what the writer needs of an open segment.
type segFile interface {
	Write(p []byte) (int, error)
	Sync() error
	Truncate(size int64) error
	Close() error
}

func openSegFile(path string) (segFile, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
}

// indexEntry marks a record boundary: letters from minID on are at or
// after off. The chunk up to the next entry holds letters with the
// reasons of its mask, dead-lettered between minT and maxT.
type indexEntry struct {
	minID      uint64
	off        int64
	minT, maxT int64
	reasons    uint32
	bloom      bloom // sources and devices of its letters
}

// bloom is a 512-bit Bloom filter of a chunk's sources and devices, two
// bits per value: a listing for one device skips the chunks without it.
type bloom [8]uint64

func (b *bloom) set(h uint32) {
	b[h>>6&7] |= 1 << (h & 63)
	h >>= 9
	b[h>>6&7] |= 1 << (h & 63)
}

func (b *bloom) has(h uint32) bool {
	if b[h>>6&7]&(1<<(h&63)) == 0 {
		return false
	}
	h >>= 9
	return b[h>>6&7]&(1<<(h&63)) != 0
}

// add sets the bits of a letter's source and device; the hashes are
// salted apart, so a source named like a device does not match it.
func (b *bloom) add(src, dev uint32) {
	b.set(src)
	b.set(dev ^ 0x9e3779b9)
}

// segment is one segment file as the store knows it.
type segment struct {
	name    uint64
	path    string
	size    int64 // bytes readers may read: whole records (and known damage)
	letters uint64
	// firstID and lastID are the ids of its first and last letters (0:
	// none); minT and maxT bound their times (Unix ns); reasons has a bit
	// per reason present.
	firstID, lastID uint64
	minT, maxT      int64
	reasons         uint32
	index           []indexEntry
	lastIndexed     int64
}

// markState is what a letter's replays came to.
type markState struct {
	replayedAt time.Time
	attempts   int
	lastError  string
}

// File is the dead-letter store: a directory of segment files of
// checksummed records, written by one goroutine in group commits.
//
// Put encodes the letter and queues it; it never waits for the disk, so
// a receive loop is not held up by fsyncs. A writer goroutine appends
// whatever is queued as one group and syncs it once. A crash (kill -9,
// power cut) loses the letters queued at that moment, a few
// milliseconds' worth; a failed write is retried until Close.
type File struct {
	dir       string
	log       zerolog.Logger
	msgLog    zerolog.Logger
	opt       Options
	segBytes  int64
	maxRecord int64

	// qmu guards the queue and commit progress (the Put path).
	qmu        sync.Mutex
	queue      []*item
	queueBytes int64
	enq        uint64 // seq of the last queued item
	doneSeq    uint64 // seq of the last item written or given up
	committed  chan struct{}
	failing    bool
	closed     bool

	// mu guards the segments, marks and sizes (writer and readers).
	mu      sync.Mutex
	segs    []*segment // oldest first; the last is the one appended to
	marks   map[uint64]*markState
	nextID  uint64
	lowID   uint64 // the oldest letter held (nextID when none)
	bytes   int64
	letters uint64

	// Counters read by Stats without a lock.
	dropped, droppedBytes, corrupt, corruptBytes atomic.Int64
	queueFull, lost, writeErrors                 atomic.Uint64
	// listRead counts the bytes listings read (tests bound it).
	listRead atomic.Int64

	// The writer's own state.
	active   segFile
	rollNext bool // the active segment has a fragment at its end: start a new one

	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	err   error    // what the writer gave up on at Close
	lockF *os.File // held while open
}

var _ gateway.DeadLetters = (*File)(nil)

// Open opens (creating if needed) the dead-letter store in the directory
// path, migrating a store of an earlier version (path+".jsonl"). It
// reconciles what a crash left: every record is checked, damaged ones
// are skipped and counted, and a torn end of the newest segment is cut
// off so the next letter does not follow it.
//
// A lock file beside the directory (path+".lock") keeps a second process
// (a second daemon, or the CLI's offline mode while a daemon runs) from
// opening the store: it would take the live writer's unfinished group
// for a torn end.
func Open(path string, opt Options) (*File, error) {
	lf, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("deadletter: %w (check state_dir exists and is writable)", err)
	}
	if held, err := lock(lf); held || err != nil {
		lf.Close()
		if err != nil {
			return nil, fmt.Errorf("deadletter: lock %s: %w", path+".lock", err)
		}
		return nil, fmt.Errorf("deadletter: %s is in use by another sensorgate process: stop it, or give this one its own state_dir", path)
	}
	s, err := openStore(path, opt, false)
	if err == nil {
		err = s.migrate(path + ".jsonl")
		if err != nil {
			s.closeFiles()
		}
	}
	if err != nil {
		lf.Close()
		return nil, err
	}
	s.lockF = lf
	s.makeRoom(0) // max_bytes may have been lowered since the last run
	go s.run()
	return s, nil
}

// openStore reads the store at path; readOnly neither creates nor repairs
// anything and starts no writer.
func openStore(path string, opt Options, readOnly bool) (*File, error) {
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	opt.MaxBytes = max(opt.MaxBytes, MinMaxBytes)
	if opt.QueueLetters <= 0 {
		opt.QueueLetters = defaultQueueLetters
	}
	if opt.QueueBytes <= 0 {
		opt.QueueBytes = min(defaultQueueBytes, opt.MaxBytes/4)
	}
	if opt.openSeg == nil {
		opt.openSeg = openSegFile
	}
	if opt.retry <= 0 {
		opt.retry = retryMin
	}
	s := &File{
		dir: path, opt: opt, log: opt.Log,
		msgLog:    opt.Log.Sample(&zerolog.BurstSampler{Burst: 10, Period: time.Minute}),
		segBytes:  min(max(opt.MaxBytes/8, minSegmentBytes), maxSegmentBytes),
		maxRecord: min(opt.MaxBytes/4, maxBody),
		committed: make(chan struct{}),
		marks:     map[uint64]*markState{},
		nextID:    1,
		lowID:     1,
		wake:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if !readOnly {
		if err := os.MkdirAll(path, 0o750); err != nil {
			return nil, fmt.Errorf("deadletter: create %s: %w (check state_dir exists and is writable)", path, err)
		}
		// A migration that did not finish starts over.
		if err := os.RemoveAll(path + migratingSuffix); err != nil {
			return nil, fmt.Errorf("deadletter: remove the unfinished migration %s: %w", path+migratingSuffix, err)
		}
	}
	if err := s.load(readOnly); err != nil {
		return nil, err
	}
	return s, nil
}

// load scans every segment: summaries, marks, damage.
func (s *File) load(readOnly bool) error {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) && readOnly {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deadletter: read %s: %w", s.dir, err)
	}
	var names []uint64
	for _, e := range entries {
		if n, ok := parseSegName(e.Name()); ok && e.Type().IsRegular() {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for i, n := range names {
		seg := &segment{name: n, path: filepath.Join(s.dir, segName(n))}
		tail, err := s.scanSegment(seg)
		if err != nil {
			return err
		}
		if tail > 0 && i == len(names)-1 && !readOnly {
			// The end of the segment appended to: a write the crash cut
			// short. Cut it off, so the next record does not follow it.
			if err := os.Truncate(seg.path, seg.size-tail); err != nil {
				return fmt.Errorf("deadletter: cut the torn end off %s: %w", seg.path, err)
			}
			s.log.Warn().Str("file", seg.path).Int64("bytes", tail).Msg("dead letters: cut off a record torn by a crash")
			seg.size -= tail
		}
		s.segs = append(s.segs, seg)
		s.bytes += seg.size
	}
	if n := s.corrupt.Load(); n > 0 {
		s.log.Warn().Int64("records", n).Int64("bytes", s.corruptBytes.Load()).Str("dir", s.dir).
			Msg("dead letters: damaged records skipped (torn writes or media damage); the others are kept")
	}
	return nil
}

// scanSegment reads one segment into seg and the marks; it returns the
// length of a torn end.
func (s *File) scanSegment(seg *segment) (int64, error) {
	f, err := os.Open(seg.path)
	if err != nil {
		return 0, fmt.Errorf("deadletter: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("deadletter: %w", err)
	}
	sc := newScanner(f, 0, fi.Size(), 1<<20)
	for {
		rec, ok := sc.next()
		if !ok {
			break
		}
		switch rec.kind {
		case kindLetter:
			if rec.id < s.nextID {
				continue // a copy of a letter already read (a retried write)
			}
			s.addLetter(seg, rec.id, rec.off, rec.meta)
		case kindMark:
			var m markJSON
			if json.Unmarshal(rec.js, &m) == nil {
				s.applyMark(rec.id, m.state())
			}
		}
		seg.size = rec.off + rec.size
	}
	if sc.err != nil {
		return 0, fmt.Errorf("deadletter: read %s: %w", seg.path, sc.err)
	}
	s.corrupt.Add(int64(sc.bad))
	s.corruptBytes.Add(sc.badBytes)
	seg.size = fi.Size()
	return sc.tail, nil
}

// addLetter adds a letter written at off to seg's summary (mu held, or
// during Open).
func (s *File) addLetter(seg *segment, id uint64, off int64, m meta) {
	t, reason := m.t, m.reason
	if seg.letters == 0 {
		seg.firstID, seg.minT, seg.maxT = id, t, t
	}
	if s.letters == 0 {
		s.lowID = id
	}
	if len(seg.index) == 0 || off-seg.lastIndexed >= indexEvery {
		seg.index = append(seg.index, indexEntry{minID: id, off: off, minT: t, maxT: t})
		seg.lastIndexed = off
	}
	e := &seg.index[len(seg.index)-1]
	e.minT, e.maxT = min(e.minT, t), max(e.maxT, t)
	e.reasons |= reasonBit(reason)
	e.bloom.add(m.src, m.dev)
	seg.lastID = id
	seg.minT, seg.maxT = min(seg.minT, t), max(seg.maxT, t)
	seg.reasons |= reasonBit(reason)
	seg.letters++
	s.letters++
	s.nextID = id + 1
}

// applyMark records a replay of letter id (mu held, or during Open). A
// mark for a letter the store does not hold (dropped) is ignored.
func (s *File) applyMark(id uint64, m markState) {
	if id < s.lowID || id >= s.nextID {
		return
	}
	st := s.marks[id]
	if st == nil {
		st = &markState{}
		s.marks[id] = st
	}
	st.attempts++
	if !m.replayedAt.IsZero() {
		st.replayedAt, st.lastError = m.replayedAt, ""
	} else {
		st.lastError = m.lastError
	}
}

// reasonCode is a reason's byte in records: its index in knownReasons,
// otherReason for any other.
func reasonCode(r gateway.Reason) byte {
	for i, k := range knownReasons {
		if k == r {
			return byte(i)
		}
	}
	return otherReason
}

const otherReason = 255

// reasonBit is a reason code's bit in summaries; codes outside the known
// set share the top bit.
func reasonBit(code byte) uint32 {
	if int(code) < len(knownReasons) {
		return 1 << code
	}
	return 1 << 31
}

var knownReasons = []gateway.Reason{
	gateway.ReasonMalformed, gateway.ReasonUnknownDevice, gateway.ReasonUnknownModel, gateway.ReasonDecode,
	gateway.ReasonNormalize, gateway.ReasonRejected, gateway.ReasonReplay, gateway.ReasonBadMIC, gateway.ReasonEncrypted,
}

// markJSON is a mark record's JSON.
type markJSON struct {
	Status string         `json:"status"`
	At     time.Time      `json:"at"`
	Reason gateway.Reason `json:"reason,omitempty"`
	Detail string         `json:"detail,omitempty"`
}

func (m markJSON) state() markState {
	if m.Status == StatusReplayed {
		return markState{replayedAt: m.At}
	}
	return markState{lastError: string(m.Reason) + ": " + m.Detail}
}

// Close writes what is queued (a write still failing is given up and
// counted as lost) and closes the store.
func (s *File) Close() error {
	s.qmu.Lock()
	if s.closed {
		s.qmu.Unlock()
		return nil
	}
	s.closed = true
	s.qmu.Unlock()
	close(s.stop)
	<-s.done
	err := errors.Join(s.err, s.closeFiles())
	if s.lockF != nil {
		s.lockF.Close()
	}
	return err
}

func (s *File) closeFiles() error {
	if s.active == nil {
		return nil
	}
	err := s.active.Close()
	s.active = nil
	return err
}

// Stats returns the store's sizes and counters.
func (s *File) Stats() Stats {
	s.qmu.Lock()
	queued := len(s.queue)
	s.qmu.Unlock()
	s.mu.Lock()
	st := Stats{Letters: s.letters, Bytes: s.bytes, Segments: len(s.segs)}
	s.mu.Unlock()
	st.Queued = queued
	st.Dropped, st.DroppedBytes = uint64(s.dropped.Load()), s.droppedBytes.Load()
	st.Corrupt, st.CorruptBytes = uint64(s.corrupt.Load()), s.corruptBytes.Load()
	st.QueueFull, st.Lost, st.WriteErrors = s.queueFull.Load(), s.lost.Load(), s.writeErrors.Load()
	return st
}
