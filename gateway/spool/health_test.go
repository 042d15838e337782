package spool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHealth: a fresh spool is healthy and its probe leaves no file; one
// whose directory is gone says so (the next segment could not be
// created); a closed one says it is closed.
func TestHealth(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	s, _ := openT(t, Config{Dir: dir})
	if err := s.Append(context.Background(), []byte("rec")); err != nil {
		t.Fatal(err)
	}
	if err := s.Health(); err != nil {
		t.Fatalf("Health = %v, want nil", err)
	}
	if _, err := os.Stat(filepath.Join(dir, healthProbeName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the probe file stayed behind: %v", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := s.Health(); err == nil || !strings.Contains(err.Error(), "does not take new files") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Health = %v, want the directory named as not taking files", err)
	}
	s.Close()
	if err := s.Health(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Health after Close = %v, want ErrClosed", err)
	}
}
