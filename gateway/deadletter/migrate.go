package deadletter

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
)

// migratingSuffix names the directory a migration writes before it
// becomes the store, so a crash mid-way leaves no half store.
const migratingSuffix = ".migrating"

// legacyLine is one line of a store of an earlier version
// (deadletters.jsonl): a letter, or (Mark set) the outcome of a replay of
// letter ID, letters numbered by their position among the letters.
type legacyLine struct {
	Mark string    `json:"mark,omitempty"`
	ID   uint64    `json:"id,omitempty"`
	At   time.Time `json:"at,omitzero"`
	gateway.DeadLetter
}

// maxLegacyLine skips absurd lines instead of holding them in memory.
const maxLegacyLine = 64 << 20

// readLegacy calls fn for each letter (with its id) and mark of the
// JSON-lines file at path. Lines that do not parse (a torn write, damage)
// are skipped and counted; a missing file holds nothing.
func readLegacy(path string, fn func(id uint64, dl *gateway.DeadLetter, m *markJSON) error) (bad int, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("deadletter: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var id uint64
	for {
		b, err := readLine(r)
		if errors.Is(err, io.EOF) && len(b) == 0 {
			return bad, nil
		}
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, errLongLine) {
			return bad, fmt.Errorf("deadletter: read %s: %w", path, err)
		}
		var ln legacyLine
		if errors.Is(err, errLongLine) || json.Unmarshal(b, &ln) != nil {
			bad++
			continue
		}
		if ln.Mark == "" {
			id++
			if err := fn(id, &ln.DeadLetter, nil); err != nil {
				return bad, err
			}
			continue
		}
		m := markJSON{Status: ln.Mark, At: ln.At, Reason: ln.Reason, Detail: ln.Detail}
		if err := fn(ln.ID, nil, &m); err != nil {
			return bad, err
		}
	}
}

var errLongLine = errors.New("line too long")

// readLine reads one line, without its newline; errLongLine (the rest of
// the line consumed) past maxLegacyLine.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > maxLegacyLine {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, err
			}
			return nil, errLongLine
		}
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == nil {
			line = line[:len(line)-1]
		}
		return line, err
	}
}

// migrate moves a store of an earlier version (the JSON-lines file at
// legacy) into this one, keeping every letter's id and replay marks: it
// writes a new store beside this one, then swaps it in and renames the
// old file to legacy+".migrated" (delete it once satisfied). A crash
// mid-way leaves the old file in place, and the next Open starts over.
func (s *File) migrate(legacy string) error {
	if _, err := os.Stat(legacy); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("deadletter: %w", err)
	}
	if s.letters > 0 || len(s.segs) > 0 {
		// Migrated before; the crash came before the old file was renamed.
		return s.retireLegacy(legacy)
	}
	tmp := s.dir + migratingSuffix
	m, err := openStore(tmp, s.opt, false)
	if err != nil {
		return err
	}
	var g group
	flush := func() error {
		if len(g.items) == 0 {
			return nil
		}
		err := m.commit(&g)
		g = group{}
		return err
	}
	n := 0
	bad, err := readLegacy(legacy, func(id uint64, dl *gateway.DeadLetter, mk *markJSON) error {
		it := &item{kind: kindLetter, id: id}
		if dl != nil {
			js, err := json.Marshal(dl)
			if err != nil {
				return err
			}
			if recordSize(js) > m.maxRecord {
				m.lost.Add(1)
				return nil
			}
			it.js, it.meta = js, letterMeta(dl)
			n++
		} else {
			js, err := json.Marshal(mk)
			if err != nil {
				return err
			}
			st := mk.state()
			it.kind, it.js, it.meta, it.mark = kindMark, js, meta{t: mk.At.UnixNano()}, &st
		}
		g.items = append(g.items, it)
		if len(g.items) >= 1024 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if cerr := m.closeFiles(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("deadletter: migrate %s to %s: %w (the old file is untouched; free space in state_dir and restart)", legacy, s.dir, err)
	}
	// Swap the migrated store in for the empty one.
	if err := os.Remove(s.dir); err != nil {
		return fmt.Errorf("deadletter: migrate: %w", err)
	}
	if err := os.Rename(tmp, s.dir); err != nil {
		return fmt.Errorf("deadletter: migrate: %w", err)
	}
	syncDir(filepath.Dir(s.dir))
	fresh, err := openStore(s.dir, s.opt, false)
	if err != nil {
		return err
	}
	s.segs, s.marks, s.nextID, s.lowID, s.bytes, s.letters = fresh.segs, fresh.marks, fresh.nextID, fresh.lowID, fresh.bytes, fresh.letters
	s.dropped.Add(m.dropped.Load())
	s.droppedBytes.Add(m.droppedBytes.Load())
	s.lost.Add(m.lost.Load())
	s.corrupt.Add(int64(bad))
	s.log.Info().Str("from", legacy).Str("to", s.dir).Int("letters", n).Int("damaged_lines", bad).
		Int64("dropped", m.dropped.Load()).Msg("dead letters migrated to the segmented store")
	return s.retireLegacy(legacy)
}

func (s *File) retireLegacy(legacy string) error {
	if err := os.Rename(legacy, legacy+".migrated"); err != nil {
		return fmt.Errorf("deadletter: rename the migrated %s: %w", legacy, err)
	}
	syncDir(filepath.Dir(legacy))
	s.log.Warn().Str("file", legacy+".migrated").Msg("dead letters: the old store is migrated and kept under this name; delete it once satisfied")
	return nil
}
