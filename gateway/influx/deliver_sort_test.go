package influx

import (
	"context"
	"encoding/json"
	"fmt"
	"math/bits"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/spool"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// gatedDL is a dead-letter store that keeps nothing until its gate
// opens: a stand-in for a slow or stuck disk, so a test can see what
// flows while refused records cannot be kept yet.
type gatedDL struct {
	gate chan struct{}
	memDL
}

func newGatedDL() *gatedDL { return &gatedDL{gate: make(chan struct{})} }

func (g *gatedDL) Put(ctx context.Context, dl gateway.DeadLetter) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.memDL.Put(ctx, dl)
}

func (g *gatedDL) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.dls)
}

// countOf asks InfluxDB how many values field v of measurement m holds.
func countOf(t *testing.T, db *testserver.InfluxDB, m string) int {
	t.Helper()
	return countOf2(t, db, m, "v")
}

// poll checks cond every 50 ms until it holds or the deadline passes;
// gentler on InfluxDB than waitFor when cond is a query.
func poll(t *testing.T, what string, deadline time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("not within %s: %s", deadline, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// openQuickSpool opens a spool that syncs once a second: quick to fill
// with many records, for tests where durability is not under test.
func openQuickSpool(t testing.TB, dir string) *spool.Spool {
	t.Helper()
	sp, err := spool.Open(spool.Config{Dir: dir, Fsync: "1s"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// spoolLines appends one record per line, from several goroutines so
// that commits gather many records; the order within lines is not kept.
func spoolLines(t *testing.T, sp *spool.Spool, lines []string) {
	t.Helper()
	const appenders = 16
	var wg sync.WaitGroup
	errs := make(chan error, appenders)
	for a := range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := a; i < len(lines); i += appenders {
				if err := sp.Append(context.Background(), []byte(lines[i])); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// poisonLines are n records whose field v is a float, for a series where
// v is an integer: InfluxDB refuses each with a field type conflict.
func poisonLines(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("poison,dev_eui=p%06d,source=t v=%d.5 %d\n", i%1000, i, 1_000_000_000+i)
	}
	return out
}

func goodLines(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("good,dev_eui=g%03d,source=t v=%di %d\n", i%100, i, 1_000_000_000+i)
	}
	return out
}

// log2 rounds up.
func log2(n int) int { return bits.Len(uint(n - 1)) }

// TestSpooledPoisonDoesNotBlock is issue 16's head-of-line case: 100,000
// records InfluxDB refuses (field type conflicts) are spooled ahead of
// 10,000 good ones. The good ones land while not one refused record has
// been kept yet (the dead-letter store is held shut), nothing is
// acknowledged in the spool past a refused record before it is kept, then
// every refused record becomes a dead letter, and all of it takes
// O(batches · log batch_size) write requests, counted by a proxy in front
// of the real InfluxDB.
func TestSpooledPoisonDoesNotBlock(t *testing.T) {
	const poison, good = 100_000, 10_000
	db := testserver.StartInfluxDB(t)
	postLines(t, db, []byte("poison,dev_eui=p000000,source=t v=1i 1\n")) // v is an integer from now on
	px := testserver.StartInfluxProxy(t, db.URL(), nil)

	sp := openQuickSpool(t, t.TempDir())
	defer sp.Close()
	start := time.Now()
	bad := poisonLines(poison)
	spoolLines(t, sp, bad)
	spoolLines(t, sp, goodLines(good))
	t.Logf("spooled %d records in %v", poison+good, time.Since(start))
	size := 0
	for _, l := range bad {
		size += len(l)
	}
	if size > defaultSortMax {
		t.Fatalf("the refused records (%d bytes) exceed what the sorting lane holds (%d): the test would measure the lane's bound", size, defaultSortMax)
	}

	dl := newGatedDL()
	cfg := cfgFor(px.URL, db.Bucket())
	s, stop := runSpooled(t, cfg, sp, dl)
	start = time.Now()
	poll(t, "the good records stored behind 100,000 refused ones", 30*time.Second, func() bool { return countOf(t, db, "good") == good })
	t.Logf("the good records stored %v after delivery started", time.Since(start))
	if n := dl.count(); n != 0 {
		t.Fatalf("%d dead letters kept through a shut store", n)
	}
	if p := sp.Stats().Pending; p != poison+good {
		t.Fatalf("spool has %d records pending, want %d: nothing after a refused record may be acknowledged before it is kept", p, poison+good)
	}

	close(dl.gate)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	letters := dl.all()
	seen := make(map[string]bool, len(letters))
	for _, l := range letters {
		if l.Reason != gateway.ReasonRejected || l.Source != "t" || !strings.HasPrefix(l.DevEUI, "p") || !strings.Contains(l.Detail, "field type conflict") {
			t.Fatalf("dead letter %+v, want a refused poison record", l)
		}
		seen[string(l.Raw)] = true
	}
	if len(letters) != poison || len(seen) != poison {
		t.Fatalf("%d dead letters (%d distinct), want each of the %d refused records once", len(letters), len(seen), poison)
	}
	if n := countOf(t, db, "poison"); n != 1 {
		t.Fatalf("InfluxDB holds %d poison points, want only the first", n)
	}
	if n := countOf(t, db, "good"); n != good {
		t.Fatalf("InfluxDB holds %d good points, want %d", n, good)
	}
	// Each batch: one request, and when refused in part, a halving per
	// level of a bisection on each side of the boundary.
	batches := (poison + good + DefaultBatchSize - 1) / DefaultBatchSize
	reqs := len(px.Requests())
	if most := batches * 2 * (log2(DefaultBatchSize) + 1); reqs > most {
		t.Fatalf("%d write requests for %d batches, want at most %d (O(batches · log n))", reqs, batches, most)
	}
	t.Logf("%d write requests for %d records (%d refused)", reqs, poison+good, poison)
}

// TestSpooledSortsOutScatteredRefusals: a few refused records scattered
// among good ones in one batch are found by halving, in O(k log n)
// requests rather than one per record; only they become dead letters.
func TestSpooledSortsOutScatteredRefusals(t *testing.T) {
	const n = 4000
	db := testserver.StartInfluxDB(t)
	postLines(t, db, []byte("mixed,dev_eui=x,source=t v=1i 1\n"))
	px := testserver.StartInfluxProxy(t, db.URL(), nil)
	sp := openQuickSpool(t, t.TempDir())
	defer sp.Close()
	badAt := map[int]bool{17: true, 1234: true, 1235: true, 3999: true}
	var lines []byte
	for i := range n {
		v := fmt.Sprintf("%di", i)
		if badAt[i] {
			v = fmt.Sprintf("%d.5", i)
		}
		lines = fmt.Appendf(lines, "mixed,dev_eui=d%04d,source=t v=%s %d\n", i, v, 1000+i)
	}
	// One record per line, in order.
	for _, l := range strings.SplitAfter(string(lines), "\n") {
		if l != "" {
			if err := sp.Append(context.Background(), []byte(l)); err != nil {
				t.Fatal(err)
			}
		}
	}
	dl := &memDL{}
	s, stop := runSpooled(t, cfgFor(px.URL, db.Bucket()), sp, dl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	got := map[string]bool{}
	for _, l := range dl.all() {
		got[l.DevEUI] = true
	}
	if len(got) != len(badAt) || len(dl.all()) != len(badAt) {
		t.Fatalf("dead letters for %v, want one for each of %v", got, badAt)
	}
	for i := range badAt {
		if !got[fmt.Sprintf("d%04d", i)] {
			t.Fatalf("no dead letter for d%04d; got %v", i, got)
		}
	}
	if c := countOf(t, db, "mixed"); c != 1+n-len(badAt) {
		t.Fatalf("InfluxDB holds %d points, want %d", c, 1+n-len(badAt))
	}
	reqs := len(px.Requests())
	if most := 1 + 2*len(badAt)*(log2(n)+1); reqs > most {
		t.Fatalf("%d write requests to find %d refused records among %d, want at most %d", reqs, len(badAt), n, most)
	}
	t.Logf("%d write requests to find %d refused records among %d", reqs, len(badAt), n)
}

// TestSpooledHoldAcrossRestart: a shutdown while refused records wait for
// the dead-letter store acknowledges nothing from the first of them on;
// the next start reads them again, keeps each as a dead letter once, and
// the good records after them, already stored, are written again
// harmlessly (same points).
func TestSpooledHoldAcrossRestart(t *testing.T) {
	const poison, good = 1000, 200
	db := testserver.StartInfluxDB(t)
	postLines(t, db, []byte("poison,dev_eui=p000000,source=t v=1i 1\n"))
	dir := t.TempDir()
	sp := openQuickSpool(t, dir)
	ctx := context.Background()
	// Good, poison, good: the first good ones may be acknowledged.
	for _, l := range append(append(goodLines(good)[:good/2], poisonLines(poison)...), goodLines(good)[good/2:]...) {
		if err := sp.Append(ctx, []byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	dl := newGatedDL()
	// Chunks of 100 records: the first good ones are a chunk of their own.
	_, stop := runSpooled(t, cfgFor(db.URL(), db.Bucket()), sp, dl, func(d *Deliverer) { d.chunk = good / 2 })
	poll(t, "the good records stored", 30*time.Second, func() bool { return countOf(t, db, "good") == good })
	poll(t, "the records before the refused ones acknowledged", 30*time.Second, func() bool { return sp.Stats().Pending == poison+good/2 })
	stop()
	if p := sp.Stats().Pending; p != poison+good/2 {
		t.Fatalf("after a stop with refused records not yet kept, %d pending, want %d", p, poison+good/2)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}

	sp = openQuickSpool(t, dir)
	defer sp.Close()
	dl2 := &memDL{}
	s, stop2 := runSpooled(t, cfgFor(db.URL(), db.Bucket()), sp, dl2)
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.Drain(dctx); err != nil {
		t.Fatal(err)
	}
	stop2()
	if n := len(dl2.all()); n != poison || dl.count() != 0 {
		t.Fatalf("%d dead letters after the restart (%d before), want %d", n, dl.count(), poison)
	}
	if n := countOf(t, db, "good"); n != good {
		t.Fatalf("InfluxDB holds %d good points, want %d", n, good)
	}
}

// TestSpooledRefusedPointsInLargerRecords: records of two lines, as an
// uplink's are (an uplink point and an air point), where InfluxDB refuses
// only the air point of the first 3,000 (their shard holds temperature
// as an integer) and takes the uplink points. The refusal's suspect lines
// (air points with a float temperature), sent alone and halved, settle
// whole runs per request, so the refused records cost O(log n) requests
// rather than one per record; each becomes a dead letter and the 3,000
// good records land.
func TestSpooledRefusedPointsInLargerRecords(t *testing.T) {
	const poison, good = 3000, 3000
	db := testserver.StartInfluxDB(t)
	old := int64(1_590_000_000_000_000_000) // 2020: a shard of its own
	postLines(t, db, fmt.Appendf(nil, "air,dev_eui=x,source=t temperature=20i %d\n", old-1))
	px := testserver.StartInfluxProxy(t, db.URL(), nil)
	sp := openQuickSpool(t, t.TempDir())
	defer sp.Close()
	ctx := context.Background()
	rec := func(i int, ts int64) []byte {
		return fmt.Appendf(nil, "uplink,dev_eui=d%04d,source=t rssi=-70i,fcnt=%di %d\nair,dev_eui=d%04d,source=t temperature=%d.5 %d\n", i, i, ts, i, i, ts)
	}
	for i := range poison + good {
		ts := int64(1_700_000_000_000_000_000) + int64(i)
		if i < poison {
			ts = old + int64(i)
		}
		if err := sp.Append(ctx, rec(i, ts)); err != nil {
			t.Fatal(err)
		}
	}
	dl := &memDL{}
	s, stop := runSpooled(t, cfgFor(px.URL, db.Bucket()), sp, dl)
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.Drain(dctx); err != nil {
		t.Fatal(err)
	}
	stop()
	seen := map[string]bool{}
	for _, l := range dl.all() {
		seen[l.DevEUI] = true
	}
	if len(dl.all()) != poison || len(seen) != poison {
		t.Fatalf("%d dead letters for %d devices, want one for each of the %d refused records", len(dl.all()), len(seen), poison)
	}
	for i := range poison {
		if !seen[fmt.Sprintf("d%04d", i)] {
			t.Fatalf("no dead letter for d%04d", i)
		}
	}
	if n := countOf2(t, db, "air", "temperature"); n != 1+good {
		t.Fatalf("InfluxDB holds %d air points, want %d", n, 1+good)
	}
	if n := countOf2(t, db, "uplink", "rssi"); n != poison+good {
		t.Fatalf("InfluxDB holds %d uplink points, want %d (a refused record's other points are taken)", n, poison+good)
	}
	lines := 2 * (poison + good)
	batches := (lines + DefaultBatchSize - 1) / DefaultBatchSize
	reqs := len(px.Requests())
	if most := batches * 2 * (log2(DefaultBatchSize) + 1); reqs > most {
		t.Fatalf("%d write requests for %d batches, want at most %d (O(batches · log n))", reqs, batches, most)
	}
	t.Logf("%d write requests for %d records (%d refused)", reqs, poison+good, poison)
}

// countOf2 asks InfluxDB how many values field f of measurement m holds.
func countOf2(t *testing.T, db *testserver.InfluxDB, m, f string) int {
	t.Helper()
	for _, s := range db.Query(t, "SELECT count("+testserver.QuoteIdent(f)+") FROM "+testserver.QuoteIdent(m)) {
		for _, row := range s.Values {
			if n, ok := row[1].(json.Number); ok {
				c, _ := n.Int64()
				return int(c)
			}
		}
	}
	return 0
}

// TestSorterBound: the sorting lane takes refused records up to sortMax
// bytes; past it, delivery waits until the lane is done with a run, and
// nothing is lost meanwhile.
func TestSorterBound(t *testing.T) {
	c, err := newClient(Config{URL: "http://127.0.0.1:1", Bucket: "b"}, zerolog.Nop(), fastTiming)
	if err != nil {
		t.Fatal(err)
	}
	dl := newGatedDL()
	d := NewDeliverer(c, nil, dl, zerolog.Nop())
	d.sortMax = 100
	lane := newSorter(d)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan struct{})
	go func() { defer close(ran); lane.run(ctx) }()

	refused := &refusal{status: 400, msg: "partial write: x dropped=1", all: true}
	run := func(pos spool.Position) *hold {
		line := fmt.Appendf(nil, "m,dev_eui=d%02d v=1.5 %d\n", pos, pos)
		b := &batch{recs: []spool.Record{{Pos: pos, Data: line}, {Pos: pos + 1, Data: line}}, last: pos + 1, done: make(chan struct{})}
		return newHold(b, []error{refused, refused})
	}
	a, b, c3 := run(1), run(3), run(5)
	for _, h := range []*hold{a, b} {
		if err := lane.add(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	added := make(chan error, 1)
	go func() { added <- lane.add(ctx, c3) }()
	waitFor(t, "the third run to wait for room", 10*time.Second, func() bool { return lane.waits.Load() > 0 })
	select {
	case err := <-added:
		t.Fatalf("the lane took %d bytes past its bound of %d (add: %v)", a.size+b.size+c3.size, d.sortMax, err)
	default:
	}
	close(dl.gate)
	if err := <-added; err != nil {
		t.Fatal(err)
	}
	lane.close()
	<-ran
	for _, h := range []*hold{a, b, c3} {
		<-h.b.done
		if !h.b.ok {
			t.Fatalf("hold at %d not resolved", h.recs[0].Pos)
		}
	}
	if n := dl.count(); n != 6 {
		t.Fatalf("%d dead letters, want 6", n)
	}
}
