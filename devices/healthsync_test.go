package devices

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorgate/sensorgate/internal/testserver"
)

// sharedHealthGroup is n instances' Health, each with its own Store on
// one PostgreSQL database, as n daemons with registry.driver postgres.
type sharedHealthGroup struct {
	stores []*Store
	health []*Health
}

func newSharedHealthGroup(t *testing.T, db storeDB, n int) *sharedHealthGroup {
	t.Helper()
	g := &sharedHealthGroup{}
	for range n {
		s := db.open(t, nil)
		h := NewHealth(0)
		shared, err := s.ShareHealth(context.Background(), h)
		if err != nil || !shared {
			t.Fatalf("share health: %v (shared %v)", err, shared)
		}
		g.stores, g.health = append(g.stores, s), append(g.health, h)
	}
	return g
}

// sync runs every instance's periodic sync once.
func (g *sharedHealthGroup) sync(t *testing.T) {
	t.Helper()
	for i, s := range g.stores {
		if err := s.SyncHealth(context.Background(), g.health[i]); err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
}

// TestSharedHealthSplitFleet: a fleet's uplinks split at random between
// two or three instances sharing a PostgreSQL registry. With no frame lost
// every instance reports 0 % loss and every uplink for every device; with
// 10 % of the frames never delivered (dropped at the broker) every
// instance reports 10 % ± 1 over the fleet, and per device exactly the
// frames missing between its first and last heard counter. The uplinks
// span three hours, so gaps across hour boundaries count too, and the
// instances sync every few hundred uplinks as the daemons' timers do.
func TestSharedHealthSplitFleet(t *testing.T) {
	const (
		fleet  = 120
		frames = 150
	)
	for _, tc := range []struct {
		instances int
		drop      float64
	}{{2, 0}, {3, 0}, {2, 0.1}, {3, 0.1}} {
		t.Run(fmt.Sprintf("%d instances, %.0f%% dropped", tc.instances, 100*tc.drop), func(t *testing.T) {
			db := newStoreDB(t, DriverPostgres)
			first := db.open(t, nil)
			var devs []Device
			for i := range fleet {
				devs = append(devs, Device{EUI: EUI{0x70, 0, byte(i >> 8), byte(i)}, Name: fmt.Sprint("dev-", i), Model: "m"})
			}
			if _, _, err := first.Upsert(context.Background(), devs); err != nil {
				t.Fatal(err)
			}
			g := newSharedHealthGroup(t, db, tc.instances)
			rng := rand.New(rand.NewPCG(17, uint64(tc.instances)))
			now := time.Now().UTC().Truncate(time.Second)
			start := now.Add(-3 * time.Hour)
			step := 3 * time.Hour / frames
			type want struct {
				received, lost int
				last           time.Time // of the last frame, when it was received
			}
			wants := map[EUI]*want{}
			var received, lost int
			for f := range frames {
				for _, d := range devs {
					w := wants[d.EUI]
					if w == nil {
						w = &want{}
						wants[d.EUI] = w
					}
					if rng.Float64() < tc.drop {
						continue
					}
					w.received++
					if f == frames-1 {
						w.last = start.Add(time.Duration(f) * step)
					}
					g.health[rng.IntN(tc.instances)].Observe(Observation{EUI: d.EUI, Time: start.Add(time.Duration(f) * step), Name: d.Name, Model: "m",
						Source: "cs", FCnt: uint32(1000 + f), HasFCnt: true, RSSI: -100, HasRSSI: true})
				}
				if f%40 == 39 {
					g.sync(t)
				}
			}
			// The expected loss per device: counters missing between its
			// first and last received one (a drop at either end is not
			// visible to anyone).
			rng = rand.New(rand.NewPCG(17, uint64(tc.instances)))
			seen := map[EUI][]bool{}
			for range frames {
				for _, d := range devs {
					drop := rng.Float64() < tc.drop
					seen[d.EUI] = append(seen[d.EUI], !drop)
					if !drop {
						rng.IntN(tc.instances)
					}
				}
			}
			for e, s := range seen {
				lo, hi := -1, -1
				for i, ok := range s {
					if ok {
						if lo < 0 {
							lo = i
						}
						hi = i
					}
				}
				wants[e].lost = (hi - lo + 1) - wants[e].received
				received += wants[e].received
				lost += wants[e].lost
			}
			g.sync(t)
			g.sync(t) // the last writer's rows reach the instances that synced before it

			at := now.Add(time.Minute)
			for i, h := range g.health {
				var gotUplinks, gotLost int
				for _, d := range devs {
					r, ok := h.Get(d.EUI, at)
					if !ok {
						t.Fatalf("instance %d: no health for %s", i, d.Name)
					}
					w := wants[d.EUI]
					if r.Uplinks24h != w.received || r.Lost24h != w.lost {
						t.Errorf("instance %d, %s: uplinks %d lost %d, want %d and %d", i, d.Name, r.Uplinks24h, r.Lost24h, w.received, w.lost)
					}
					if tc.drop == 0 && r.LossPct != 0 {
						t.Errorf("instance %d, %s: loss %.2f%%, want 0", i, d.Name, r.LossPct)
					}
					if !w.last.IsZero() && (r.Silent || !r.LastSeen.Equal(w.last)) || r.Name != d.Name {
						t.Errorf("instance %d, %s: silent %v last seen %s name %q; want heard at %s", i, d.Name, r.Silent, r.LastSeen, r.Name, w.last)
					}
					gotUplinks += r.Uplinks24h
					gotLost += r.Lost24h
				}
				pct := 100 * float64(gotLost) / float64(gotUplinks+gotLost)
				if math.Abs(pct-100*tc.drop) > 1 {
					t.Errorf("instance %d: fleet loss %.2f%%, want %.0f%% ± 1", i, pct, 100*tc.drop)
				}
				t.Logf("instance %d: %d uplinks, %d lost: %.2f%% (want %d, %d)", i, gotUplinks, gotLost, pct, received, lost)
			}
		})
	}
}

// TestSharedHealthRedeliveryAndCounts: a frame handled by two instances
// (redelivered after a failover) counts once; uplinks without a frame
// counter and dead letters are added across instances; a forgotten
// device's rows go from the shared tables.
func TestSharedHealthRedeliveryAndCounts(t *testing.T) {
	db := newStoreDB(t, DriverPostgres)
	g := newSharedHealthGroup(t, db, 2)
	a, b := g.health[0], g.health[1]
	e := EUI{0x70, 9}
	t0 := time.Now().UTC().Add(-10 * time.Minute)
	a.Observe(Observation{EUI: e, Time: t0, FCnt: 7, HasFCnt: true})
	b.Observe(Observation{EUI: e, Time: t0, FCnt: 7, HasFCnt: true})
	a.Observe(Observation{EUI: e, Time: t0.Add(time.Minute), FCnt: 8, HasFCnt: true, DeadLetter: "decode_error"})
	b.Observe(Observation{EUI: e, Time: t0.Add(2 * time.Minute)})
	a.Observe(Observation{EUI: e, Time: t0.Add(3 * time.Minute)})
	g.sync(t)
	g.sync(t)
	for i, h := range g.health {
		r, _ := h.Get(e, t0.Add(4*time.Minute))
		if r.Uplinks24h != 4 || r.Lost24h != 0 || r.DeadLetters24h != 1 || r.LastDeadLetter != "decode_error" {
			t.Errorf("instance %d: %+v: want 4 uplinks (frames 7 and 8, two without a counter), 0 lost, 1 dead letter", i, r)
		}
	}
	a.Forget(e)
	g.sync(t)
	var n int
	for _, table := range []string{"health_devices", "health_frames", "health_hours"} {
		var c int
		if err := g.stores[0].db.QueryRowContext(context.Background(), "SELECT count(*) FROM "+table).Scan(&c); err != nil {
			t.Fatal(err)
		}
		n += c
	}
	if n != 0 {
		t.Errorf("%d rows left of a forgotten device", n)
	}
}

// TestSharedHealthWithoutPostgres: while PostgreSQL refuses connections
// an instance keeps counting its own uplinks in memory, every sync fails
// with an error that says so and is counted, and the changes wait; once
// PostgreSQL answers again the next sync writes them and the instances
// agree.
func TestSharedHealthWithoutPostgres(t *testing.T) {
	db := newStoreDB(t, DriverPostgres)
	g := newSharedHealthGroup(t, db, 2)
	a, b := g.health[0], g.health[1]
	e := EUI{0x70, 10}
	t0 := time.Now().UTC().Add(-10 * time.Minute)
	a.Observe(Observation{EUI: e, Time: t0, FCnt: 1, HasFCnt: true})
	g.sync(t)

	name := dbName(t, db.opts.DSN)
	testserver.PostgresAdminExec(t, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS false")
	testserver.PostgresAdminExec(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '"+name+"'")
	b.Observe(Observation{EUI: e, Time: t0.Add(time.Minute), FCnt: 2, HasFCnt: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := g.stores[1].SyncHealth(ctx, b)
	cancel()
	if err == nil {
		t.Fatal("sync succeeded with PostgreSQL refusing connections")
	}
	t.Logf("sync while PostgreSQL refuses connections: %v", err)
	st, _ := b.ShareStats()
	if st.Failures != 1 || st.Pending != 1 {
		t.Errorf("stats %+v: want 1 failure and 1 device pending", st)
	}
	if r, _ := b.Get(e, t0.Add(2*time.Minute)); r.Uplinks24h != 2 || r.LastFCnt == nil || *r.LastFCnt != 2 {
		t.Errorf("instance B while PostgreSQL is away: %+v: want A's frame of before and its own", r)
	}

	testserver.PostgresAdminExec(t, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true")
	// A pooled connection PostgreSQL ended fails its next statement and
	// is then replaced: a sync or two may still fail.
	for i, s := range g.stores {
		var err error
		for range 5 {
			if err = s.SyncHealth(context.Background(), g.health[i]); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("instance %d after PostgreSQL came back: %v", i, err)
		}
	}
	g.sync(t)
	for i, h := range g.health {
		if r, _ := h.Get(e, t0.Add(2*time.Minute)); r.Uplinks24h != 2 || r.Lost24h != 0 {
			t.Errorf("instance %d after PostgreSQL came back: %d uplinks, %d lost; want 2 and 0", i, r.Uplinks24h, r.Lost24h)
		}
	}
}

func dbName(t *testing.T, dsn string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Database
}

// TestSharedHealthBounds: one device-hour's frame set holds at most
// maxFrameBlocks blocks, whatever counters a device makes up; the rest
// is counted.
func TestSharedHealthBounds(t *testing.T) {
	h := NewHealth(0)
	h.Share()
	e := EUI{0x70, 11}
	t0 := time.Now().UTC().Truncate(time.Hour)
	for i := range 10 * maxFrameBlocks {
		h.Observe(Observation{EUI: e, Time: t0.Add(time.Duration(i) * time.Millisecond), FCnt: uint32(i) * 977, HasFCnt: true})
	}
	h.mu.Lock()
	st, _ := h.lookup(e)
	n := 0
	for i := range st.sh.frames {
		n += len(st.sh.frames[i].blocks)
	}
	h.mu.Unlock()
	stats, _ := h.ShareStats()
	if n > maxFrameBlocks || stats.Overflow == 0 {
		t.Errorf("%d blocks, %d overflowed: want at most %d", n, stats.Overflow, maxFrameBlocks)
	}
}

// TestSharedHealthJournalSurvivesAKill: frames an instance took but had
// not yet written to the shared tables when it was killed are replayed
// from its journal when it starts again, so no instance reports them
// lost; a sync deletes the journal files it wrote.
func TestSharedHealthJournalSurvivesAKill(t *testing.T) {
	db := newStoreDB(t, DriverPostgres)
	g := newSharedHealthGroup(t, db, 2)
	a, b := g.health[0], g.health[1]
	dir := t.TempDir()
	if n, err := a.JournalHealth(dir); err != nil || n != 0 {
		t.Fatalf("journal: %d replayed, %v", n, err)
	}
	e := EUI{0x70, 12}
	t0 := time.Now().UTC().Add(-10 * time.Minute)
	b.Observe(Observation{EUI: e, Time: t0, FCnt: 1, HasFCnt: true})
	a.Observe(Observation{EUI: e, Time: t0.Add(time.Minute), FCnt: 2, HasFCnt: true})
	g.sync(t)
	a.Observe(Observation{EUI: e, Time: t0.Add(2 * time.Minute), FCnt: 3, HasFCnt: true})
	b.Observe(Observation{EUI: e, Time: t0.Add(3 * time.Minute), FCnt: 4, HasFCnt: true})
	a.CloseJournal() // killed: frame 3 never reached PostgreSQL

	restarted := NewHealth(0)
	if _, err := g.stores[0].ShareHealth(context.Background(), restarted); err != nil {
		t.Fatal(err)
	}
	n, err := restarted.JournalHealth(dir)
	if err != nil || n == 0 {
		t.Fatalf("journal after the kill: %d replayed, %v", n, err)
	}
	g.health[0] = restarted
	g.sync(t)
	g.sync(t)
	for i, h := range g.health {
		if r, _ := h.Get(e, t0.Add(4*time.Minute)); r.Uplinks24h != 4 || r.Lost24h != 0 {
			t.Errorf("instance %d: %d uplinks, %d lost; want 4 and 0", i, r.Uplinks24h, r.Lost24h)
		}
	}
	files, err := journalFiles(dir)
	if err != nil || len(files) != 1 {
		t.Errorf("journal files after the syncs: %v, %v; want the current one only", files, err)
	}
	restarted.CloseJournal()
}

// TestSharedHealthSettleAfterTheHourMoved: counts written for an hour
// whose slot a newer hour took meanwhile are not taken off the newer
// hour's.
func TestSharedHealthSettleAfterTheHourMoved(t *testing.T) {
	h := NewHealth(0)
	h.Share()
	e := EUI{0x70, 13}
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-25 * time.Hour)
	h.Observe(Observation{EUI: e, Time: t0})
	b, err := h.takeSync(10)
	if err != nil {
		t.Fatal(err)
	}
	h.Observe(Observation{EUI: e, Time: t0.Add(24 * time.Hour)}) // the same slot, a day later
	h.settleSync(b, true)
	if r, _ := h.Get(e, t0.Add(24*time.Hour+time.Minute)); r.Uplinks24h != 1 {
		t.Errorf("%d uplinks in the newer hour, want 1", r.Uplinks24h)
	}
}

// TestSharedHealthWritesDoNotDeadlock: two instances write batches of the
// same devices at the same moment, each listing them in its own order (as
// their health tables do). Their transactions lock the rows in key
// order, so neither fails with PostgreSQL's "deadlock detected".
func TestSharedHealthWritesDoNotDeadlock(t *testing.T) {
	db := newStoreDB(t, DriverPostgres)
	a, b := db.open(t, nil), db.open(t, nil)
	const devs = 300
	batch := func(reverse bool, round int) *syncBatchRows {
		r := &syncBatchRows{}
		for i := range devs {
			if reverse {
				i = devs - 1 - i
			}
			e := EUI{0x70, 0, byte(i >> 8), byte(i)}.String()
			r.devEUIs = append(r.devEUIs, e)
			r.firstSeen, r.lastSeen, r.states = append(r.firstSeen, 1), append(r.lastSeen, int64(round)), append(r.states, "")
			for blk := range 2 {
				r.frameEUIs, r.frameHours, r.frameIdx, r.frameBits = append(r.frameEUIs, e), append(r.frameHours, 100), append(r.frameIdx, int64(blk)), append(r.frameBits, int64(1)<<(round%60))
			}
			r.hourEUIs, r.hourHours, r.noFCnt, r.dead = append(r.hourEUIs, e), append(r.hourHours, 100), append(r.noFCnt, 1), append(r.dead, 0)
		}
		if reverse && round%5 == 0 {
			r.deletes = []string{r.devEUIs[devs-1], r.devEUIs[0]}
		}
		return r
	}
	ctx := context.Background()
	for round := range 40 {
		errs := make(chan error, 2)
		for i, s := range []*Store{a, b} {
			go func() { errs <- s.writeHealthBatch(ctx, batch(i == 1, round)) }()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}
