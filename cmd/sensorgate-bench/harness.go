package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// harness is the testing.TB stand-in that internal/testserver needs, for
// one benchmark run outside `go test`: TempDir hands out directories under
// the run's own directory, Cleanup stacks functions that close runs in
// reverse order (the servers stop by PID), and Fatalf aborts the run by
// panicking with a fatalError that do recovers, so one failed run is
// reported without leaving servers behind.
type harness struct {
	dir      string
	n        int
	cleanups []func()
}

// fatalError carries a Fatalf message through the panic to harness.do.
type fatalError struct{ err error }

func newHarness(dir string) (*harness, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: run directory: %w", err)
	}
	return &harness{dir: dir}, nil
}

// Helper is a no-op: there is no test log to attribute lines in.
func (h *harness) Helper() {}

// Fatalf aborts the run; it must be called on the goroutine running do.
func (h *harness) Fatalf(format string, args ...any) {
	panic(fatalError{fmt.Errorf(format, args...)})
}

// TempDir returns a new directory under the run's directory, removed with
// it.
func (h *harness) TempDir() string {
	h.n++
	d := filepath.Join(h.dir, fmt.Sprintf("tmp%02d", h.n))
	if err := os.MkdirAll(d, 0o755); err != nil {
		h.Fatalf("bench: temp dir: %v", err)
	}
	// Writable by everyone: Mosquitto started as root drops to its own
	// user before it opens its log and persistence files, and the
	// benchmark's broker must really persist, as a deployment's does.
	if err := os.Chmod(d, 0o777); err != nil {
		h.Fatalf("bench: temp dir: %v", err)
	}
	return d
}

// Cleanup registers f to run when the run closes, last registered first.
func (h *harness) Cleanup(f func()) { h.cleanups = append(h.cleanups, f) }

// do runs f and turns a Fatalf inside it into an error; other panics are
// bugs and propagate.
func (h *harness) do(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			fe, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			err = fe.err
		}
	}()
	return f()
}

// close runs the cleanups (stopping the servers) and removes the run's
// directory unless keep is set.
func (h *harness) close(keep bool) error {
	for i := len(h.cleanups) - 1; i >= 0; i-- {
		h.cleanups[i]()
	}
	h.cleanups = nil
	if keep {
		return nil
	}
	if err := os.RemoveAll(h.dir); err != nil {
		return fmt.Errorf("bench: remove %s: %w", h.dir, err)
	}
	return nil
}
