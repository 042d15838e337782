package devices

import (
	"context"
	"errors"
	"testing"
	"time"
)

func flooded(i int) EUI { return EUI{0xee, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)} }

func rowsIn(t *testing.T, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestHealthTracksRegisteredAllAndUnknownBounded: every registered device
// stays; unregistered ones are capped, the least recently heard evicted
// and counted.
func TestHealthTracksRegisteredAllAndUnknownBounded(t *testing.T) {
	t0 := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	h := NewHealth(3)
	h.SetMaxUnknown(100)
	for i := range 500 {
		h.Observe(Observation{EUI: EUI{1, byte(i >> 8), byte(i)}, Time: t0})
	}
	keep := flooded(0)
	for i := range 1000 {
		h.Observe(Observation{EUI: flooded(i), Time: t0.Add(time.Duration(i) * time.Millisecond), Unknown: true})
		// One unknown device keeps reporting: it is never the least recently heard.
		h.Observe(Observation{EUI: keep, Time: t0.Add(time.Duration(i) * time.Millisecond), Unknown: true})
	}
	devs, unknown, evicted := h.Stats()
	if devs != 600 || unknown != 100 || evicted != 900 {
		t.Fatalf("%d devices, %d unknown, %d evicted; want 600, 100, 900", devs, unknown, evicted)
	}
	if _, ok := h.Get(keep, t0); !ok {
		t.Fatal("the unknown device heard all along was evicted")
	}
	if _, ok := h.Get(flooded(999), t0); !ok {
		t.Fatal("the most recent unknown device is not tracked")
	}
	if _, ok := h.Get(flooded(1), t0); ok {
		t.Fatal("the least recently heard unknown device is still tracked")
	}
	for i := range 500 {
		if _, ok := h.Get(EUI{1, byte(i >> 8), byte(i)}, t0); !ok {
			t.Fatalf("registered device %d evicted", i)
		}
	}
	// Once registered (adopted), a device no longer counts as unknown.
	h.Observe(Observation{EUI: keep, Time: t0.Add(time.Hour)})
	if _, unknown, _ := h.Stats(); unknown != 99 {
		t.Fatalf("%d unknown after adopting one of 100", unknown)
	}
	h.Forget(flooded(999))
	if devs, unknown, _ := h.Stats(); devs != 599 || unknown != 98 {
		t.Fatalf("after Forget: %d devices, %d unknown", devs, unknown)
	}
	// Registered devices that leave the registry count as unknown from
	// their next uplink, within the same limit.
	for i := range 500 {
		h.Observe(Observation{EUI: EUI{1, byte(i >> 8), byte(i)}, Time: t0.Add(2 * time.Hour), Unknown: true})
	}
	if devs, unknown, _ := h.Stats(); devs != 101 || unknown != 100 {
		t.Fatalf("after 500 devices left the registry: %d devices, %d unknown; want 101 (the adopted one too), 100", devs, unknown)
	}
}

// TestStateSavesOnlyChanges: a save writes what changed since the last
// one, deletes rows of evicted entries, and the table never holds more
// than the tracker.
func TestStateSavesOnlyChanges(t *testing.T) {
	ctx := context.Background()
	s, path := openTestStore(t)
	t0 := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	h, u := NewHealth(3), NewUnknowns()
	h.SetMaxUnknown(50)
	u.SetMax(50)
	observe := func(from, to int, at time.Time) {
		for i := from; i < to; i++ {
			h.Observe(Observation{EUI: flooded(i), Time: at, Unknown: true})
			u.Observe(UnknownObservation{EUI: flooded(i), Time: at, Source: "cs", Raw: make([]byte, 5000), Payload: make([]byte, 1000)})
		}
	}
	observe(0, 50, t0)
	if h.PendingChanges() != 50 || u.PendingChanges() != 50 {
		t.Fatalf("pending %d, %d; want 50 each", h.PendingChanges(), u.PendingChanges())
	}
	if err := s.SaveHealth(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveUnknowns(ctx, u); err != nil {
		t.Fatal(err)
	}
	if h.PendingChanges() != 0 || u.PendingChanges() != 0 {
		t.Fatal("changes left after a complete save")
	}
	observe(10, 13, t0.Add(time.Minute)) // three devices heard again
	if h.PendingChanges() != 3 || u.PendingChanges() != 3 {
		t.Fatalf("pending %d, %d after three uplinks; want 3", h.PendingChanges(), u.PendingChanges())
	}
	// A flood evicts every saved device: 50 rows to delete and 50 to
	// write (the three heard again and the flood's last 47), never more
	// however long the flood.
	observe(1000, 11000, t0.Add(2*time.Minute))
	observe(10, 13, t0.Add(3*time.Minute))
	if p := h.PendingChanges(); p != 100 {
		t.Fatalf("%d changes pending after the flood, want 100", p)
	}
	// A save cut short by its deadline keeps what it did not write.
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.SaveHealth(done, h); !errors.Is(err, context.Canceled) {
		t.Fatalf("save with an ended context: %v", err)
	}
	if p := h.PendingChanges(); p != 100 {
		t.Fatalf("%d changes pending after a cancelled save, want 100", p)
	}
	for _, save := range []func(context.Context) error{
		func(ctx context.Context) error { return s.SaveHealth(ctx, h) },
		func(ctx context.Context) error { return s.SaveUnknowns(ctx, u) },
	} {
		if err := save(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n, m := rowsIn(t, s, "health"), rowsIn(t, s, "unknown_devices"); n != 50 || m != 50 {
		t.Fatalf("%d health rows, %d unknown rows; want 50 each", n, m)
	}
	s2 := reopenTestStore(t, s, path)
	h2, u2 := NewHealth(3), NewUnknowns()
	h2.SetMaxUnknown(20)
	u2.SetMax(20)
	if err := s2.LoadHealth(ctx, h2); err != nil {
		t.Fatal(err)
	}
	if err := s2.LoadUnknowns(ctx, u2); err != nil {
		t.Fatal(err)
	}
	// A smaller limit keeps the most recently heard and deletes the rest.
	if _, unknown, _ := h2.Stats(); unknown != 20 || u2.Len() != 20 {
		t.Fatalf("loaded %d health, %d unknown devices into limits of 20", unknown, u2.Len())
	}
	for i := 10; i < 13; i++ {
		if _, ok := u2.Get(flooded(i)); !ok {
			t.Fatalf("the most recently heard device %d was not loaded", i)
		}
	}
	d, _ := u2.Get(flooded(10))
	if len(d.LastRaw) != maxUnknownRaw || len(d.LastPayload) != maxUnknownPayload {
		t.Fatalf("kept %d raw and %d payload bytes", len(d.LastRaw), len(d.LastPayload))
	}
	if err := s2.SaveHealth(ctx, h2); err != nil {
		t.Fatal(err)
	}
	if err := s2.SaveUnknowns(ctx, u2); err != nil {
		t.Fatal(err)
	}
	if n, m := rowsIn(t, s2, "health"), rowsIn(t, s2, "unknown_devices"); n != 20 || m != 20 {
		t.Fatalf("%d health rows, %d unknown rows after the save; want 20 each", n, m)
	}
}

// TestSeriesGuard: per source, at most max unregistered devices in all and
// perMinute new ones a minute; admitted ones stay admitted, across a
// restart too, unless registered since.
func TestSeriesGuard(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	g := NewSeriesGuard(10, 4)
	g.now = func() time.Time { return now }
	admit := func(source string, from, to int) (ok, refused int) {
		for i := from; i < to; i++ {
			if err := g.Admit(source, flooded(i)); err == nil {
				ok++
			} else if errors.Is(err, ErrSeriesLimit) {
				refused++
			} else {
				t.Fatal(err)
			}
		}
		return ok, refused
	}
	if ok, refused := admit("a", 0, 6); ok != 4 || refused != 2 {
		t.Fatalf("burst: %d admitted, %d refused; want 4, 2 (4 a minute)", ok, refused)
	}
	if ok, _ := admit("a", 0, 4); ok != 4 {
		t.Fatal("an admitted device was refused")
	}
	if ok, _ := admit("b", 100, 104); ok != 4 {
		t.Fatal("the rate of one source held back another")
	}
	now = now.Add(30 * time.Second) // two more
	if ok, _ := admit("a", 4, 10); ok != 2 {
		t.Fatalf("%d admitted after half a minute, want 2", ok)
	}
	for range 3 {
		now = now.Add(time.Minute)
		admit("a", 6, 100)
	}
	if ok, refused := admit("a", 100, 200); ok != 0 || refused != 100 {
		t.Fatalf("past the limit: %d admitted, %d refused", ok, refused)
	}
	st := map[string]SeriesStats{}
	for _, s := range g.Stats() {
		st[s.Source] = s
	}
	if st["a"].Admitted != 10 || st["b"].Admitted != 4 {
		t.Fatalf("stats %+v", st)
	}

	s, path := openTestStore(t)
	if err := s.SaveSeries(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSeries(ctx, g); err != nil || rowsIn(t, s, "unknown_series") != 14 {
		t.Fatalf("%d rows (%v), want 14", rowsIn(t, s, "unknown_series"), err)
	}
	if err := s.Create(ctx, Device{EUI: flooded(0), Name: "adopted"}); err != nil {
		t.Fatal(err)
	}
	s2 := reopenTestStore(t, s, path)
	g2 := NewSeriesGuard(10, 1000)
	if err := s2.LoadSeries(ctx, g2); err != nil {
		t.Fatal(err)
	}
	g = g2
	// Nine kept, the adopted one's place is free: one new device fits.
	if ok, _ := admit("a", 1, 10); ok != 9 {
		t.Fatal("a device admitted before the restart was refused")
	}
	if ok, _ := admit("a", 500, 510); ok != 1 {
		t.Fatalf("%d new devices admitted after the restart, want 1", ok)
	}
}

// TestSaveRaceWithEviction: an entry evicted while its row is being
// written has the row deleted by the next save; the table never keeps
// rows of evicted entries.
func TestSaveRaceWithEviction(t *testing.T) {
	ctx := context.Background()
	s, _ := openTestStore(t)
	t0 := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	h := NewHealth(3)
	h.SetMaxUnknown(10)
	for i := range 10 {
		h.Observe(Observation{EUI: flooded(i), Time: t0, Unknown: true})
	}
	b, err := h.takeChanges(saveBatch)
	if err != nil || len(b.rows) != 10 {
		t.Fatalf("took %d rows (%v)", len(b.rows), err)
	}
	for i := 100; i < 110; i++ { // evicts all ten while their rows are in flight
		h.Observe(Observation{EUI: flooded(i), Time: t0, Unknown: true})
	}
	if err := s.writeStates(ctx, "health", b); err != nil {
		t.Fatal(err)
	}
	h.settle(b, true)
	if err := s.SaveHealth(ctx, h); err != nil {
		t.Fatal(err)
	}
	if n := rowsIn(t, s, "health"); n != 10 {
		t.Fatalf("%d health rows for 10 tracked devices", n)
	}
}

// BenchmarkSaveHealth10k: the save at shutdown of a city's 30 s of
// changes (100,000 devices reporting every 5 minutes change 10,000).
func BenchmarkSaveHealth10k(b *testing.B) {
	ctx := context.Background()
	s, err := OpenStore(ctx, b.TempDir()+"/registry.db", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	h := NewHealth(3)
	t0 := time.Now()
	for b.Loop() {
		b.StopTimer()
		t0 = t0.Add(time.Minute)
		for i := range 10000 {
			h.Observe(Observation{EUI: flooded(i), Time: t0, FCnt: uint32(i), HasFCnt: true, RSSI: -90, HasRSSI: true})
		}
		b.StartTimer()
		if err := s.SaveHealth(ctx, h); err != nil {
			b.Fatal(err)
		}
	}
}
