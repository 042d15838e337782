package devices

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The shared-health journal. An instance acknowledges an uplink to the
// broker once the pipeline took it, and its frame counter reaches the
// shared tables only at the next sync: an instance killed in between
// would take the frame with it, and every instance would report it lost.
// So a shared Health appends each frame it observes (DevEUI, time,
// counter: 24 bytes, one write(2), no fsync) to a journal under
// state_dir before the uplink is acknowledged, and a restarted instance
// replays it. Killing the process cannot lose a completed write; a power
// cut can lose the page cache's last seconds, as it can the health saved
// on a single instance. Each sync starts a new journal file and deletes
// the older ones once written; replaying a frame twice is harmless, since
// the shared sets are unions.

const (
	journalRecord = 24 // EUI 8, unix ms 8, FCnt 4, CRC-32C of the 20 before 4
	journalPrefix = "health-journal-"
	// journalMaxFiles bounds the files a long PostgreSQL outage leaves:
	// past it the oldest is deleted (its frames stay in memory and are
	// written by the next sync that succeeds, unless the process dies).
	journalMaxFiles = 64
)

var journalTable = crc32.MakeTable(crc32.Castagnoli)

// healthJournal appends observed frames to numbered files in dir.
type healthJournal struct {
	dir string

	mu    sync.Mutex
	f     *os.File
	gen   uint64
	older []uint64 // files before gen, oldest first
	err   error    // the last write error, reported by the next sync
}

func journalName(dir string, gen uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%s%016d", journalPrefix, gen))
}

// journalFiles lists dir's journal generations, oldest first.
func journalFiles(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var gens []uint64
	for _, e := range entries {
		if g, err := strconv.ParseUint(strings.TrimPrefix(e.Name(), journalPrefix), 10, 64); err == nil && strings.HasPrefix(e.Name(), journalPrefix) {
			gens = append(gens, g)
		}
	}
	sort.Slice(gens, func(i, j int) bool { return gens[i] < gens[j] })
	return gens, nil
}

// append writes one frame; a failure is kept for the next sync to report
// (the frame stays in memory either way).
func (j *healthJournal) append(e EUI, t time.Time, fcnt uint32) {
	var b [journalRecord]byte
	copy(b[:8], e[:])
	binary.LittleEndian.PutUint64(b[8:], uint64(t.UnixMilli()))
	binary.LittleEndian.PutUint32(b[16:], fcnt)
	binary.LittleEndian.PutUint32(b[20:], crc32.Checksum(b[:20], journalTable))
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return
	}
	if _, err := j.f.Write(b[:]); err != nil {
		j.err = err
	}
}

// rotate starts a new file; what the older ones hold is in memory by now.
func (j *healthJournal) rotate() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	f, err := os.OpenFile(journalName(j.dir, j.gen+1), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("devices: health journal: %w (check state_dir is writable)", err)
	}
	if j.f != nil {
		j.f.Close()
		j.older = append(j.older, j.gen)
	}
	j.f, j.gen = f, j.gen+1
	for len(j.older) > journalMaxFiles {
		os.Remove(journalName(j.dir, j.older[0]))
		j.older = j.older[1:]
	}
	err, j.err = j.err, nil
	return err
}

// written deletes the files before the current one: a sync wrote every
// frame they hold.
func (j *healthJournal) written(upTo uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	keep := j.older[:0]
	for _, g := range j.older {
		if g < upTo {
			os.Remove(journalName(j.dir, g))
		} else {
			keep = append(keep, g)
		}
	}
	j.older = keep
}

func (j *healthJournal) close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
}

// JournalHealth makes a shared h journal the frames it observes in dir
// (created if missing), after replaying what an earlier run left there:
// the frames a killed instance had taken but not yet written to the
// shared tables. It returns how many frames it replayed. Call it after
// Share and before the first Observe.
func (h *Health) JournalHealth(dir string) (int, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, fmt.Errorf("devices: health journal: %w (check state_dir is writable)", err)
	}
	gens, err := journalFiles(dir)
	if err != nil {
		return 0, fmt.Errorf("devices: health journal: %w", err)
	}
	n := 0
	for _, g := range gens {
		m, err := h.replayJournal(journalName(dir, g))
		n += m
		if err != nil {
			return n, err
		}
	}
	j := &healthJournal{dir: dir, older: gens}
	if len(gens) > 0 {
		j.gen = gens[len(gens)-1]
	}
	if err := j.rotate(); err != nil {
		return n, err
	}
	h.mu.Lock()
	h.journal = j
	h.mu.Unlock()
	return n, nil
}

// replayJournal observes one file's frames; a damaged or torn record
// (a power cut) ends the file.
func (h *Health) replayJournal(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("devices: health journal: %w", err)
	}
	defer f.Close()
	var b [journalRecord]byte
	n := 0
	for {
		if _, err := io.ReadFull(f, b[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return n, nil
			}
			return n, fmt.Errorf("devices: health journal %s: %w", path, err)
		}
		if binary.LittleEndian.Uint32(b[20:]) != crc32.Checksum(b[:20], journalTable) {
			return n, nil
		}
		var e EUI
		copy(e[:], b[:8])
		o := Observation{EUI: e, Time: time.UnixMilli(int64(binary.LittleEndian.Uint64(b[8:]))), FCnt: binary.LittleEndian.Uint32(b[16:]), HasFCnt: true}
		if h.registered != nil {
			o.Unknown = !h.registered(e)
		}
		h.Observe(o)
		n++
	}
}
