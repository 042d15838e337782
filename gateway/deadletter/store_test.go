package deadletter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
)

// faultDisk hands out segment files that fail like a full disk: once
// budget bytes are spent, a write stores what fits and fails with ENOSPC.
type faultDisk struct {
	mu            sync.Mutex
	budget        int64 // < 0: unlimited
	truncateFails bool  // cutting a fragment off fails too
}

func (d *faultDisk) set(budget int64) {
	d.mu.Lock()
	d.budget = budget
	d.mu.Unlock()
}

func (d *faultDisk) open(path string) (segFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: f, d: d}, nil
}

type faultFile struct {
	*os.File
	d *faultDisk
}

func (f *faultFile) Write(p []byte) (int, error) {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	if f.d.budget < 0 {
		return f.File.Write(p)
	}
	if int64(len(p)) <= f.d.budget {
		f.d.budget -= int64(len(p))
		return f.File.Write(p)
	}
	n, err := f.File.Write(p[:f.d.budget])
	f.d.budget = 0
	if err != nil {
		return n, err
	}
	return n, syscall.ENOSPC
}

// Sync skips the fsync: these tests cut writes short, not power, and
// run hundreds of stores.
func (f *faultFile) Sync() error { return nil }

func (f *faultFile) Truncate(size int64) error {
	f.d.mu.Lock()
	fails := f.d.truncateFails
	f.d.mu.Unlock()
	if fails {
		return syscall.EIO
	}
	return f.File.Truncate(size)
}

func letter(source string, n int) gateway.DeadLetter {
	return gateway.DeadLetter{Time: t0.Add(time.Duration(n) * time.Second), Source: source, Reason: gateway.ReasonRejected,
		Detail: "refused", Raw: []byte(fmt.Sprintf("m,src=%s f=%di 1\n", source, n))}
}

func mustOpen(t testing.TB, path string, opt Options) *File {
	t.Helper()
	s, err := Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func put(t testing.TB, s *File, dls ...gateway.DeadLetter) {
	t.Helper()
	for _, dl := range dls {
		if err := s.Put(context.Background(), dl); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func sources(t testing.TB, s *File, f Filter) []string {
	t.Helper()
	ls, err := s.List(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		out = append(out, fmt.Sprintf("%d:%s", l.ID, l.Source))
	}
	return out
}

func TestPutListReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s := mustOpen(t, path, Options{})
	want := []gateway.DeadLetter{
		{Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Source: "cs", Topic: "a/b", Reason: gateway.ReasonMalformed, Detail: "bad json", Raw: []byte("{nope")},
		{Time: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC), Source: "tts", DevEUI: "0101010101010101", Reason: gateway.ReasonDecode, Detail: "truncated", Raw: []byte{0, 1, 2, 0xff, 0xff, 'D', 'L', '1'}},
	}
	put(t, s, want...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadAll(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	s = mustOpen(t, path, Options{})
	put(t, s, letter("third", 3))
	if got := fmt.Sprint(sources(t, s, Filter{})); got != "[1:cs 2:tts 3:third]" {
		t.Fatalf("after reopen: %s", got)
	}
}

func TestSecondOpenRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s := mustOpen(t, path, Options{})
	if s2, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "in use by another sensorgate process") {
		if s2 != nil {
			s2.Close()
		}
		t.Fatalf("a second Open of a store in use: %v", err)
	}
	s.Close()
	s = mustOpen(t, path, Options{}) // released by Close
	s.Close()
}

// TestGetAcrossMarkOnlySegments: a segment holding only replay marks
// (a replay after the active segment filled up) does not hide the
// letters around it from a lookup by id.
func TestGetAcrossMarkOnlySegments(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, filepath.Join(t.TempDir(), FileName), Options{Config: Config{MaxBytes: 16 << 20}})
	// Letters that each fill a segment but for 60 bytes, too few for a
	// mark.
	big := letter("a", 0)
	js, _ := json.Marshal(big)
	big.Raw = make([]byte, (s.segBytes-60-recordSize(js))/4*3)
	put(t, s, big, big, big)
	for id := uint64(1); id <= 3; id++ {
		if err := s.mark(ctx, id, StatusFailed, t0, gateway.ReasonDecode, "still"); err != nil {
			t.Fatal(err)
		}
	}
	put(t, s, big, big, letter("b", 1))
	if st := s.Stats(); st.Segments != 7 || st.Dropped != 0 {
		t.Fatalf("want a segment of marks between letters: %+v", st)
	}
	for id := uint64(1); id <= 6; id++ {
		l, ok, err := s.Get(ctx, id)
		if err != nil || !ok || l.ID != id || id <= 3 && l.Attempts != 1 {
			t.Fatalf("Get(%d): %+v %v %v", id, l.ID, ok, err)
		}
	}
	if got := fmt.Sprint(sources(t, s, Filter{IDs: []uint64{6, 1, 4}})); got != "[1:a 4:a 6:b]" {
		t.Fatalf("by ids: %s", got)
	}
}

func TestPutAfterCloseFails(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), FileName), Options{})
	s.Close()
	if err := s.Put(context.Background(), gateway.DeadLetter{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put on a closed store: %v; the message would be lost silently", err)
	}
}

// TestENOSPCAtEveryOffset fails the write of a letter at every byte
// offset of its record, with and without the fragment being cut off
// again, frees the space, and checks that the store carries on: every
// letter before and after is listed and replayed, also after a restart.
func TestENOSPCAtEveryOffset(t *testing.T) {
	ctx := context.Background()
	victim := letter("victim", 2)
	js, _ := json.Marshal(victim)
	size := recordSize(js)
	for _, truncateFails := range []bool{false, true} {
		for off := int64(0); off < size; off++ {
			name := fmt.Sprintf("truncate fails %v, offset %d", truncateFails, off)
			path := filepath.Join(t.TempDir(), FileName)
			disk := &faultDisk{budget: -1, truncateFails: truncateFails}
			s, err := Open(path, Options{openSeg: disk.open, retry: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			put(t, s, letter("a", 0), letter("b", 1))
			disk.set(off)
			if err := s.Put(ctx, victim); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			// A listing during the outage answers with what is on disk.
			if got := fmt.Sprint(sources(t, s, Filter{})); got != "[1:a 2:b]" {
				t.Fatalf("%s: listed during the outage: %s", name, got)
			}
			disk.set(-1) // space freed
			put(t, s, letter("c", 3))
			want := "[1:a 2:b 3:victim 4:c]"
			if got := fmt.Sprint(sources(t, s, Filter{})); got != want {
				t.Fatalf("%s: %s, want %s", name, got, want)
			}
			if st := s.Stats(); st.WriteErrors == 0 || st.Letters != 4 || st.Lost != 0 {
				t.Fatalf("%s: stats %+v", name, st)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, path, Options{openSeg: (&faultDisk{budget: -1}).open})
			if got := fmt.Sprint(sources(t, s, Filter{})); got != want {
				t.Fatalf("%s: after restart %s, want %s", name, got, want)
			}
			wantCorrupt := uint64(0)
			if truncateFails && off > 0 {
				wantCorrupt = 1 // the fragment stays, skipped
			}
			if st := s.Stats(); st.Corrupt != wantCorrupt {
				t.Fatalf("%s: %d damaged records counted at open, want %d", name, st.Corrupt, wantCorrupt)
			}
			var sent []string
			r := &Replayer{Store: s, Resend: func(_ context.Context, b []byte) error { sent = append(sent, string(b)); return nil }}
			res, err := r.Replay(ctx, Filter{}, false)
			if err != nil || len(res) != 4 || len(sent) != 4 {
				t.Fatalf("%s: replay %+v %v", name, res, err)
			}
			if replayed := true; fmt.Sprint(sources(t, s, Filter{Replayed: &replayed})) != want {
				t.Fatalf("%s: not every letter is marked replayed", name)
			}
			s.Close()
		}
	}
}

// seg1 is the path of a store's first segment.
func seg1(t *testing.T, path string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(path, "*"+segSuffix))
	if len(m) == 0 {
		t.Fatal("no segment")
	}
	return m[0]
}

func TestDamageAnywhereIsSkippedAndCounted(t *testing.T) {
	frame := func(dl gateway.DeadLetter, id uint64) []byte {
		js, _ := json.Marshal(dl)
		return appendRecord(nil, kindLetter, id, letterMeta(&dl), js)
	}
	a, b, c := frame(letter("a", 0), 1), frame(letter("b", 1), 2), frame(letter("c", 2), 3)
	flip := func(r []byte, i int) []byte { r = bytes.Clone(r); r[i] ^= 0x40; return r }
	tests := []struct {
		name    string
		file    []byte
		want    string
		corrupt uint64
	}{
		{"whole", cat(a, b, c), "[1:a 2:b 3:c]", 0},
		{"fragment then the next letter appended onto it", cat(a, b[:len(b)/2], c), "[1:a 3:c]", 1},
		{"fragment with whole header", cat(a, b[:recHeaderSize+3], c), "[1:a 3:c]", 1},
		{"flipped body byte", cat(a, flip(b, len(b)-2), c), "[1:a 3:c]", 1},
		{"flipped length", cat(a, flip(b, 5), c), "[1:a 3:c]", 1},
		{"flipped magic", cat(a, flip(b, 1), c), "[1:a 3:c]", 1},
		{"garbage first", cat([]byte("not a record at all"), a, b, c), "[1:a 2:b 3:c]", 1},
		{"zeros between", cat(a, make([]byte, 4096), b, c), "[1:a 2:b 3:c]", 1},
		{"two damaged runs", cat(a, b[:9], flip(c, 30)), "[1:a]", 1},
		{"damage then whole", cat(flip(a, 20), b, flip(c, 3)), "[2:b]", 2},
		{"torn end", cat(a, b, c[:len(c)-1]), "[1:a 2:b]", 1},
		{"only garbage", []byte{0xff, 'D', 'L', '1', 0, 0, 0, 0}, "[]", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			if err := os.MkdirAll(path, 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(path, segName(1)), tc.file, 0o640); err != nil {
				t.Fatal(err)
			}
			s := mustOpen(t, path, Options{})
			if got := fmt.Sprint(sources(t, s, Filter{})); got != tc.want {
				t.Fatalf("listed %s, want %s", got, tc.want)
			}
			if st := s.Stats(); st.Corrupt != tc.corrupt {
				t.Fatalf("%d damaged records counted, want %d", st.Corrupt, tc.corrupt)
			}
			put(t, s, letter("new", 9))
			ls, _ := s.List(context.Background(), Filter{Newest: true, Limit: 1})
			if len(ls) != 1 || ls[0].Source != "new" {
				t.Fatalf("the new letter is not listed: %+v", ls)
			}
			s.Close()
			s = mustOpen(t, path, Options{})
			if n := len(sources(t, s, Filter{})); n != len(sources(t, s, Filter{Limit: 0})) || s.Stats().Letters != uint64(n) {
				t.Fatalf("reopen: %d letters listed, %d counted", n, s.Stats().Letters)
			}
		})
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestOpenCutsTornEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s := mustOpen(t, path, Options{})
	put(t, s, letter("a", 0), letter("b", 1))
	s.Close()
	seg := seg1(t, path)
	torn := letter("torn", 2)
	js, _ := json.Marshal(torn)
	rec := appendRecord(nil, kindLetter, 3, letterMeta(&torn), js)
	f, _ := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(rec[:len(rec)-5]) // kill -9 mid-write
	f.Close()
	fi, _ := os.Stat(seg)
	s = mustOpen(t, path, Options{})
	if st := s.Stats(); st.Corrupt != 1 || st.Bytes != fi.Size()-int64(len(rec)-5) {
		t.Fatalf("open: %+v (file %d bytes)", st, fi.Size())
	}
	put(t, s, letter("c", 3))
	s.Close()
	s = mustOpen(t, path, Options{})
	if got := fmt.Sprint(sources(t, s, Filter{})); got != "[1:a 2:b 3:c]" || s.Stats().Corrupt != 0 {
		t.Fatalf("after repair: %s, %+v", got, s.Stats())
	}
}

// diskBytes sums the sizes of the store's files.
func diskBytes(t *testing.T, path string) int64 {
	t.Helper()
	var n int64
	es, _ := os.ReadDir(path)
	for _, e := range es {
		fi, _ := e.Info()
		n += fi.Size()
	}
	return n
}

func TestMaxBytesDropsOldest(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s := mustOpen(t, path, Options{Config: Config{MaxBytes: MinMaxBytes}})
	big := letter("x", 0)
	big.Raw = bytes.Repeat([]byte{0xAB}, 10<<10)
	const n = 400 // about 5.5 MB
	for i := range n {
		big.Time = t0.Add(time.Duration(i) * time.Second)
		put(t, s, big)
		if d := diskBytes(t, path); d > MinMaxBytes {
			t.Fatalf("after letter %d: %d bytes on disk, over max_bytes", i+1, d)
		}
	}
	st := s.Stats()
	if st.Dropped == 0 || st.Letters+st.Dropped != n || st.Bytes > MinMaxBytes {
		t.Fatalf("stats %+v", st)
	}
	ls, err := s.List(context.Background(), Filter{})
	if err != nil || uint64(len(ls)) != st.Letters || ls[0].ID != st.Dropped+1 || ls[len(ls)-1].ID != n {
		t.Fatalf("listed %d letters from %d, stats %+v, %v", len(ls), ls[0].ID, st, err)
	}
	s.Close()
	s = mustOpen(t, path, Options{Config: Config{MaxBytes: MinMaxBytes}})
	put(t, s, letter("after", 1))
	if ls, _ := s.List(context.Background(), Filter{Newest: true, Limit: 1}); ls[0].ID != n+1 {
		t.Fatalf("ids restarted after dropping: %d", ls[0].ID)
	}
	s.Close()
	// max_bytes raised, filled, and lowered again: the store shrinks at
	// start, not at the next letter.
	s = mustOpen(t, path, Options{Config: Config{MaxBytes: 2 * MinMaxBytes}})
	for range 100 {
		put(t, s, big)
	}
	if st := s.Stats(); st.Bytes <= MinMaxBytes {
		t.Fatalf("not filled past the lower max_bytes: %+v", st)
	}
	s.Close()
	s = mustOpen(t, path, Options{Config: Config{MaxBytes: MinMaxBytes}})
	if st := s.Stats(); st.Bytes > MinMaxBytes || diskBytes(t, path) > MinMaxBytes || st.Dropped == 0 {
		t.Fatalf("after lowering max_bytes: %+v, %d bytes on disk", st, diskBytes(t, path))
	}
}

func TestTooLargeIsCountedNotQueued(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), FileName), Options{Config: Config{MaxBytes: MinMaxBytes}})
	huge := letter("huge", 0)
	huge.Raw = make([]byte, MinMaxBytes/4)
	if err := s.Put(context.Background(), huge); err != nil {
		t.Fatal(err)
	}
	put(t, s, letter("small", 1))
	if st := s.Stats(); st.Lost != 1 || st.Letters != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestQueueFull: while the disk refuses writes, Put keeps returning at
// once; past the queue's bound it refuses (counted) instead of growing.
func TestQueueFull(t *testing.T) {
	ctx := context.Background()
	disk := &faultDisk{budget: 0}
	s := mustOpen(t, filepath.Join(t.TempDir(), FileName), Options{QueueLetters: 8, openSeg: disk.open, retry: time.Millisecond})
	accepted := 0
	for i := range 100 {
		err := s.Put(ctx, letter("flood", i))
		if errors.Is(err, ErrQueueFull) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		accepted++
	}
	// One group may be with the writer, the rest wait in the queue.
	if accepted > 8+8 || s.Stats().QueueFull != uint64(100-accepted) {
		t.Fatalf("accepted %d, stats %+v", accepted, s.Stats())
	}
	disk.set(-1)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Letters != uint64(accepted) {
		t.Fatalf("%d of %d accepted letters written", st.Letters, accepted)
	}
}

// TestCloseGivesUpCounted: letters still failing to write at Close are
// counted as lost and Close says so.
func TestCloseGivesUpCounted(t *testing.T) {
	disk := &faultDisk{budget: 0}
	s, err := Open(filepath.Join(t.TempDir(), FileName), Options{openSeg: disk.open, retry: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.Put(context.Background(), letter("x", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err == nil || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Close: %v", err)
	}
	if st := s.Stats(); st.Lost != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// TestListReadsLittle: a listing with a limit reads about what it
// returns, not the store.
func TestListReadsLittle(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	s := mustOpen(t, path, Options{Config: Config{MaxBytes: 64 << 20}})
	dl := letter("x", 0)
	dl.Raw = bytes.Repeat([]byte("payload "), 128)
	for i := 0; i < 12000; { // about 18 MB in several segments
		dl.Time = t0.Add(time.Duration(i) * time.Second)
		if i == 6000 {
			dl.Reason = gateway.ReasonDecode
		}
		dl.DevEUI = ""
		if i == 3333 {
			dl.DevEUI = "0a0a0a0a0a0a0a0a"
		}
		err := s.Put(ctx, dl)
		if errors.Is(err, ErrQueueFull) {
			s.Flush(ctx)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		i++
	}
	s.Flush(ctx)
	if st := s.Stats(); st.Segments < 3 || st.Letters != 12000 {
		t.Fatalf("stats %+v", st)
	}
	// What the 50 letters take (about 75 KB) and the index chunks they
	// straddle, not the 18 MB.
	const bound = 4 * indexEvery
	tests := []struct {
		name  string
		f     Filter
		first uint64
	}{
		{"oldest", Filter{Limit: 50}, 1},
		{"newest", Filter{Newest: true, Limit: 50}, 12000},
		{"since", Filter{Since: t0.Add(9000 * time.Second), Limit: 50}, 9001},
		{"after", Filter{After: 7000, Limit: 50}, 7001},
		{"reason newest", Filter{Reason: gateway.ReasonRejected, Newest: true, Limit: 50}, 6000},
		{"reason oldest", Filter{Reason: gateway.ReasonDecode, Limit: 50}, 6001},
		{"ids", Filter{IDs: []uint64{11999, 3}}, 3},
		{"device", Filter{DevEUI: "0a0a0a0a0a0a0a0a", Newest: true, Limit: 50}, 3334},
		{"source", Filter{Source: "x", Since: t0.Add(11990 * time.Second)}, 11991},
	}
	for _, tc := range tests {
		before := s.listRead.Load()
		ls, err := s.List(ctx, tc.f)
		if err != nil || len(ls) == 0 || ls[0].ID != tc.first {
			t.Fatalf("%s: %d letters, first %+v, %v", tc.name, len(ls), ls, err)
		}
		if read := s.listRead.Load() - before; read > bound {
			t.Errorf("%s: read %d bytes of %d for %d letters", tc.name, read, s.Stats().Bytes, len(ls))
		}
	}
}

func TestMigrateLegacy(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	var old []byte
	for _, ln := range []legacyLine{
		{DeadLetter: letter("a", 0)},
		{DeadLetter: letter("b", 1)},
		{Mark: StatusFailed, ID: 1, At: t0, DeadLetter: gateway.DeadLetter{Reason: gateway.ReasonDecode, Detail: "still"}},
		{DeadLetter: letter("c", 2)},
		{Mark: StatusReplayed, ID: 3, At: t0.Add(time.Hour)},
	} {
		b, _ := json.Marshal(ln)
		old = append(append(old, b...), '\n')
		if ln.Source == "b" {
			old = append(old, `{"time":"2026-01-02T0`+"\n"...) // a torn line mid-file
		}
	}
	old = append(old, `{"time":"2026-01-0`...) // and a torn last line
	legacy := path + ".jsonl"
	if err := os.WriteFile(legacy, old, 0o640); err != nil {
		t.Fatal(err)
	}
	// A store not yet migrated reads as it is.
	if dls, err := ReadAll(path); err != nil || len(dls) != 3 {
		t.Fatalf("ReadAll before migration: %d, %v", len(dls), err)
	}
	// A migration a crash cut short is redone.
	if err := os.MkdirAll(path+migratingSuffix, 0o750); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(path+migratingSuffix, segName(1)), []byte("half"), 0o640)
	s := mustOpen(t, path, Options{})
	if got := fmt.Sprint(sources(t, s, Filter{})); got != "[1:a 2:b 3:c]" {
		t.Fatalf("migrated: %s", got)
	}
	l1, _, _ := s.Get(ctx, 1)
	l3, _, _ := s.Get(ctx, 3)
	if l1.Attempts != 1 || l1.LastError != "decode_error: still" || l3.ReplayedAt == nil || !l3.ReplayedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("marks: %+v %+v", l1, l3)
	}
	if st := s.Stats(); st.Corrupt != 2 {
		t.Fatalf("damaged lines counted %d, want 2", st.Corrupt)
	}
	if _, err := os.Stat(legacy); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the old file is still in place: it would be migrated again")
	}
	if _, err := os.Stat(legacy + ".migrated"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + migratingSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the migration directory is left behind")
	}
	put(t, s, letter("d", 3))
	s.Close()
	s = mustOpen(t, path, Options{})
	if got := fmt.Sprint(sources(t, s, Filter{})); got != "[1:a 2:b 3:c 4:d]" {
		t.Fatalf("after reopen: %s", got)
	}
}

// TestConcurrentPutAndList runs writers and readers together (for -race).
func TestConcurrentPutAndList(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, filepath.Join(t.TempDir(), FileName), Options{Config: Config{MaxBytes: MinMaxBytes}})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dl := letter(fmt.Sprint("w", w), 0)
			dl.Raw = bytes.Repeat([]byte{1}, 2000)
			for i := range 300 {
				dl.Time = t0.Add(time.Duration(i))
				if err := s.Put(ctx, dl); err != nil && !errors.Is(err, ErrQueueFull) {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 20 {
		ls, err := s.List(ctx, Filter{Newest: true, Limit: 20})
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(ls); i++ {
			if ls[i].ID >= ls[i-1].ID {
				t.Fatalf("newest first out of order: %d after %d", ls[i].ID, ls[i-1].ID)
			}
		}
	}
	wg.Wait()
	s.Flush(ctx)
	st := s.Stats()
	if st.Letters+st.Dropped+st.QueueFull != 1200 {
		t.Fatalf("letters unaccounted for: %+v", st)
	}
}

// gatedDisk holds fsyncs while its gate is closed, so letters pile up
// in the queue as behind a slow disk.
type gatedDisk struct {
	faultDisk
	mu   sync.Mutex
	gate chan struct{} // nil: open
}

func (d *gatedDisk) open(path string) (segFile, error) {
	f, err := d.faultDisk.open(path)
	return gatedFile{f, d}, err
}

func (d *gatedDisk) close() {
	d.mu.Lock()
	d.gate = make(chan struct{})
	d.mu.Unlock()
}

func (d *gatedDisk) reopen() {
	d.mu.Lock()
	close(d.gate)
	d.gate = nil
	d.mu.Unlock()
}

type gatedFile struct {
	segFile
	d *gatedDisk
}

func (f gatedFile) Sync() error {
	f.d.mu.Lock()
	gate := f.d.gate
	f.d.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return nil
}

// TestBacklogAfterSlowDiskKeepsTheStore: letters that piled up behind a
// slow disk are written in groups small enough that making room drops
// only the oldest segments, not most of the store at once.
func TestBacklogAfterSlowDiskKeepsTheStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	d := &gatedDisk{faultDisk: faultDisk{budget: -1}}
	s := mustOpen(t, path, Options{Config: Config{MaxBytes: MinMaxBytes}, openSeg: d.open})
	dl := letter("x", 0)
	dl.Raw = make([]byte, 2048)
	for range 500 { // the store full, in small groups
		put(t, s, dl)
	}
	d.close()
	for s.Put(ctx, dl) == nil {
	}
	d.reopen()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Bytes > MinMaxBytes || st.Bytes < MinMaxBytes/2 {
		t.Fatalf("after the backlog the store holds %d bytes of %d: %+v", st.Bytes, MinMaxBytes, st)
	}
}
