package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/sensorgate/sensorgate/gateway"
)

// FileName is the dead-letter file's name under the state directory.
const FileName = "deadletters.jsonl"

// File is an append-only JSON-lines dead-letter store. Each Put is one
// line, written and fsynced before Put returns: a dead letter is the only
// copy of a message the broker has been told we took.
type File struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

var _ gateway.DeadLetters = (*File)(nil)

// Open opens (creating if needed) the dead-letter file at path.
func Open(path string) (*File, error) {
	if err := repairTail(path); err != nil {
		return nil, fmt.Errorf("deadletter: repair the torn end of %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("deadletter: open %s: %w (check state_dir exists and is writable)", path, err)
	}
	return &File{f: f, path: path}, nil
}

// Put appends one dead letter durably.
func (s *File) Put(ctx context.Context, dl gateway.DeadLetter) error {
	return s.append(ctx, line{DeadLetter: dl})
}

// append writes one line in one write call and fsyncs it.
func (s *File) append(ctx context.Context, ln line) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := json.Marshal(ln)
	if err != nil {
		return fmt.Errorf("deadletter: encode: %w", err)
	}
	b = append(b, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return errors.New("deadletter: store is closed")
	}
	if _, err := s.f.Write(b); err != nil {
		return fmt.Errorf("deadletter: write %s: %w", s.path, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("deadletter: sync %s: %w", s.path, err)
	}
	return nil
}

// Close closes the file.
func (s *File) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// ReadAll reads every dead letter in the file at path, without replay
// marks. A torn last line (the daemon died mid-write) is skipped; a
// damaged line elsewhere is an error naming its line number.
func ReadAll(path string) ([]gateway.DeadLetter, error) {
	letters, err := List(path, Filter{})
	out := make([]gateway.DeadLetter, len(letters))
	for i, l := range letters {
		out[i] = l.DeadLetter
	}
	return out, err
}
