package influx

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// TestLiveDuringBacklog: with a backlog in the spool (an outage's), live
// records written while it drains reach InfluxDB before the backlog has
// drained; every record is sent once (the spool's reader skips what the
// live reader sent), all are acknowledged in the end, and InfluxDB holds
// each point exactly once.
func TestLiveDuringBacklog(t *testing.T) {
	db := testserver.StartInfluxDB(t)
	sp := openQuickSpool(t, t.TempDir())
	defer sp.Close()
	cfg := cfgFor(db.URL(), db.Bucket())
	cfg.BatchSize = 50
	s := newSpooled(t, cfg, sp, &memDL{})
	s.chunk = 50    // full chunks of one batch each: many requests to drain
	s.liveAfter = 0 // the backlog is young; any full read counts as one
	const backlog, live = 20000, 3
	ctx := context.Background()
	for i := range backlog {
		if err := s.Write(ctx, []gateway.Point{point(fmt.Sprintf("old-%d", i%100), i, float64(i))}); err != nil {
			t.Fatal(err)
		}
	}

	var (
		mu          sync.Mutex
		sent        = map[string]int{} // record → times InfluxDB took it
		oldSettled  int
		liveSettled = make(chan int, live) // backlog records settled when a live one was
	)
	s.settled = func(data []byte, err error) {
		if err != nil {
			t.Errorf("record refused: %v", err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		sent[string(data)]++
		if bytes.Contains(data, []byte("device=live")) {
			liveSettled <- oldSettled
		} else {
			oldSettled++
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()

	// The live reader starts at the first full read; once a second
	// chunk's records are in, it has (the reader started it before it
	// read that chunk).
	for {
		mu.Lock()
		n := oldSettled
		mu.Unlock()
		if n > s.chunk {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Run ended early: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	for i := range live {
		if err := s.Write(ctx, []gateway.Point{point(fmt.Sprintf("live-%d", i), backlog+i, 1)}); err != nil {
			t.Fatal(err)
		}
		select {
		case old := <-liveSettled:
			// With the backlog ahead of it in one queue, a live record
			// would land only after all of it.
			if old >= backlog {
				t.Fatalf("live record %d landed after the whole backlog (%d records)", i, old)
			}
			t.Logf("live record %d landed with %d of %d backlog records in", i, old, backlog)
		case <-time.After(2 * time.Minute):
			t.Fatalf("live record %d not in InfluxDB after 2 minutes", i)
		}
	}

	dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := s.Drain(dctx); err != nil {
		t.Fatalf("not every record acknowledged: %v", err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := s.liveBatches.Load(); n < live {
		t.Errorf("%d batches went through the live reader, want at least %d", n, live)
	}
	mu.Lock()
	for rec, n := range sent {
		if n != 1 {
			t.Errorf("record sent %d times, want once: %q", n, rec)
		}
	}
	if len(sent) != backlog+live {
		t.Errorf("%d distinct records sent, want %d", len(sent), backlog+live)
	}
	mu.Unlock()
	if got := db.Count(t, "air"); got != backlog+live {
		t.Fatalf("InfluxDB holds %d points, want %d", got, backlog+live)
	}
	if st := sp.Stats(); st.Pending != 0 {
		t.Fatalf("spool: %+v, want nothing pending", st)
	}
}
