package spool

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// FuzzOpen feeds arbitrary bytes to Open as the only segment file. Open
// must not panic: it either repairs the file (and the spool then reads
// back only checksummed records, takes an append and reopens without
// further repair) or returns an error a person can act on. Seeds are in
// testdata/fuzz/FuzzOpen: a valid segment, torn and corrupted ones, a
// blank one and a foreign file.
func FuzzOpen(f *testing.F) {
	f.Fuzz(func(t *testing.T, seg []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(1)), seg, 0o640); err != nil {
			t.Fatal(err)
		}
		cfg := Config{Dir: dir, SegmentBytes: MinSegmentBytes, MaxBytes: 1 << 20}
		s, err := Open(cfg, zerolog.Nop())
		if err != nil {
			if !strings.HasPrefix(err.Error(), "spool: ") || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open error is not a clear spool error: %v", err)
			}
			return
		}
		recs := drain(t, s, 1000)
		if err := s.Append(context.Background(), []byte("after repair")); err != nil {
			t.Fatalf("Append after repair: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, err = Open(cfg, zerolog.Nop())
		if err != nil {
			t.Fatalf("reopen after repair: %v", err)
		}
		defer s.Close()
		again := drain(t, s, 1000)
		if len(again) != len(recs)+1 || !bytes.Equal(again[len(recs)].Data, []byte("after repair")) {
			t.Fatalf("reopen read %d records, want the %d repaired ones and the new one", len(again), len(recs))
		}
		if st := s.Stats(); st.RepairedBytes != 0 {
			t.Fatalf("second open repaired %d more bytes", st.RepairedBytes)
		}
	})
}
