package spool

import (
	"context"
	"testing"
)

// readLive reads every record the live reader has now.
func readLive(t testing.TB, lv *Live, batch int) []Record {
	t.Helper()
	var all []Record
	for {
		recs, err := lv.Read(nil, batch, 0)
		if err != nil {
			t.Fatalf("Live.Read: %v", err)
		}
		if len(recs) == 0 {
			return all
		}
		all = append(all, recs...)
	}
}

// TestLiveReader: records appended after StartLive go to the live reader;
// the spool's reader returns those before From, then joins, skipping what
// the live reader read, and continues after it. Acks, restarts and Close
// without a join keep every record at least once, none lost.
func TestLiveReader(t *testing.T) {
	const size = 100
	tests := []struct {
		name string
		// after: the spool holds records 1..100 (3 segments and more),
		// the head read 1..30, a live reader started at 101 and read
		// 101..150; what happens next and what is read after.
		run func(t *testing.T, s *Spool, lv *Live, cfg Config)
	}{
		{"join", func(t *testing.T, s *Spool, lv *Live, cfg Config) {
			appendN(t, s, 151, 10, size) // live, not yet read by the live reader
			// The head stops before From, then joins and goes on after
			// what the live reader read: 151..160, nothing twice.
			// One read never holds records from both sides of the join,
			// so the reader can tell which reads came before it.
			var got []Record
			for len(got) < 80 {
				recs, err := s.Read(context.Background(), 9, 0)
				if err != nil {
					t.Fatal(err)
				}
				if recs[0].Pos <= 100 && (recs[len(recs)-1].Pos > 100 || lv.Joined()) {
					t.Fatalf("read %d..%d: joined %v; want reads up to 100 before the join", recs[0].Pos, recs[len(recs)-1].Pos, lv.Joined())
				}
				got = append(got, recs...)
			}
			if len(got) < 70 {
				t.Fatalf("head read %d records, want 31..100 and then 151..160", len(got))
			}
			wantRecords(t, got[:70], 31, 100, size, 0)
			if !lv.Joined() {
				t.Fatal("not joined after the head read everything before From")
			}
			wantRecords(t, got[70:], 151, 160, size, 0)
			if recs := readLive(t, lv, 10); len(recs) != 0 {
				t.Fatalf("the live reader read %d records after the join", len(recs))
			}
			if err := s.Ack(160); err != nil {
				t.Fatal(err)
			}
			if st := s.Stats(); st.Pending != 0 {
				t.Fatalf("after acking all: %+v", st)
			}
			// A second live reader can start after the join.
			appendN(t, s, 161, 5, size)
			lv2, err := s.StartLive()
			if err != nil {
				t.Fatal(err)
			}
			defer lv2.Close()
			if lv2.From() != 166 {
				t.Fatalf("From = %d, want 166", lv2.From())
			}
			appendN(t, s, 166, 2, size)
			wantRecords(t, readLive(t, lv2, 10), 166, 167, size, 0)
			wantRecords(t, drain(t, s, 10), 161, 165, size, 0)
		}},
		{"restart before the acks reach the live records", func(t *testing.T, s *Spool, lv *Live, cfg Config) {
			if err := s.Ack(30); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2, _ := openT(t, cfg)
			// Read again from the ack on, the live reader's records too.
			wantRecords(t, drain(t, s2, 64), 31, 150, size, 0)
		}},
		{"close without a join", func(t *testing.T, s *Spool, lv *Live, cfg Config) {
			lv.Close()
			if lv.Joined() {
				t.Fatal("joined after Close")
			}
			// The head reads on through the live reader's records.
			wantRecords(t, drain(t, s, 64), 31, 150, size, 0)
		}},
		{"ack is refused past the head", func(t *testing.T, s *Spool, lv *Live, cfg Config) {
			if err := s.Ack(150); err == nil {
				t.Fatal("Ack past the head's last record read succeeded; the records before From are not delivered")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Dir: t.TempDir(), SegmentBytes: 4 << 10, MaxBytes: 1 << 30}
			s, _ := openT(t, cfg)
			appendN(t, s, 1, 100, size)
			recs, err := s.Read(context.Background(), 30, 0)
			if err != nil {
				t.Fatal(err)
			}
			wantRecords(t, recs, 1, 30, size, 0)
			lv, err := s.StartLive()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.StartLive(); err == nil {
				t.Fatal("a second live reader started while one runs")
			}
			if lv.From() != 101 {
				t.Fatalf("From = %d, want 101", lv.From())
			}
			if recs := readLive(t, lv, 10); len(recs) != 0 {
				t.Fatalf("live reader read %d records before any was appended after its start", len(recs))
			}
			appendN(t, s, 101, 50, size)
			wantRecords(t, readLive(t, lv, 16), 101, 150, size, 0)
			tt.run(t, s, lv, cfg)
		})
	}
}

// TestLiveReaderMaxBytes: when max_bytes drops the segments under both
// readers, each goes on from the oldest record left, the head joins, and
// no record is returned twice.
func TestLiveReaderMaxBytes(t *testing.T) {
	const size = 100
	cfg := Config{Dir: t.TempDir(), Fsync: "1h", SegmentBytes: 8 << 10, MaxBytes: 64 << 10}
	s, _ := openT(t, cfg)
	appendN(t, s, 1, 100, size)
	lv, err := s.StartLive()
	if err != nil {
		t.Fatal(err)
	}
	defer lv.Close()
	appendN(t, s, 101, 10, size)
	wantRecords(t, readLive(t, lv, 4), 101, 110, size, 0)
	appendN(t, s, 111, 1890, size) // far past max_bytes: 1..~1500 dropped
	live := readLive(t, lv, 64)
	head := drain(t, s, 64)
	if !lv.Joined() {
		t.Fatal("the head did not join after its records were dropped")
	}
	seen := map[Position]bool{}
	for _, r := range append(live, head...) {
		if seen[r.Pos] {
			t.Fatalf("record %d returned twice", r.Pos)
		}
		seen[r.Pos] = true
	}
	if !seen[2000] || len(live) == 0 {
		t.Fatalf("live read %d, head %d records; want the newest (2000) among them, read by the live reader", len(live), len(head))
	}
	first := live[0].Pos
	for p := first; p <= 2000; p++ {
		if !seen[p] {
			t.Fatalf("record %d, after the oldest kept (%d), was never returned", p, first)
		}
	}
}
