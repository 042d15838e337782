package spool

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// snapshot copies a spool directory's segments and ack file as a crash
// would leave them (the spool stays open), into a new directory.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	to := t.TempDir()
	names, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range names {
		if filepath.Base(p) == lockFileName {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(p)), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// diskBytes is the size of every segment file in dir.
func diskBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, p := range segFiles(t, dir) {
		n += fileSize(t, p)
	}
	return n
}

// TestPreallocation: with fsync=always the active segment is filled with
// zeros ahead of its records. Stats counts them, a crash that leaves them
// costs no repair and no records, and Close and sealing cut them off.
func TestPreallocation(t *testing.T) {
	const n, size = 50, 100
	dataEnd := int64(segHeaderSize + n*(recHeaderSize+size))
	dir := t.TempDir()
	cfg := Config{Dir: dir, SegmentBytes: 4 * preallocStep}
	s, _ := openT(t, cfg)
	appendN(t, s, 1, n, size)
	seg := filepath.Join(dir, segName(1))
	if got := fileSize(t, seg); got != preallocStep {
		t.Fatalf("active segment is %d bytes, want %d (records up to %d, then zeros)", got, preallocStep, dataEnd)
	}
	if st := s.Stats(); st.Bytes != preallocStep {
		t.Fatalf("Stats.Bytes = %d, want the file's %d", st.Bytes, preallocStep)
	}

	t.Run("crash leaves zeros", func(t *testing.T) {
		s2, lb := openT(t, Config{Dir: snapshot(t, dir), SegmentBytes: cfg.SegmentBytes})
		wantRecords(t, drain(t, s2, 1000), 1, n, size, 0)
		if st := s2.Stats(); st.RepairedBytes != 0 || st.Bytes != preallocStep {
			t.Fatalf("after the crash: RepairedBytes %d, Bytes %d; want 0 and %d", st.RepairedBytes, st.Bytes, preallocStep)
		}
		if strings.Contains(lb.String(), "cut off") {
			t.Fatalf("zeros written ahead were reported as damage:\n%s", lb.String())
		}
		// New records go right after the last one, not after the zeros.
		appendN(t, s2, n+1, 1, size)
		wantRecords(t, drain(t, s2, 1000), n+1, n+1, size, 0)
	})

	t.Run("crash leaves zeros and a torn page", func(t *testing.T) {
		crashed := snapshot(t, dir)
		f, err := os.OpenFile(filepath.Join(crashed, segName(1)), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		// A later page of an unsynced write reached the disk, an earlier
		// one did not.
		if _, err := f.WriteAt([]byte("torn"), dataEnd+8192); err != nil {
			t.Fatal(err)
		}
		f.Close()
		s2, lb := openT(t, Config{Dir: crashed, SegmentBytes: cfg.SegmentBytes})
		wantRecords(t, drain(t, s2, 1000), 1, n, size, 0)
		if st := s2.Stats(); st.RepairedBytes != preallocStep-dataEnd {
			t.Fatalf("RepairedBytes = %d, want %d", st.RepairedBytes, preallocStep-dataEnd)
		}
		if !strings.Contains(lb.String(), "cut off a torn or corrupt tail") {
			t.Fatalf("the torn page was not reported:\n%s", lb.String())
		}
	})

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fileSize(t, seg); got != dataEnd {
		t.Fatalf("after Close the segment is %d bytes, want %d (its records)", got, dataEnd)
	}
}

// TestPreallocationSealing: every sealed segment ends with its last
// record, so a crash never leaves zeros where readers take the file's
// size as the end, and Stats.Bytes is what the files hold.
func TestPreallocationSealing(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, SegmentBytes: MinSegmentBytes, MaxBytes: 1 << 20}
	s, _ := openT(t, cfg)
	appendN(t, s, 1, 100, 100)
	segs := segFiles(t, dir)
	if len(segs) < 3 {
		t.Fatalf("%d segments, want ≥ 3", len(segs))
	}
	if got, want := s.Stats().Bytes, diskBytes(t, dir); got != want {
		t.Fatalf("Stats.Bytes = %d, files hold %d", got, want)
	}
	if active := fileSize(t, segs[len(segs)-1]); active != MinSegmentBytes {
		t.Fatalf("active segment is %d bytes, want it filled ahead to %d", active, MinSegmentBytes)
	}
	for _, p := range segs[:len(segs)-1] {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) >= MinSegmentBytes || allZero(b[len(b)-recHeaderSize:]) {
			t.Fatalf("sealed %s is %d bytes ending in zeros: not cut to its records", filepath.Base(p), len(b))
		}
	}
	s2, lb := openT(t, Config{Dir: snapshot(t, dir), SegmentBytes: MinSegmentBytes, MaxBytes: 1 << 20})
	wantRecords(t, drain(t, s2, 1000), 1, 100, 100, 0)
	if st := s2.Stats(); st.CorruptRecords != 0 || st.RepairedBytes != 0 {
		t.Fatalf("after a crash: %d corrupt records, %d bytes repaired:\n%s", st.CorruptRecords, st.RepairedBytes, lb.String())
	}
}

// TestNoPreallocationWithInterval: with an fsync interval there are too
// few syncs to gain from it, and no bytes are written twice.
func TestNoPreallocationWithInterval(t *testing.T) {
	dir := t.TempDir()
	s, _ := openT(t, Config{Dir: dir, Fsync: "1s"})
	appendN(t, s, 1, 10, 100)
	want := int64(segHeaderSize + 10*(recHeaderSize+100))
	if got := fileSize(t, filepath.Join(dir, segName(1))); got != want {
		t.Fatalf("segment is %d bytes, want %d", got, want)
	}
}

// TestPreallocationDiskFull: when the zeros do not fit on the disk, the
// records still go in, without them, and the filling resumes once there
// is room.
func TestPreallocationDiskFull(t *testing.T) {
	const size = 100
	dir := t.TempDir()
	s, _ := openT(t, Config{Dir: dir, SegmentBytes: 4 * preallocStep})
	var full atomic.Bool
	full.Store(true)
	s.testHookWrite = func(f *os.File, p []byte, off int64) (int, error) {
		if full.Load() && len(p) > 4096 && allZero(p) {
			return 0, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
		}
		return 0, nil
	}
	appendN(t, s, 1, 10, size)
	seg := filepath.Join(dir, segName(1))
	dataEnd := int64(segHeaderSize + 10*(recHeaderSize+size))
	if got := fileSize(t, seg); got != dataEnd {
		t.Fatalf("segment is %d bytes on a full disk, want its %d bytes of records", got, dataEnd)
	}
	if got := s.Stats().Bytes; got != dataEnd {
		t.Fatalf("Stats.Bytes = %d, want %d", got, dataEnd)
	}
	full.Store(false)
	appendN(t, s, 11, 10, size)
	if got := fileSize(t, seg); got != preallocStep {
		t.Fatalf("segment is %d bytes with room again, want %d", got, preallocStep)
	}
	wantRecords(t, drain(t, s, 100), 1, 20, size, 0)
}

// TestPreallocationRandom: over random record sizes, segment sizes,
// concurrent appends, acks and drops at max_bytes, the spool's byte count
// is what its files hold and stays under max_bytes, and a crash at any
// of the checkpoints leaves exactly the records the running spool still
// had, with nothing repaired or lost to corruption.
func TestPreallocationRandom(t *testing.T) {
	// Segments smaller than the step (filled to their end), a little
	// larger, and several steps long.
	for i, segBase := range []int64{MinSegmentBytes, 300 << 10, preallocStep + 100<<10, 5 * preallocStep / 2} {
		seed := uint64(i + 1)
		t.Run(fmt.Sprint("segment ", segBase), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			dir := t.TempDir()
			seg := segBase + rng.Int64N(4096)
			cfg := Config{Dir: dir, SegmentBytes: seg, MaxBytes: 4 * seg}
			s, _ := openT(t, cfg)
			unacked := map[Position][]byte{}
			for round := range 8 {
				var wg sync.WaitGroup
				for w := range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						r := rand.New(rand.NewPCG(seed, uint64(round*8+w)))
						for range 60 {
							if err := s.Append(context.Background(), payload(r.IntN(1e6), 1+r.IntN(min(6000, int(seg)/2)))); err != nil {
								t.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				st := s.Stats()
				if disk := diskBytes(t, dir); st.Bytes != disk || st.Bytes > cfg.MaxBytes {
					t.Fatalf("round %d: Stats.Bytes %d, files %d, max_bytes %d", round, st.Bytes, disk, cfg.MaxBytes)
				}
				crashed, _ := openT(t, Config{Dir: snapshot(t, dir), SegmentBytes: seg, MaxBytes: cfg.MaxBytes})
				got, want := drain(t, crashed, 1000), drain(t, s, 1000)
				// After the crash delivery starts again at the ack: first
				// the records read before and not acked (unless max_bytes
				// dropped them since), then what the running spool reads.
				if len(got) < len(want) {
					t.Fatalf("round %d: %d records after a crash, the running spool has %d new ones", round, len(got), len(want))
				}
				again := got[:len(got)-len(want)]
				for _, r := range again {
					if d, ok := unacked[r.Pos]; !ok || !bytes.Equal(r.Data, d) {
						t.Fatalf("round %d: after a crash, record %d is not one read and left unacked", round, r.Pos)
					}
				}
				for i, r := range got[len(again):] {
					if r.Pos != want[i].Pos || !bytes.Equal(r.Data, want[i].Data) {
						t.Fatalf("round %d: record %d differs after a crash: position %d, want %d", round, i, r.Pos, want[i].Pos)
					}
				}
				if cst := crashed.Stats(); cst.RepairedBytes != 0 || cst.CorruptRecords != 0 {
					t.Fatalf("round %d: the crash copy repaired %d bytes and lost %d records to corruption", round, cst.RepairedBytes, cst.CorruptRecords)
				}
				crashed.Close()
				t.Logf("round %d: %d segments, %d records dropped, %d bytes", round, st.Segments, st.DroppedRecords, st.Bytes)
				// Deliver part of what was read; the rest comes back after
				// a crash.
				for _, r := range want {
					unacked[r.Pos] = r.Data
				}
				if len(want) > 0 {
					upTo := want[rng.IntN(len(want))].Pos
					if err := s.Ack(upTo); err != nil {
						t.Fatal(err)
					}
					for p := range unacked {
						if p <= upTo {
							delete(unacked, p)
						}
					}
				}
			}
		})
	}
}
