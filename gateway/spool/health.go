package spool

import (
	"fmt"
	"os"
)

// healthProbeName is the file Health creates and removes in the spool's
// directory; Open ignores it (it is not a segment name).
const healthProbeName = ".health-probe"

// Health reports whether the spool can take records: it has not stopped
// after an I/O error, its last batch was stored, and its directory still
// takes a new file (the next segment goes there). It is cheap enough for
// a readiness probe: one create and one remove, no fsync.
func (s *Spool) Health() error {
	s.mu.Lock()
	closed, failed, last := s.closed, s.failed, s.lastErr
	s.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case failed != nil:
		return failed
	case last != nil:
		return fmt.Errorf("the last batch was not stored: %w", last)
	}
	f, err := os.OpenFile(s.dir+string(os.PathSeparator)+healthProbeName, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool directory %s does not take new files: %w: check that it exists, is writable and its disk has room", s.dir, err)
	}
	f.Close()
	if err := os.Remove(f.Name()); err != nil {
		return fmt.Errorf("spool directory %s: removing %s: %w", s.dir, healthProbeName, err)
	}
	return nil
}
