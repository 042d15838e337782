package deadletter

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
)

// Replay outcomes, as marks in the file and in replay results.
const (
	StatusReplayed = "replayed" // the message became points (or re-sent lines)
	StatusFailed   = "failed"   // it still cannot become points; the letter stays
	StatusSkipped  = "skipped"  // replayed before; replay again with force
)

// Letter is a stored dead letter: its id (its 1-based position among the
// file's letters, stable because the file is append-only) and what its
// replays came to.
type Letter struct {
	ID uint64 `json:"id"`
	gateway.DeadLetter
	// ReplayedAt is when a replay last turned it into points, nil if never.
	ReplayedAt *time.Time `json:"replayed_at,omitempty"`
	// Attempts counts replays; LastError is why the latest failed one
	// failed (cleared by a successful one).
	Attempts  int    `json:"replay_attempts,omitempty"`
	LastError string `json:"last_replay_error,omitempty"`
}

// Filter selects dead letters; zero fields match everything.
type Filter struct {
	Reason gateway.Reason
	Source string
	DevEUI string
	// Since and Until bound the time the letter was dead-lettered
	// (Since inclusive, Until exclusive).
	Since, Until time.Time
	// Replayed, when set, keeps only letters that were (true) or were
	// not (false) replayed successfully.
	Replayed *bool
	// IDs, when given, keeps only those letters.
	IDs []uint64
	// Limit keeps the first Limit matches (0: all).
	Limit int
}

func (f *Filter) match(l *Letter) bool {
	switch {
	case f.Reason != "" && l.Reason != f.Reason,
		f.Source != "" && l.Source != f.Source,
		f.DevEUI != "" && l.DevEUI != f.DevEUI,
		!f.Since.IsZero() && l.Time.Before(f.Since),
		!f.Until.IsZero() && !l.Time.Before(f.Until),
		f.Replayed != nil && *f.Replayed != (l.ReplayedAt != nil):
		return false
	}
	if len(f.IDs) == 0 {
		return true
	}
	for _, id := range f.IDs {
		if id == l.ID {
			return true
		}
	}
	return false
}

// line is one line of the file: a dead letter, or (Mark set) the outcome
// of a replay of letter ID. Marks are appended rather than rewriting the
// letter, so the file stays append-only and every replay is on record.
type line struct {
	Mark string    `json:"mark,omitempty"`
	ID   uint64    `json:"id,omitempty"`
	At   time.Time `json:"at,omitzero"`
	gateway.DeadLetter
}

// List reads the dead letters in the file at path that match f, oldest
// first, with their replay marks applied. A missing file holds none.
func List(path string, f Filter) ([]Letter, error) {
	file, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("deadletter: %w", err)
	}
	defer file.Close()
	var all []Letter
	r := bufio.NewReader(file)
	for n := 1; ; n++ {
		b, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			break // no newline: a torn tail, or nothing
		}
		if err != nil {
			return nil, fmt.Errorf("deadletter: read %s: %w", path, err)
		}
		var ln line
		if err := json.Unmarshal(b, &ln); err != nil {
			return nil, fmt.Errorf("deadletter: %s line %d: %w", path, n, err)
		}
		if ln.Mark == "" {
			all = append(all, Letter{ID: uint64(len(all) + 1), DeadLetter: ln.DeadLetter})
			continue
		}
		if ln.ID == 0 || ln.ID > uint64(len(all)) {
			continue // a mark for a letter this file does not hold
		}
		l := &all[ln.ID-1]
		l.Attempts++
		switch ln.Mark {
		case StatusReplayed:
			at := ln.At
			l.ReplayedAt, l.LastError = &at, ""
		case StatusFailed:
			l.LastError = string(ln.Reason) + ": " + ln.Detail
		}
	}
	out := all[:0]
	for i := range all {
		if f.match(&all[i]) {
			out = append(out, all[i])
			if f.Limit > 0 && len(out) == f.Limit {
				break
			}
		}
	}
	return out, nil
}

// List reads the store's dead letters that match f.
func (s *File) List(f Filter) ([]Letter, error) { return List(s.path, f) }

// Get returns one dead letter by id.
func (s *File) Get(id uint64) (Letter, bool, error) {
	ls, err := List(s.path, Filter{IDs: []uint64{id}})
	if err != nil || len(ls) == 0 {
		return Letter{}, false, err
	}
	return ls[0], true, nil
}

// mark appends the outcome of a replay of letter id.
func (s *File) mark(ctx context.Context, id uint64, status string, at time.Time, reason gateway.Reason, detail string) error {
	return s.append(ctx, line{Mark: status, ID: id, At: at, DeadLetter: gateway.DeadLetter{Reason: reason, Detail: detail}})
}

// repairTail cuts a torn last line (the process died mid-write) off the
// file at path, so that the next line does not continue it. The torn
// letter's Put never returned, so its message was not acknowledged and
// the broker redelivers it: nothing is lost.
func repairTail(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return err
	}
	const chunk = 64 << 10
	end := fi.Size()
	buf := make([]byte, chunk)
	for pos := end; pos > 0; {
		n := int64(chunk)
		if pos < n {
			n = pos
		}
		pos -= n
		if _, err := f.ReadAt(buf[:n], pos); err != nil {
			return err
		}
		for i := n - 1; i >= 0; i-- {
			if buf[i] == '\n' {
				if pos+i+1 == end {
					return nil // whole
				}
				return os.Truncate(path, pos+i+1)
			}
		}
	}
	return os.Truncate(path, 0) // one torn line and nothing else
}
