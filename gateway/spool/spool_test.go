package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// logBuf collects a spool's log lines for assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// openT opens a spool and closes it at the end of the test.
func openT(t testing.TB, cfg Config) (*Spool, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	s, err := Open(cfg, zerolog.New(lb))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, lb
}

// payload is record i's deterministic content, size bytes long (at
// least long enough for its label).
func payload(i, size int) []byte {
	p := []byte(fmt.Sprintf("rec-%08d|", i))
	for len(p) < size {
		p = append(p, byte('a'+(i+len(p))%26))
	}
	return p
}

func appendN(t testing.TB, s *Spool, from, n, size int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := s.Append(context.Background(), payload(i, size)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

// drain reads every record available now, without waiting.
func drain(t testing.TB, s *Spool, batch int) []Record {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var all []Record
	for {
		recs, err := s.Read(ctx, batch, 0)
		if errors.Is(err, context.Canceled) {
			return all
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		all = append(all, recs...)
	}
}

// wantRecords checks that recs are records from..to (payload index i at
// position i+offset) in order.
func wantRecords(t testing.TB, recs []Record, from, to, size int, posOffset uint64) {
	t.Helper()
	if len(recs) != to-from+1 {
		t.Fatalf("got %d records, want %d (%d..%d)", len(recs), to-from+1, from, to)
	}
	for k, r := range recs {
		i := from + k
		if want := Position(uint64(i) + posOffset); r.Pos != want {
			t.Fatalf("record %d: position %d, want %d", k, r.Pos, want)
		}
		if !bytes.Equal(r.Data, payload(i, size)) {
			t.Fatalf("record %d: data %q, want %q", k, r.Data, payload(i, size))
		}
	}
}

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for valid
	}{
		{"defaults", Config{Dir: "/x"}, ""},
		{"interval", Config{Dir: "/x", Fsync: "250ms"}, ""},
		{"no dir", Config{}, "spool.dir"},
		{"bad fsync", Config{Dir: "/x", Fsync: "sometimes"}, "spool.fsync"},
		{"zero interval", Config{Dir: "/x", Fsync: "0s"}, "spool.fsync"},
		{"negative max", Config{Dir: "/x", MaxBytes: -1}, "max_bytes -1 is negative"},
		{"tiny segment", Config{Dir: "/x", SegmentBytes: 100}, "spool.segment_bytes"},
		{"max below two segments", Config{Dir: "/x", MaxBytes: 1 << 20, SegmentBytes: 1 << 20}, "raise spool.max_bytes"},
		{"small max picks smaller segments", Config{Dir: "/x", MaxBytes: 1 << 20}, ""},
		{"commit delay", Config{Dir: "/x", CommitDelay: "5ms"}, ""},
		{"no commit delay", Config{Dir: "/x", CommitDelay: "0"}, ""},
		{"bad commit delay", Config{Dir: "/x", CommitDelay: "soon"}, "spool.commit_delay"},
		{"negative commit delay", Config{Dir: "/x", CommitDelay: "-1ms"}, "spool.commit_delay"},
		{"commit delay too long", Config{Dir: "/x", CommitDelay: "1s"}, "spool.commit_delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestOrderAcrossSegmentsAndReopen(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, SegmentBytes: MinSegmentBytes, MaxBytes: 1 << 30}
	const size = 100
	s, _ := openT(t, cfg)
	appendN(t, s, 1, 500, size)
	if n := len(segFiles(t, dir)); n < 10 {
		t.Fatalf("%d segment files, want many (records must cross segment boundaries)", n)
	}
	// Read in odd-sized batches so batches straddle segment boundaries.
	var got []Record
	for len(got) < 500 {
		recs, err := s.Read(context.Background(), 37, 0)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, recs...)
	}
	wantRecords(t, got, 1, 500, size, 0)
	if err := s.Ack(250); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopen: reading resumes after the ack, acked segments are gone.
	s, _ = openT(t, cfg)
	wantRecords(t, drain(t, s, 64), 251, 500, size, 0)
	if st := s.Stats(); st.Pending != 250 {
		t.Fatalf("Pending = %d, want 250", st.Pending)
	}
	appendN(t, s, 501, 10, size)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopen without acking: everything after the ack comes again
	// (at least once), and positions continue.
	s, _ = openT(t, cfg)
	wantRecords(t, drain(t, s, 1000), 251, 510, size, 0)
	if err := s.Ack(510); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Pending != 0 || st.Segments != 1 || st.OldestAge != 0 {
		t.Fatalf("after acking all: %+v, want nothing pending in one segment", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ = openT(t, cfg)
	if recs := drain(t, s, 10); len(recs) != 0 {
		t.Fatalf("after acking everything, reopened spool returned %d records", len(recs))
	}
	appendN(t, s, 511, 1, size)
	wantRecords(t, drain(t, s, 10), 511, 511, size, 0)
}

func TestAckPersistsAndSurvivesTornSlot(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir}
	s, _ := openT(t, cfg)
	appendN(t, s, 1, 300, 50)
	drain(t, s, 1000)
	for _, p := range []Position{100, 200} {
		if err := s.Ack(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Ack(150); err != nil { // below the ack: a no-op
		t.Fatal(err)
	}
	s.Close()

	s, _ = openT(t, cfg)
	wantRecords(t, drain(t, s, 1000), 201, 300, 50, 0)
	s.Close()

	// Tear the slot holding 200 (the second write went to slot 1): the
	// previous ack is used and records 101.. come again.
	f, err := os.OpenFile(filepath.Join(dir, ackFileName), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff, 0xff}, ackSlot1Off+10); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s, _ = openT(t, cfg)
	wantRecords(t, drain(t, s, 1000), 101, 300, 50, 0)
}

func TestAckBeyondReadIsAnError(t *testing.T) {
	s, _ := openT(t, Config{Dir: t.TempDir()})
	appendN(t, s, 1, 3, 10)
	if _, err := s.Read(context.Background(), 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(2); err == nil {
		t.Fatal("Ack past the last record read succeeded")
	}
	if err := s.Ack(1); err != nil {
		t.Fatal(err)
	}
}

func TestReadBlocksUntilAppendOrContext(t *testing.T) {
	s, _ := openT(t, Config{Dir: t.TempDir()})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Read(ctx, 10, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read on an empty spool = %v, want deadline exceeded", err)
	}
	got := make(chan []Record)
	go func() {
		recs, _ := s.Read(context.Background(), 10, 0)
		got <- recs
	}()
	time.Sleep(10 * time.Millisecond)
	appendN(t, s, 1, 1, 10)
	select {
	case recs := <-got:
		wantRecords(t, recs, 1, 1, 10, 0)
	case <-time.After(5 * time.Second):
		t.Fatal("Read did not wake up after Append")
	}
}

func TestReadMaxBytes(t *testing.T) {
	s, _ := openT(t, Config{Dir: t.TempDir()})
	appendN(t, s, 1, 10, 100)
	recs, err := s.Read(context.Background(), 100, 250)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 { // 100+100 < 250, the third crosses it
		t.Fatalf("Read with maxBytes 250 returned %d records of 100 bytes, want 3", len(recs))
	}
	recs, err = s.Read(context.Background(), 100, 1) // first one even if larger
	if err != nil || len(recs) != 1 || recs[0].Pos != 4 {
		t.Fatalf("Read with maxBytes 1 = %d records, %v; want record 4", len(recs), err)
	}
	// Returned data must not share capacity: appending to one record
	// must not overwrite the next.
	recs, _ = s.Read(context.Background(), 2, 0)
	_ = append(recs[0].Data, 'X')
	if !bytes.Equal(recs[1].Data, payload(6, 100)) {
		t.Fatal("appending to one record's Data changed the next record")
	}
}

// TestReadBuffered reads a spool in chunks through one Buffer: every
// chunk holds the right records, whatever the earlier chunks' sizes, and
// once the buffer has grown a read allocates nothing.
func TestReadBuffered(t *testing.T) {
	s, _ := openT(t, Config{Dir: t.TempDir(), SegmentBytes: 64 << 10})
	// Sizes vary so a later chunk can need more room than the buffer has,
	// and the records cross segment boundaries.
	sizes := []int{100, 3000, 40, 1200, 900}
	var want [][]byte
	for i := range 200 {
		p := payload(i, sizes[i%len(sizes)])
		want = append(want, p)
		if err := s.Append(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	var buf Buffer
	got := 0
	for _, c := range []struct{ max, maxBytes int }{{1, 0}, {30, 0}, {10, 2000}, {50, 0}, {200, 0}} {
		recs, err := s.ReadBuffered(context.Background(), &buf, c.max, c.maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		for k, r := range recs {
			if !bytes.Equal(r.Data, want[got+k]) {
				t.Fatalf("chunk (max %d, maxBytes %d) record %d: data %.20q…, want %.20q…", c.max, c.maxBytes, k, r.Data, want[got+k])
			}
			if r.Pos != Position(got+k+1) {
				t.Fatalf("chunk (max %d) record %d: position %d, want %d", c.max, k, r.Pos, got+k+1)
			}
		}
		// A run of the read is its records' data in one slice.
		for _, r := range [][2]int{{0, len(recs)}, {len(recs) / 2, len(recs)}, {0, 1}} {
			lines, ok := buf.Lines(recs[r[0]:r[1]])
			if !ok || !bytes.Equal(lines, bytes.Join(want[got+r[0]:got+r[1]], nil)) {
				t.Fatalf("chunk (max %d) Lines of records %d..%d = %.20q…, %v; want their data joined", c.max, r[0], r[1], lines, ok)
			}
		}
		if len(recs) > 2 {
			if _, ok := buf.Lines([]Record{recs[0], recs[2]}); ok {
				t.Fatalf("Lines of records 0 and 2 (not a run) reported ok")
			}
		}
		got += len(recs)
	}
	if got != len(want) {
		t.Fatalf("read %d records, want %d", got, len(want))
	}
	if err := s.Ack(Position(got)); err != nil {
		t.Fatal(err)
	}

	// Steady state: the same chunk shape again reuses the buffer.
	// AllocsPerRun calls twice (a warm-up, then the measured run).
	appendN(t, s, 0, 30, 500)
	recs, err := s.ReadBuffered(context.Background(), &buf, 10, 0)
	if err != nil || len(recs) != 10 {
		t.Fatalf("ReadBuffered = %d records, %v; want 10", len(recs), err)
	}
	allocs := testing.AllocsPerRun(1, func() {
		recs, err = s.ReadBuffered(context.Background(), &buf, 10, 0)
	})
	if err != nil || len(recs) != 10 {
		t.Fatalf("ReadBuffered = %d records, %v; want 10", len(recs), err)
	}
	wantRecords(t, recs, 20, 29, 500, 201)
	if allocs > 0 {
		t.Errorf("a read into a buffer large enough allocated %.0f times, want 0", allocs)
	}
}

// TestReadBufferShrinks: a buffer that one large read (a backlog) grew is
// replaced by one of the size later small reads need, so a reader's
// memory does not ratchet up to its largest read, and a buffer that fits
// is kept.
func TestReadBufferShrinks(t *testing.T) {
	s, _ := openT(t, Config{Dir: t.TempDir()})
	ctx := context.Background()
	appendN(t, s, 0, 2000, 1000)
	var buf Buffer
	recs, err := s.ReadBuffered(ctx, &buf, 10000, 1<<20)
	if err != nil || len(recs) < 1000 {
		t.Fatalf("backlog read = %d records, %v; want a megabyte's worth", len(recs), err)
	}
	bigData, bigRecs := cap(buf.data), cap(buf.recs)
	if err := s.Ack(recs[len(recs)-1].Pos); err != nil {
		t.Fatal(err)
	}
	all := len(recs)
	for len(recs) > 0 && all < 2000 { // the rest of the backlog
		if recs, err = s.ReadBuffered(ctx, &buf, 10000, 1<<20); err != nil {
			t.Fatal(err)
		}
		all += len(recs)
		if err := s.Ack(recs[len(recs)-1].Pos); err != nil {
			t.Fatal(err)
		}
	}
	appendN(t, s, 2000, 5, 1000)
	if recs, err = s.ReadBuffered(ctx, &buf, 10000, 1<<20); err != nil || len(recs) != 5 {
		t.Fatalf("steady read = %d records, %v; want 5", len(recs), err)
	}
	wantRecords(t, recs, 2000, 2004, 1000, 1)
	if c := cap(buf.data); c > 64<<10 {
		t.Errorf("after a read of 5 KB the buffer holds %d bytes (was %d after the backlog), want at most 64 KiB", c, bigData)
	}
	if c := cap(buf.recs); c >= bigRecs || c > 1024 {
		t.Errorf("after a read of 5 records the buffer holds room for %d (was %d), want far fewer", c, bigRecs)
	}
	kept := cap(buf.data)
	appendN(t, s, 2005, 5, 1000)
	if recs, err = s.ReadBuffered(ctx, &buf, 10000, 1<<20); err != nil || len(recs) != 5 {
		t.Fatalf("second steady read = %d records, %v; want 5", len(recs), err)
	}
	if cap(buf.data) != kept {
		t.Errorf("a buffer that fits was replaced: %d bytes, then %d", kept, cap(buf.data))
	}
}

func TestConcurrentAppendAndRead(t *testing.T) {
	const writers, each, size = 16, 300, 200
	s, _ := openT(t, Config{Dir: t.TempDir(), SegmentBytes: 64 << 10, MaxBytes: 1 << 30})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				p := []byte(fmt.Sprintf("w%02d-%05d-", w, i))
				p = append(p, bytes.Repeat([]byte{'x'}, size)...)
				if err := s.Append(context.Background(), p); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		}()
	}
	next := make([]int, writers)
	var last Position
	for n := 0; n < writers*each; {
		recs, err := s.Read(context.Background(), 100, 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Pos != last+1 {
				t.Fatalf("position %d after %d", r.Pos, last)
			}
			last = r.Pos
			var w, i int
			if _, err := fmt.Sscanf(string(r.Data[:10]), "w%02d-%05d", &w, &i); err != nil {
				t.Fatalf("record %q: %v", r.Data[:10], err)
			}
			if i != next[w] {
				t.Fatalf("writer %d: record %d, want %d (lost, doubled or reordered)", w, i, next[w])
			}
			next[w]++
		}
		n += len(recs)
		if err := s.Ack(last); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if st := s.Stats(); st.Pending != 0 {
		t.Fatalf("Pending = %d after reading and acking everything", st.Pending)
	}
}

func TestMaxBytesDropsOldest(t *testing.T) {
	tests := []struct {
		name     string
		readAck  int // records read and acked before the flood
		readOnly int // further records read but not acked
	}{
		{"nothing read", 0, 0},
		{"some acked", 50, 0},
		{"reader inside dropped segment", 50, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const size, n = 100, 2000
			// The fsync policy does not matter here; an hour keeps the test fast.
			cfg := Config{Dir: t.TempDir(), Fsync: "1h", SegmentBytes: 8 << 10, MaxBytes: 64 << 10}
			s, lb := openT(t, cfg)
			appendN(t, s, 1, 100, size)
			if tt.readAck > 0 {
				recs, _ := s.Read(context.Background(), tt.readAck, 0)
				if err := s.Ack(recs[len(recs)-1].Pos); err != nil {
					t.Fatal(err)
				}
			}
			if tt.readOnly > 0 {
				s.Read(context.Background(), tt.readOnly, 0)
			}
			appendN(t, s, 101, n-100, size) // never fails for the cap
			st := s.Stats()
			if st.Bytes > cfg.MaxBytes {
				t.Fatalf("Bytes = %d, above MaxBytes %d", st.Bytes, cfg.MaxBytes)
			}
			if st.DroppedRecords == 0 || st.DroppedBytes == 0 {
				t.Fatalf("nothing counted as dropped: %+v", st)
			}
			recs := drain(t, s, 1000)
			first := n - len(recs) + 1
			wantRecords(t, recs, first, n, size, 0) // the newest survive, in order
			if got, want := st.DroppedRecords, uint64(first-1-tt.readAck); got != want {
				t.Fatalf("DroppedRecords = %d, want %d (records %d..%d, acked ones excluded)", got, want, tt.readAck+1, first-1)
			}
			if !strings.Contains(lb.String(), "dropped the oldest") || !strings.Contains(lb.String(), `"dropped_records":`) {
				t.Fatalf("drop not logged with fields:\n%s", lb.String())
			}
		})
	}
}

func TestFsyncInterval(t *testing.T) {
	t.Run("append does not sync, close does", func(t *testing.T) {
		dir := t.TempDir()
		cfg := Config{Dir: dir, Fsync: "1h"}
		s, _ := openT(t, cfg)
		appendN(t, s, 1, 100, 64)
		recs, err := s.Read(context.Background(), 10, 0)
		if err != nil || len(recs) != 10 {
			t.Fatalf("Read = %d records, %v", len(recs), err)
		}
		if err := s.Ack(recs[9].Pos); err != nil {
			t.Fatal(err)
		}
		if n := s.syncs.Load(); n != 0 {
			t.Fatalf("%d syncs in interval mode before the interval passed; Append must not sync", n)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if n := s.syncs.Load(); n == 0 {
			t.Fatal("Close did not sync the segment")
		}
		s, _ = openT(t, cfg)
		wantRecords(t, drain(t, s, 1000), 11, 100, 64, 0)
	})
	t.Run("the interval syncs", func(t *testing.T) {
		s, _ := openT(t, Config{Dir: t.TempDir(), Fsync: "20ms"})
		appendN(t, s, 1, 10, 64)
		deadline := time.Now().Add(5 * time.Second)
		for s.syncs.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the interval never synced the segment")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

func TestWriteErrorENOSPC(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir}
	s, lb := openT(t, cfg)
	appendN(t, s, 1, 10, 100)
	// Test-only hook: the next write stores half its bytes and then
	// fails with ENOSPC, like a filesystem filling up mid-write.
	var fail atomic.Bool
	fail.Store(true)
	s.testHookWrite = func(f *os.File, p []byte, off int64) (int, error) {
		if !fail.CompareAndSwap(true, false) {
			return 0, nil
		}
		n, _ := f.WriteAt(p[:len(p)/2], off)
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	err := s.Append(context.Background(), payload(999, 100))
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "free disk space or lower spool.max_bytes") {
		t.Fatalf("Append on a full disk = %v, want ENOSPC with advice", err)
	}
	if !strings.Contains(lb.String(), "append failed") {
		t.Fatalf("write error not logged:\n%s", lb.String())
	}
	appendN(t, s, 11, 10, 100) // room again: appends work
	wantRecords(t, drain(t, s, 100), 1, 20, 100, 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, lb = openT(t, cfg)
	wantRecords(t, drain(t, s, 100), 1, 20, 100, 0)
	if st := s.Stats(); st.RepairedBytes != 0 {
		t.Fatalf("reopen had to repair %d bytes: the failed write was not cut off", st.RepairedBytes)
	}
	if strings.Contains(lb.String(), "torn") {
		t.Fatalf("reopen found a torn tail:\n%s", lb.String())
	}
}

func TestTooLarge(t *testing.T) {
	s, _ := openT(t, Config{Dir: t.TempDir(), SegmentBytes: MinSegmentBytes, MaxBytes: 1 << 20})
	err := s.Append(context.Background(), make([]byte, MinSegmentBytes))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "spool.segment_bytes") {
		t.Fatalf("Append of a record larger than a segment = %v", err)
	}
	// The largest record that fits is accepted, in a segment of its own.
	appendN(t, s, 1, 1, 10)
	big := make([]byte, MinSegmentBytes-segHeaderSize-recHeaderSize)
	if err := s.Append(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	if recs := drain(t, s, 10); len(recs) != 2 || len(recs[1].Data) != len(big) {
		t.Fatalf("read %d records after a segment-sized one", len(recs))
	}
}

func TestCloseSemantics(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error)
	go func() {
		_, err := s.Read(context.Background(), 1, 0)
		readErr <- err
	}()
	// Appends racing with Close: each either succeeds (and is then on
	// disk) or says the spool is closed.
	var wg sync.WaitGroup
	var ok sync.Map
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				p := []byte(fmt.Sprintf("g%d-%d", g, i))
				err := s.Append(context.Background(), p)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				ok.Store(string(p), true)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	// The reader may have got a record before Close; then it is blocked
	// in nothing. Either way it must not hang.
	select {
	case err := <-readErr:
		if err != nil && !errors.Is(err, ErrClosed) {
			t.Fatalf("Read during Close = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read blocked through Close")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if err := s.Append(context.Background(), []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v", err)
	}
	s2, _ := openT(t, Config{Dir: dir})
	seen := map[string]bool{}
	for _, r := range drain(t, s2, 1000) {
		seen[string(r.Data)] = true
	}
	ok.Range(func(k, _ any) bool {
		if !seen[k.(string)] {
			t.Errorf("record %s was acknowledged but is missing after Close", k)
		}
		return true
	})
}

func TestSecondOpenIsRefused(t *testing.T) {
	dir := t.TempDir()
	openT(t, Config{Dir: dir})
	_, err := Open(Config{Dir: dir}, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second Open = %v, want in-use error", err)
	}
}

func TestAppendContextCanceled(t *testing.T) {
	s, _ := openT(t, Config{Dir: t.TempDir()})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Append(ctx, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a canceled context = %v", err)
	}
}

func TestStatsOldestAge(t *testing.T) {
	s, _ := openT(t, Config{Dir: t.TempDir()})
	if st := s.Stats(); st.Pending != 0 || st.OldestAge != 0 || st.Segments != 1 {
		t.Fatalf("empty spool: %+v", st)
	}
	// statsAt returns Stats and the clock just before and after, so an
	// age can be checked against a record's time without timing flakes.
	statsAt := func() (Stats, time.Time, time.Time) {
		t0 := time.Now()
		st := s.Stats()
		return st, t0, time.Now()
	}
	wantAge := func(what string, st Stats, t0, t1 time.Time, rec Record) {
		t.Helper()
		if lo, hi := t0.Sub(rec.Time), t1.Sub(rec.Time); st.OldestAge < lo || st.OldestAge > hi {
			t.Fatalf("%s: OldestAge %v, want the age of record %d, between %v and %v", what, st.OldestAge, rec.Pos, lo, hi)
		}
	}
	appendN(t, s, 1, 10, 10)

	// Nothing read yet: the age comes from the first record on disk.
	st1, a1, b1 := statsAt()
	recs, _ := s.Read(context.Background(), 7, 0)
	wantAge("nothing read", st1, a1, b1, recs[0])
	if st1.Pending != 10 {
		t.Fatalf("Pending = %d, want 10", st1.Pending)
	}
	if got := recs[0].Time; time.Since(got) > time.Minute || got.After(time.Now()) {
		t.Fatalf("record time %v is not the append time", got)
	}

	// Record 6 is read but not acked: its time is known in memory.
	if err := s.Ack(recs[4].Pos); err != nil {
		t.Fatal(err)
	}
	st2, a2, b2 := statsAt()
	wantAge("read, not acked", st2, a2, b2, recs[5])
	if st2.Pending != 5 {
		t.Fatalf("Pending = %d, want 5", st2.Pending)
	}

	// Record 8 is unread: its age comes from the reader's position.
	if err := s.Ack(recs[6].Pos); err != nil {
		t.Fatal(err)
	}
	st3, a3, b3 := statsAt()
	more, _ := s.Read(context.Background(), 1, 0)
	wantAge("unread", st3, a3, b3, more[0])
	if st3.Pending != 3 {
		t.Fatalf("Pending = %d, want 3", st3.Pending)
	}
}

func TestAckWhileReadWaits(t *testing.T) {
	s, _ := openT(t, Config{Dir: t.TempDir()})
	appendN(t, s, 1, 3, 10)
	recs, err := s.Read(context.Background(), 10, 0)
	if err != nil || len(recs) != 3 {
		t.Fatalf("Read = %d, %v", len(recs), err)
	}
	waiting := make(chan error)
	go func() {
		_, err := s.Read(context.Background(), 10, 0) // blocks: nothing new
		waiting <- err
	}()
	time.Sleep(10 * time.Millisecond)
	acked := make(chan error)
	go func() { acked <- s.Ack(recs[2].Pos) }()
	select {
	case err := <-acked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Ack waited for a blocked Read")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked Read after Close = %v, want ErrClosed", err)
	}
}

func TestFsyncErrorStopsAppends(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 1, 5, 50)
	// Test-only hook: the next fdatasync fails with EIO, as a failing
	// disk reports it.
	var fail atomic.Bool
	fail.Store(true)
	s.testHookSync = func(f *os.File) error {
		if fail.CompareAndSwap(true, false) {
			return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: syscall.EIO}
		}
		return nil
	}
	err = s.Append(context.Background(), payload(99, 50))
	if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "restart sensorgate") {
		t.Fatalf("Append with a failing fsync = %v", err)
	}
	// Sticky: the files are in an unknown state until a restart.
	if err2 := s.Append(context.Background(), payload(100, 50)); !errors.Is(err2, syscall.EIO) {
		t.Fatalf("Append after a failed fsync = %v, want the same failure", err2)
	}
	// What was committed before can still be delivered.
	wantRecords(t, drain(t, s, 100), 1, 5, 50, 0)
	if err := s.Close(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Close = %v, want the fsync failure reported", err)
	}
	s, _ = openT(t, Config{Dir: dir})
	wantRecords(t, drain(t, s, 100), 1, 5, 50, 0)
	appendN(t, s, 6, 1, 50)
}

// TestGatherFor: when the writer waits for more records before a group
// commit, and when a record is committed at once.
func TestGatherFor(t *testing.T) {
	now := time.Now()
	ms := time.Millisecond
	for _, tt := range []struct {
		name  string
		delay time.Duration
		n     int
		multi time.Duration // since the last commit of several records; 0: never
		gap   time.Duration // between appends, on average
		want  bool
	}{
		{"appends arriving together", ms, 2, 0, time.Second, true},
		{"one record, fast concurrent stream", ms, 1, 200 * time.Microsecond, 300 * time.Microsecond, true},
		{"one record, concurrent stream, groups of one for a while", 4 * ms, 1, 900 * ms, ms, true},
		{"one record, stream slower than the delay", ms, 1, 10 * ms, 5 * ms, false},
		{"one record, no group of several for a while", ms, 1, 2 * time.Second, 100 * time.Microsecond, false},
		{"lone appender", ms, 1, 0, 10 * time.Microsecond, false},
		{"group full", ms, commitGroup, ms, 0, false},
		{"no commit delay", 0, 5, ms, 0, false},
	} {
		s := &Spool{delay: tt.delay}
		if tt.multi > 0 {
			s.lastMulti = now.Add(-tt.multi)
		}
		if got := s.gatherFor(tt.n, now, tt.gap); got != tt.want {
			t.Errorf("%s: gatherFor(%d) = %v, want %v", tt.name, tt.n, got, tt.want)
		}
	}
}

// TestAppendGap: the moving average of the time between appends starts
// at a second (no stream yet), follows a steady stream, and counts a
// pause as at most a second.
func TestAppendGap(t *testing.T) {
	s := &Spool{}
	ns := int64(time.Millisecond)
	at := int64(1e18)
	s.noteAppendLocked(at)
	if s.gap != int64(time.Second) {
		t.Fatalf("first append: gap %v, want 1s", time.Duration(s.gap))
	}
	for range 100 {
		at += ns
		s.noteAppendLocked(at)
	}
	if g := time.Duration(s.gap); g < 900*time.Microsecond || g > 1100*time.Microsecond {
		t.Errorf("after 100 appends 1 ms apart: gap %v, want about 1ms", g)
	}
	at += int64(time.Hour)
	s.noteAppendLocked(at)
	if g := time.Duration(s.gap); g > 130*time.Millisecond {
		t.Errorf("after an hour's pause: gap %v, want at most an eighth of a second more", g)
	}
	s.noteAppendLocked(at - ns) // a clock step backwards counts as no gap
	if s.gap < 0 {
		t.Errorf("gap %v after a clock step back", time.Duration(s.gap))
	}
}

// TestPositions: what a caller waiting for delivery compares.
func TestPositions(t *testing.T) {
	s, _ := openT(t, Config{Dir: t.TempDir()})
	defer s.Close()
	if c, a := s.Positions(); c != 0 || a != 0 {
		t.Fatalf("empty spool: committed %d, acked %d", c, a)
	}
	appendN(t, s, 1, 5, 10)
	drain(t, s, 1000)
	if err := s.Ack(3); err != nil {
		t.Fatal(err)
	}
	if c, a := s.Positions(); c != 5 || a != 3 {
		t.Fatalf("committed %d, acked %d; want 5, 3", c, a)
	}
}
