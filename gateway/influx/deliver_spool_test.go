package influx

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/spool"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

type memDL struct {
	mu  sync.Mutex
	dls []gateway.DeadLetter
}

func (m *memDL) Put(_ context.Context, dl gateway.DeadLetter) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dls = append(m.dls, dl)
	return nil
}

func (m *memDL) all() []gateway.DeadLetter {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]gateway.DeadLetter(nil), m.dls...)
}

func openSpool(t *testing.T, dir string) *spool.Spool {
	t.Helper()
	sp, err := spool.Open(spool.Config{Dir: dir}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// spooled is the daemon's delivery: the Writer the pipeline writes to and
// the Deliverer that sends the spool to InfluxDB.
type spooled struct {
	*Writer
	*Deliverer
}

// newSpooled returns a Writer and a Deliverer over sp, not yet running.
func newSpooled(t *testing.T, cfg Config, sp *spool.Spool, dl gateway.DeadLetters) spooled {
	t.Helper()
	c, err := newClient(cfg, zerolog.Nop(), fastTiming)
	if err != nil {
		t.Fatal(err)
	}
	return spooled{NewWriter(sp), NewDeliverer(c, sp, dl, zerolog.Nop())}
}

// runSpooled runs delivery until the test (or stop) ends; setup changes
// the Deliverer before it runs.
func runSpooled(t *testing.T, cfg Config, sp *spool.Spool, dl gateway.DeadLetters, setup ...func(*Deliverer)) (spooled, func()) {
	t.Helper()
	s := newSpooled(t, cfg, sp, dl)
	for _, f := range setup {
		f(s.Deliverer)
	}
	return s, startSpooled(t, s)
}

// startSpooled runs s's delivery until stop is called or the test ends,
// for a test that spools a backlog before delivery starts.
func startSpooled(t *testing.T, s spooled) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Deliverer.Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// drainBacklog delivers the backlog spooled in s, then stops delivery.
func drainBacklog(t *testing.T, s spooled) {
	t.Helper()
	stop := startSpooled(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
}

// spoolPoints spools n messages of one point each (50 devices).
func spoolPoints(t *testing.T, s spooled, n int) {
	t.Helper()
	for i := range n {
		if err := s.Write(context.Background(), []gateway.Point{point(fmt.Sprintf("rec-%d", i%50), i, float64(i))}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSpooledSurvivesOutageAndRestart: writes succeed while InfluxDB is
// down (they are durable in the spool), a restart of the daemon in the
// middle loses nothing, and everything lands once InfluxDB is back.
func TestSpooledSurvivesOutageAndRestart(t *testing.T) {
	db := testserver.StartInfluxDB(t)
	dir := t.TempDir()
	db.Stop()

	sp := openSpool(t, dir)
	s, stop := runSpooled(t, cfgFor(db.URL(), db.Bucket()), sp, &memDL{})
	const writers, each = 20, 50
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := s.Write(context.Background(), []gateway.Point{point("d"+string(rune('a'+w)), i, float64(i))}); err != nil {
					t.Errorf("Write while InfluxDB is down: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if p := sp.Stats().Pending; p != writers*each {
		t.Fatalf("spool holds %d records, want %d", p, writers*each)
	}
	// The daemon stops (nothing delivered) and starts again.
	stop()
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	sp = openSpool(t, dir)
	defer sp.Close()
	s2, _ := runSpooled(t, cfgFor(db.URL(), db.Bucket()), sp, &memDL{})
	db.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s2.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if n := db.Count(t, "air"); n != writers*each {
		t.Fatalf("InfluxDB holds %d points, want %d", n, writers*each)
	}
}

// TestSpooledRejectedRecordIsDeadLetter: a record InfluxDB refuses (field
// type conflict) becomes a dead letter with its lines; the rest land.
func TestSpooledRejectedRecordIsDeadLetter(t *testing.T) {
	db := testserver.StartInfluxDB(t)
	sp := openSpool(t, t.TempDir())
	defer sp.Close()
	dl := &memDL{}
	s, _ := runSpooled(t, cfgFor(db.URL(), db.Bucket()), sp, dl)
	ctx := context.Background()
	good := func(dev string) []gateway.Point {
		return []gateway.Point{{Measurement: "water", Tags: []gateway.Tag{{Key: "dev_eui", Value: dev}, {Key: "source", Value: "feed"}},
			Fields: []gateway.Field{gateway.FloatField("level", 1.5)}, Time: time.Unix(10, 0)}}
	}
	if err := s.Write(ctx, good("aa")); err != nil {
		t.Fatal(err)
	}
	bad := good("bb")
	bad[0].Fields[0] = gateway.IntField("level", 2) // conflicts with the float field
	for _, pts := range [][]gateway.Point{bad, good("cc"), good("dd")} {
		if err := s.Write(ctx, pts); err != nil {
			t.Fatal(err)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.Drain(dctx); err != nil {
		t.Fatal(err)
	}
	if n := db.Count(t, "water"); n != 3 {
		t.Fatalf("InfluxDB holds %d points, want 3", n)
	}
	dls := dl.all()
	if len(dls) != 1 || dls[0].Reason != gateway.ReasonRejected || dls[0].DevEUI != "bb" || dls[0].Source != "feed" ||
		!strings.HasPrefix(string(dls[0].Raw), "water,dev_eui=bb") || !strings.Contains(dls[0].Detail, "conflict") {
		t.Fatalf("dead letters %+v", dls)
	}
}

// TestSpooledRejectedRecordInARun: records already spooled when delivery
// starts leave together in one request; when InfluxDB refuses it for one
// record's field type conflict, only that record becomes a dead letter
// and every other one lands.
func TestSpooledRejectedRecordInARun(t *testing.T) {
	db := testserver.StartInfluxDB(t)
	sp := openSpool(t, t.TempDir())
	defer sp.Close()
	ctx := context.Background()
	const n, badAt = 20, 7
	for i := range n {
		f := gateway.FloatField("level", float64(i))
		if i == badAt {
			f = gateway.IntField("level", int64(i)) // conflicts with the float field
		}
		p := gateway.Point{Measurement: "water", Tags: []gateway.Tag{{Key: "dev_eui", Value: fmt.Sprintf("d%02d", i)}},
			Fields: []gateway.Field{f}, Time: time.Unix(10, 0)}
		line, err := AppendPoint(nil, p)
		if err != nil {
			t.Fatal(err)
		}
		if err := sp.Append(ctx, line); err != nil {
			t.Fatal(err)
		}
	}
	dl := &memDL{}
	s, _ := runSpooled(t, cfgFor(db.URL(), db.Bucket()), sp, dl)
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.Drain(dctx); err != nil {
		t.Fatal(err)
	}
	if got := db.Count(t, "water"); got != n-1 {
		t.Fatalf("InfluxDB holds %d points, want %d", got, n-1)
	}
	dls := dl.all()
	if len(dls) != 1 || dls[0].DevEUI != fmt.Sprintf("d%02d", badAt) || dls[0].Reason != gateway.ReasonRejected {
		t.Fatalf("dead letters %+v, want one for d%02d", dls, badAt)
	}
}

// TestSpooledAcksInOrder: with two batches under way, a batch InfluxDB
// keeps refusing holds back the acknowledgement of every record after it,
// however the other batch fares; once InfluxDB takes it, all land once.
func TestSpooledAcksInOrder(t *testing.T) {
	db := testserver.StartInfluxDB(t)
	var blocked atomic.Bool
	blocked.Store(true)
	px := testserver.StartInfluxProxy(t, db.URL(), func(r testserver.WriteRequest) (int, http.Header) {
		if blocked.Load() && bytes.Contains(r.Data, []byte("device=rec-3,")) {
			return http.StatusServiceUnavailable, nil
		}
		return 0, nil
	})
	stored := func() int { // lines InfluxDB took
		n := 0
		for _, r := range px.Requests() {
			if r.Status/100 == 2 {
				n += r.Lines
			}
		}
		return n
	}

	sp := openSpool(t, t.TempDir())
	defer sp.Close()
	cfg := cfgFor(px.URL, db.Bucket())
	cfg.BatchSize, cfg.FlushInterval = 10, 10*time.Millisecond
	s := newSpooled(t, cfg, sp, &memDL{})
	s.chunk = 10 // records 0-9 and 10-19: full chunks, two batches under way at once
	const n = 20
	ctx := context.Background()
	for i := range n {
		if err := s.Write(ctx, []gateway.Point{point(fmt.Sprintf("rec-%d", i), i, float64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()

	// Requests without record 3 go through: the rest of its chunk, and
	// the other chunk, unless batched with it.
	waitFor(t, "the requests without record 3 stored", 30*time.Second, func() bool { return stored() >= n-10 })
	time.Sleep(200 * time.Millisecond) // an ack, were one wrongly made, would be in by now
	if p := sp.Stats().Pending; p != n {
		t.Fatalf("spool acknowledged past a record InfluxDB has not taken: %d pending, want %d", p, n)
	}
	blocked.Store(false)
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.Drain(dctx); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := db.Count(t, "air"); got != n {
		t.Fatalf("InfluxDB holds %d points, want %d", got, n)
	}
}

func TestTagValue(t *testing.T) {
	line := []byte(`air,dev_eui=0101,device=a\ b\,c,source=cs4 temperature=1 1` + "\n" + `x,source=other f=1 1`)
	for k, want := range map[string]string{"dev_eui": "0101", "device": `a\ b\,c`, "source": "cs4", "site": ""} {
		if got := tagValue(line, k); got != want {
			t.Errorf("tagValue(%s) = %q, want %q", k, got, want)
		}
	}
}

// TestSpooledLingers: without a backlog, delivery reads the spool at most
// once per flush_interval, so a trickle of records, each its own spool
// commit, leaves as a few requests rather than one per record, and every
// record arrives.
func TestSpooledLingers(t *testing.T) {
	db := testserver.StartInfluxDB(t)
	px := testserver.StartInfluxProxy(t, db.URL(), nil)
	sp := openSpool(t, t.TempDir())
	defer sp.Close()
	cfg := cfgFor(px.URL, db.Bucket())
	cfg.FlushInterval = 100 * time.Millisecond
	s := newSpooled(t, cfg, sp, &memDL{})

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.Run(ctx) }()
	const n = 200
	for i := range n {
		if err := s.Write(ctx, []gateway.Point{point(fmt.Sprintf("rec-%d", i), i, float64(i))}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // the trickle's pace, not a wait for a condition
	}
	stored := func() int {
		lines := 0
		for _, r := range px.Requests() {
			if r.Status/100 == 2 {
				lines += r.Lines
			}
		}
		return lines
	}
	waitFor(t, "every record stored", 30*time.Second, func() bool { return stored() >= n })
	elapsed := time.Since(start)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// One read per interval, and a read's records go as one request
	// (fewer than batch_size lines): at most one request per interval
	// elapsed, plus the first read.
	if reqs, most := len(px.Requests()), int(elapsed/cfg.FlushInterval)+1; reqs > most {
		t.Fatalf("%d write requests for %d records in %v, want at most %d (one per flush_interval)", reqs, n, elapsed.Round(time.Millisecond), most)
	}
	if got := db.Count(t, "air"); got != n {
		t.Fatalf("InfluxDB holds %d points, want %d", got, n)
	}
}

// TestSpoolOfEarlierVersionDrains: a spool written by the two-layer
// delivery (testdata/spool-c3a6144: 20 messages of an uplink and a water
// point, written by that version's Spooled.Write; message 13's level is
// an integer) drains through the Deliverer: InfluxDB holds every point it
// takes, and the refused message is a dead letter labelled with its
// source and device.
func TestSpoolOfEarlierVersionDrains(t *testing.T) {
	db := testserver.StartInfluxDB(t)
	postLines(t, db, []byte("water,dev_eui=x,source=s level=1.5 1\n")) // level is a float
	dir := t.TempDir()
	for _, name := range []string{"00000000000000000001.seg", "ack"} {
		b, err := os.ReadFile(filepath.Join("testdata", "spool-c3a6144", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	sp := openSpool(t, dir)
	defer sp.Close()
	if p := sp.Stats().Pending; p != 20 {
		t.Fatalf("the fixture holds %d records, want 20", p)
	}
	dl := &memDL{}
	s, stop := runSpooled(t, cfgFor(db.URL(), db.Bucket()), sp, dl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	if n := db.Count(t, "uplink"); n != 20 {
		t.Fatalf("InfluxDB holds %d uplink points, want 20", n)
	}
	if n := countOf2(t, db, "water", "level"); n != 1+19 {
		t.Fatalf("InfluxDB holds %d water points, want 20", n)
	}
	dls := dl.all()
	if len(dls) != 1 || dls[0].DevEUI != "0000000000000013" || dls[0].Source != "old-feed" || dls[0].Reason != gateway.ReasonRejected ||
		!strings.HasPrefix(string(dls[0].Raw), "uplink,dev_eui=0000000000000013,device=d13,source=old-feed f_cnt=13i") {
		t.Fatalf("dead letters %+v", dls)
	}
}

// TestDelivererReusesReadBuffers: draining a backlog of many chunks,
// with MaxInFlight batches under way, delivery reads every chunk into
// one of MaxInFlight buffers; a reader that found no free buffer when a
// slot came free would allocate (and clear) a fresh one per chunk.
func TestDelivererReusesReadBuffers(t *testing.T) {
	db := testserver.StartInfluxDB(t)
	sp := openSpool(t, t.TempDir())
	defer sp.Close()
	cfg := cfgFor(db.URL(), db.Bucket())
	cfg.BatchSize = 10
	s := newSpooled(t, cfg, sp, &memDL{})
	s.chunk = 10 // full chunks of one batch each: the pipelined path
	const n = 600
	spoolPoints(t, s, n)
	drainBacklog(t, s)
	if got := db.Count(t, "air"); got != n {
		t.Fatalf("InfluxDB holds %d points, want %d", got, n)
	}
	if got, most := s.buffers.Load(), int64(s.c.cfg.MaxInFlight); got > most {
		t.Fatalf("delivery allocated %d read buffers for %d chunks, want at most MaxInFlight = %d", got, n/10, most)
	}
}

// TestBatchBytesBoundsRequests: influx.batch_bytes ends a write request
// once it holds that many bytes, so a backlog of small messages leaves
// in requests of about batch_bytes each, none passing it by more than
// its last message, and a message larger than batch_bytes is sent whole
// and stored.
func TestBatchBytesBoundsRequests(t *testing.T) {
	db := testserver.StartInfluxDB(t)
	px := testserver.StartInfluxProxy(t, db.URL(), nil)
	sp := openSpool(t, t.TempDir())
	defer sp.Close()
	cfg := cfgFor(px.URL, db.Bucket())
	cfg.BatchBytes = MinBatchBytes
	s := newSpooled(t, cfg, sp, &memDL{})
	ctx := context.Background()

	const small = 2000 // one point each, about 130 bytes
	var largest, total int
	var bigLines, bigBytes int
	for i := range small {
		pt := point(fmt.Sprintf("rec-%d", i%50), i, float64(i))
		line, err := AppendPoint(nil, pt)
		if err != nil {
			t.Fatal(err)
		}
		largest, total = max(largest, len(line)), total+len(line)
		if err := s.Write(ctx, []gateway.Point{pt}); err != nil {
			t.Fatal(err)
		}
		if i == small/2 {
			// One message of 700 points, larger than batch_bytes.
			big := make([]gateway.Point, 700)
			for j := range big {
				big[j] = point("big", small+j, float64(j))
			}
			var b []byte
			for _, p := range big {
				if b, err = AppendPoint(b, p); err != nil {
					t.Fatal(err)
				}
			}
			if len(b) <= cfg.BatchBytes {
				t.Fatalf("the large message is %d bytes, not larger than batch_bytes %d", len(b), cfg.BatchBytes)
			}
			bigLines, bigBytes, total = len(big), len(b), total+len(b)
			if err := s.Write(ctx, big); err != nil {
				t.Fatal(err)
			}
		}
	}
	drainBacklog(t, s)
	if got, want := db.Count(t, "air"), small+bigLines; got != want {
		t.Fatalf("InfluxDB holds %d points, want %d", got, want)
	}
	var sent, withBig int
	for _, r := range px.Requests() {
		sent += r.Bytes
		switch {
		case r.Lines >= bigLines:
			// The large message, whole, after less than batch_bytes of others.
			withBig++
			if r.Bytes >= cfg.BatchBytes+bigBytes {
				t.Errorf("request %d: %d bytes in %d lines, past batch_bytes %d by more than the large message (%d bytes)", r.N, r.Bytes, r.Lines, cfg.BatchBytes, bigBytes)
			}
		case r.Bytes >= cfg.BatchBytes+largest:
			t.Errorf("request %d: %d bytes in %d lines, past batch_bytes %d by more than one message (%d bytes)", r.N, r.Bytes, r.Lines, cfg.BatchBytes, largest)
		}
	}
	if withBig != 1 {
		t.Errorf("the large message went in %d requests, want 1", withBig)
	}
	// Without the bound the backlog would leave in one or two requests
	// (batch_size is 5,000 lines).
	if reqs, least := len(px.Requests()), total/(cfg.BatchBytes+bigBytes); reqs < least || sent < total {
		t.Errorf("%d requests of %d bytes in all for %d bytes, want at least %d requests and every byte", reqs, sent, total, least)
	}
}

// TestBacklogDoesNotLinger: a backlog of many chunks leaves in requests
// back to back. flush_interval (an hour here) spaces the reads of a
// trickle only: were a read that stopped at batch_bytes taken for the
// end of the spool, each chunk would wait an interval and this backlog
// would take hours.
func TestBacklogDoesNotLinger(t *testing.T) {
	db := testserver.StartInfluxDB(t)
	sp := openSpool(t, t.TempDir())
	defer sp.Close()
	cfg := cfgFor(db.URL(), db.Bucket())
	cfg.FlushInterval, cfg.BatchBytes = time.Hour, MinBatchBytes
	s := newSpooled(t, cfg, sp, &memDL{})
	const n = 4000 // about 480 KB of line protocol: eight chunks
	spoolPoints(t, s, n)
	startSpooled(t, s) // no Drain: it would end the lingering this test is about
	waitFor(t, "the backlog in InfluxDB", 60*time.Second, func() bool { return db.Count(t, "air") == n })
}
