package spool

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// tornFixture is a closed spool with n records in one segment, and the
// byte range of its last record.
type tornFixture struct {
	seg        []byte // the segment file's bytes
	start, end int    // last record's offsets
	n, size    int
}

func newTornFixture(t *testing.T) tornFixture {
	t.Helper()
	dir := t.TempDir()
	const n, size = 5, 40
	s, err := Open(Config{Dir: dir}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 1, n, size)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	seg, err := os.ReadFile(filepath.Join(dir, segName(1)))
	if err != nil {
		t.Fatal(err)
	}
	end := len(seg)
	return tornFixture{seg: seg, start: end - recHeaderSize - size, end: end, n: n, size: size}
}

// reopenWith opens a fresh spool directory whose only segment is seg.
func reopenWith(t *testing.T, seg []byte) (*Spool, *logBuf, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, segName(1)), seg, 0o640); err != nil {
		t.Fatal(err)
	}
	s, lb := openT(t, Config{Dir: dir})
	return s, lb, dir
}

func TestTornTailEveryOffset(t *testing.T) {
	fx := newTornFixture(t)
	for cut := fx.start + 1; cut < fx.end; cut++ {
		s, lb, dir := reopenWith(t, fx.seg[:cut])
		wantRecords(t, drain(t, s, 100), 1, fx.n-1, fx.size, 0)
		if st := s.Stats(); st.RepairedBytes != int64(cut-fx.start) {
			t.Fatalf("cut at %d: RepairedBytes = %d, want %d", cut, st.RepairedBytes, cut-fx.start)
		}
		if !strings.Contains(lb.String(), "cut off a torn or corrupt tail") {
			t.Fatalf("cut at %d: repair not logged:\n%s", cut, lb.String())
		}
		// The repaired spool takes appends, and reopens without repair.
		appendN(t, s, fx.n, 1, fx.size)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, _ = openT(t, Config{Dir: dir})
		wantRecords(t, drain(t, s, 100), 1, fx.n, fx.size, 0)
		if st := s.Stats(); st.RepairedBytes != 0 {
			t.Fatalf("cut at %d: second open repaired %d bytes", cut, st.RepairedBytes)
		}
		s.Close()
	}
}

func TestCorruptTailEveryByte(t *testing.T) {
	fx := newTornFixture(t)
	for pos := fx.start; pos < fx.end; pos++ {
		seg := bytes.Clone(fx.seg)
		seg[pos] ^= 0x5a
		s, lb, _ := reopenWith(t, seg)
		wantRecords(t, drain(t, s, 100), 1, fx.n-1, fx.size, 0)
		if st := s.Stats(); st.RepairedBytes != int64(fx.end-fx.start) {
			t.Fatalf("flip at %d: RepairedBytes = %d, want %d", pos, st.RepairedBytes, fx.end-fx.start)
		}
		if !strings.Contains(lb.String(), "cut off a torn or corrupt tail") {
			t.Fatalf("flip at %d: repair not logged", pos)
		}
		s.Close()
	}
}

func TestHalfCreatedTailIsReset(t *testing.T) {
	for _, tail := range [][]byte{nil, []byte("SGSP"), make([]byte, segHeaderSize), make([]byte, 3*segHeaderSize)} {
		dir := t.TempDir()
		s, _ := openT(t, Config{Dir: dir})
		appendN(t, s, 1, 3, 20)
		s.Close()
		// A power cut right after the next segment was created.
		if err := os.WriteFile(filepath.Join(dir, segName(4)), tail, 0o640); err != nil {
			t.Fatal(err)
		}
		s, lb := openT(t, Config{Dir: dir})
		if !strings.Contains(lb.String(), "was being created") {
			t.Fatalf("tail %q: reset not logged:\n%s", tail, lb.String())
		}
		appendN(t, s, 4, 2, 20)
		wantRecords(t, drain(t, s, 100), 1, 5, 20, 0)
		s.Close()
	}
}

// threeSegments writes records of 100 bytes into several small segments
// and returns the directory, closed.
func threeSegments(t *testing.T) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir, SegmentBytes: MinSegmentBytes, MaxBytes: 1 << 20}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 1, 100, 100)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segFiles(t, dir)
	if len(segs) < 3 {
		t.Fatalf("%d segments, want ≥ 3", len(segs))
	}
	return dir, segs
}

func TestDamagedSealedSegmentIsSkipped(t *testing.T) {
	dir, segs := threeSegments(t)
	// Damage record 3 of the first segment.
	f, err := os.OpenFile(segs[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff}, segHeaderSize+2*(recHeaderSize+100)+50); err != nil {
		t.Fatal(err)
	}
	f.Close()
	second, _ := parseSegName(filepath.Base(segs[1]))
	s, lb := openT(t, Config{Dir: dir, SegmentBytes: MinSegmentBytes, MaxBytes: 1 << 20})
	recs := drain(t, s, 1000)
	wantRecords(t, recs[:2], 1, 2, 100, 0)
	wantRecords(t, recs[2:], int(second), 100, 100, 0)
	if st := s.Stats(); st.CorruptRecords != second-3 {
		t.Fatalf("CorruptRecords = %d, want %d", st.CorruptRecords, second-3)
	}
	if !strings.Contains(lb.String(), "damaged record in a sealed segment") {
		t.Fatalf("skip not logged:\n%s", lb.String())
	}
}

func TestBadSealedHeaderIsAnError(t *testing.T) {
	dir, segs := threeSegments(t)
	if err := os.WriteFile(segs[1], []byte("not a spool segment at all"), 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Config{Dir: dir, SegmentBytes: MinSegmentBytes, MaxBytes: 1 << 20}, zerolog.Nop())
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "move it out of") {
		t.Fatalf("Open with a foreign sealed segment = %v", err)
	}
}

func TestAckAheadOfDataIsReset(t *testing.T) {
	dir := t.TempDir()
	s, _ := openT(t, Config{Dir: dir})
	appendN(t, s, 1, 10, 20)
	s.Close()
	// An ack file from data that is gone (a power cut in interval mode
	// lost the tail, or someone removed segments).
	var slot [ackSlotSize]byte
	putAckSlot(slot[:], 1000)
	if err := os.WriteFile(filepath.Join(dir, ackFileName), slot[:], 0o640); err != nil {
		t.Fatal(err)
	}
	s, lb := openT(t, Config{Dir: dir})
	if !strings.Contains(lb.String(), "ack position is past the last record") {
		t.Fatalf("reset not logged:\n%s", lb.String())
	}
	appendN(t, s, 11, 1, 20)
	wantRecords(t, drain(t, s, 100), 11, 11, 20, 0)
}
