package deadletter

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("deadletter: open %s: %w (check state_dir exists and is writable)", path, err)
	}
	return &File{f: f, path: path}, nil
}

// Put appends one dead letter durably.
func (s *File) Put(ctx context.Context, dl gateway.DeadLetter) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	line, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("deadletter: encode: %w", err)
	}
	line = append(line, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return errors.New("deadletter: store is closed")
	}
	if _, err := s.f.Write(line); err != nil {
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

// ReadAll reads every dead letter in the file at path. A torn last line
// (the daemon died mid-write) is skipped; a damaged line elsewhere is an
// error naming its line number.
func ReadAll(path string) ([]gateway.DeadLetter, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("deadletter: %w", err)
	}
	defer f.Close()
	var out []gateway.DeadLetter
	r := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			// No newline: a torn tail, or nothing.
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("deadletter: read %s: %w", path, err)
		}
		var dl gateway.DeadLetter
		if err := json.Unmarshal(line, &dl); err != nil {
			return out, fmt.Errorf("deadletter: %s line %d: %w", path, n, err)
		}
		out = append(out, dl)
	}
}
