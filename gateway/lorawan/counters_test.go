package lorawan

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

func TestClaim(t *testing.T) {
	addr, fp := devices.DevAddr{0x26, 1, 2, 3}, [8]byte{1}
	now := time.Unix(1_000_000, 0)
	at := func(last uint32, window uint64, ago time.Duration) []byte {
		return storedCounter{addr: addr, fp: fp, last: last, window: window, seen: now.Add(-ago).UnixMilli()}.encode()
	}
	acceptLow := FrameConfig{FCntReset: FCntResetAcceptLow, FCntResetMax: 16, FCntResetGap: 10 * time.Minute}
	tests := []struct {
		name     string
		stored   []byte
		fp       [8]byte
		full     uint32
		cfg      FrameConfig
		want     claimVerdict
		wantLast uint32
	}{
		{"no state", nil, fp, 7, FrameConfig{}, claimAccepted, 7},
		{"damaged state is none", []byte{9, 9}, fp, 7, FrameConfig{}, claimAccepted, 7},
		{"higher", at(10, 1, time.Second), fp, 11, FrameConfig{}, claimAccepted, 11},
		{"late within the window", at(10, 1, time.Second), fp, 8, FrameConfig{}, claimAccepted, 10},
		{"late frame taken once", at(10, 1|1<<2, 2*lateKeep), fp, 8, FrameConfig{}, claimReplay, 10},
		{"late frame's copy", at(10, 1|1<<2, time.Second), fp, 8, FrameConfig{}, claimDuplicate, 10},
		{"another instance's copy", at(10, 1, time.Second), fp, 10, FrameConfig{}, claimDuplicate, 10},
		{"the same frame much later", at(10, 1, 2*lateKeep), fp, 10, FrameConfig{}, claimReplay, 10},
		{"below the window", at(1000, 1, time.Second), fp, 10, FrameConfig{}, claimReplay, 1000},
		{"new session starts over", at(1000, 1, time.Second), [8]byte{2}, 10, FrameConfig{}, claimAccepted, 10},
		{"restart under accept-low after silence", at(1000, 1, time.Hour), fp, 3, acceptLow, claimAccepted, 3},
		{"restart under accept-low without silence", at(1000, 1, time.Minute), fp, 3, acceptLow, claimReplay, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := claim(tt.stored, addr, tt.fp, claimRec{fcnt: tt.full}, now, tt.cfg)
			got, v := res.state, res.verdict
			if v != tt.want || got.last != tt.wantLast {
				t.Fatalf("verdict %d last %d, want %d %d", v, got.last, tt.want, tt.wantLast)
			}
			if c, ok := decodeCounter(got.encode()); !ok || c != got {
				t.Fatalf("encoding round trip: %+v %v", c, ok)
			}
		})
	}
}

// TestClaimRecords: each accepted frame's record (claimer, uplink time,
// checksum) is kept with the state for a minute, at most maxClaimRecs of
// them; a copy or a replay gets the record of its frame, and a frame
// taken again after a release keeps the time copies may have been
// written at.
func TestClaimRecords(t *testing.T) {
	addr, fp := devices.DevAddr{0x26, 1, 2, 3}, [8]byte{1}
	now := time.Unix(1_000_000, 0)
	a, b := instanceTag("a"), instanceTag("b")
	at := func(fcnt uint32) int64 { return int64(fcnt) * 1e9 }
	rec := func(fc uint32, inst uint32, when time.Time) claimRec {
		return claimRec{fcnt: fc, at: at(fc), inst: inst, sum: uint64(fc), claimed: when.UnixMilli()}
	}
	take := func(st []byte, fc uint32, when time.Time) []byte {
		t.Helper()
		res := claim(st, addr, fp, claimRec{fcnt: fc, at: at(fc), inst: a, sum: uint64(fc)}, when, FrameConfig{})
		if res.verdict != claimAccepted || res.rec != rec(fc, a, when) {
			t.Fatalf("FCnt %d: %+v", fc, res)
		}
		return res.state.encode()
	}
	var st []byte
	for fc := uint32(1); fc <= 2; fc++ {
		st = take(st, fc, now.Add(-lateKeep-time.Second))
	}
	for fc := uint32(3); fc <= 20; fc++ {
		st = take(st, fc, now)
	}
	c, _ := decodeCounter(st)
	if c.nrecs != 18 || c.recs[0].fcnt != 3 || c.recs[17].fcnt != 20 {
		t.Fatalf("records %+v, want 3 to 20: those over a minute old are gone", c.recs[:c.nrecs])
	}
	// B's copy of frame 19 (the same bytes): a duplicate, with A's record.
	res := claim(st, addr, fp, claimRec{fcnt: 19, at: 5, inst: b, sum: 19}, now, FrameConfig{})
	if res.verdict != claimDuplicate || !res.hasRec || res.rec != rec(19, a, now) {
		t.Fatalf("copy of 19: %+v", res)
	}
	// Other bytes with counter 19, within the minute: a replay.
	if res := claim(st, addr, fp, claimRec{fcnt: 19, at: 5, inst: b, sum: 1919}, now, FrameConfig{}); res.verdict != claimReplay {
		t.Fatalf("other bytes with counter 19: %+v", res)
	}
	// Frame 2's record is gone: a duplicate (in the window, while the
	// device talks) without one.
	if res := claim(st, addr, fp, claimRec{fcnt: 2, inst: b, sum: 2}, now, FrameConfig{}); res.verdict != claimDuplicate || res.hasRec {
		t.Fatalf("copy of 2: %+v", res)
	}
	// 18 released (its uplink not taken), then taken by B: A's time stays.
	st = release(st, nil, 18)
	if res := claim(st, addr, fp, claimRec{fcnt: 18, at: 7, inst: b, sum: 18}, now, FrameConfig{}); res.verdict != claimAccepted || res.rec != rec(18, b, now) {
		t.Fatalf("18 taken again: %+v", res)
	}
	// A device sending faster than the window in a minute: the latest
	// maxClaimRecs are kept.
	for fc := uint32(21); fc <= 100; fc++ {
		st = take(st, fc, now)
	}
	if c, _ := decodeCounter(st); c.nrecs != maxClaimRecs || c.recs[0].fcnt != 100-maxClaimRecs+1 || c.recs[maxClaimRecs-1].fcnt != 100 {
		t.Fatalf("%d records, %d to %d", c.nrecs, c.recs[0].fcnt, c.recs[c.nrecs-1].fcnt)
	}
	// A version 1 state (before records) is read as one without records.
	v1 := []byte{1, 0x26, 1, 2, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40}
	if c, ok := decodeCounter(v1); !ok || c.last != 10 || c.nrecs != 0 {
		t.Fatalf("version 1: %+v %v", c, ok)
	}
}

func TestRelease(t *testing.T) {
	addr, fp := devices.DevAddr{1}, [8]byte{1}
	now := time.Unix(1_000_000, 0)
	prev := storedCounter{addr: addr, fp: fp, last: 10, window: 1, seen: 1}.encode()
	took := claim(prev, addr, fp, claimRec{fcnt: 11}, now, FrameConfig{}).state
	if got := release(took.encode(), prev, 11); string(got) != string(prev) {
		t.Errorf("release of the highest: %x, want the previous state %x", got, prev)
	}
	late := claim(prev, addr, fp, claimRec{fcnt: 8}, now, FrameConfig{}).state
	c, _ := decodeCounter(release(late.encode(), prev, 8))
	if c.last != 10 || c.window != 1 {
		t.Errorf("release of a late frame: %+v, want its bit cleared", c)
	}
	first := claim(nil, addr, fp, claimRec{fcnt: 5}, now, FrameConfig{}).state
	if got := release(first.encode(), nil, 5); got == nil || len(got) != 0 {
		t.Errorf("release of the first claim: %x, want the empty state", got)
	}
}

// counterRig is one instance's raw-frame handler on a registry store.
type counterRig struct {
	f        *Frames
	dl       *deadLetters
	counters *gateway.Counters
	store    *devices.Store
}

// openCounterRig opens the rig of the instance named instance (its MQTT
// client id in the daemon).
func openCounterRig(t *testing.T, o devices.StoreOptions, devs []devices.Device, instance string) counterRig {
	t.Helper()
	store, err := devices.Open(context.Background(), o, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if store.Len() == 0 {
		if _, _, err := store.Upsert(context.Background(), devs); err != nil {
			t.Fatal(err)
		}
	}
	f, dl, c := newFrames(t, FrameConfig{}, store.Registry())
	f.UseCounterStore(store, instance)
	return counterRig{f: f, dl: dl, counters: c, store: store}
}

// handle runs one frame past the dedup window and reports whether the
// handler got an uplink (not only the frame's reception: see copies).
func (r counterRig) handle(t *testing.T, phy []byte, h gateway.Handler) (uplink bool, err error) {
	t.Helper()
	_, err = r.f.handleGroup(context.Background(), []Frame{{PHYPayload: phy, Gateway: gateway.GatewayRx{ID: "g1"}, DR: -1}}, time.Now(),
		func(ctx context.Context, up gateway.Uplink) error {
			uplink = !up.GatewayCopies
			if h != nil {
				return h(ctx, up)
			}
			return nil
		})
	return uplink, err
}

// copies is how many frames went on as receptions of an uplink another
// instance took.
func (r counterRig) copies() uint64 { return r.counters.Get("lorawan.copies_written") }

func (r counterRig) replays() int {
	n := 0
	for _, d := range r.dl.all() {
		if d.Reason == gateway.ReasonReplay {
			n++
		}
	}
	return n
}

func counterFleet(t *testing.T) ([]devices.Device, [][]byte) {
	t.Helper()
	fleet, err := simulate.NewSemtechFleet(simulate.SemtechOptions{Devices: 1, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	devs := fleet.Devices()
	frames := make([][]byte, 8)
	for i := range frames {
		if frames[i], err = simulate.EncodeUplink(devs[0].Session, uint32(i+1), 2, []byte{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
	}
	return devs, frames
}

func storeOptions(t *testing.T, driver string) devices.StoreOptions {
	o := devices.StoreOptions{Driver: driver, StateDir: t.TempDir(), Log: zerolog.Nop()}
	if driver == devices.DriverPostgres {
		o.DSN = testserver.PostgresDB(t)
	}
	return o
}

func TestFrameCounterReplayRejectedAfterRestart(t *testing.T) {
	for _, driver := range []string{devices.DriverSQLite, devices.DriverPostgres} {
		t.Run(driver, func(t *testing.T) {
			devs, frames := counterFleet(t)
			o := storeOptions(t, driver)
			first := openCounterRig(t, o, devs, "a")
			for i := 0; i < 5; i++ {
				if up, err := first.handle(t, frames[i], nil); !up || err != nil {
					t.Fatalf("frame %d: uplink %v err %v", i+1, up, err)
				}
			}
			first.store.Close()

			// A new process: the memory is empty, the store is not. The
			// recorded frames come back over a minute later (sooner, they
			// are dropped as other gateways' copies: refused all the same).
			again := openCounterRig(t, o, devs, "a")
			again.f.now = func() time.Time { return time.Now().Add(2 * lateKeep) }
			for _, i := range []int{0, 2, 4} {
				if up, err := again.handle(t, frames[i], nil); up || err != nil {
					t.Fatalf("recorded frame %d replayed after the restart: uplink %v err %v", i+1, up, err)
				}
			}
			if n := again.replays(); n != 3 {
				t.Fatalf("%d replay dead letters, want 3", n)
			}
			if up, err := again.handle(t, frames[5], nil); !up || err != nil {
				t.Fatalf("the next frame after the restart: uplink %v err %v", up, err)
			}
		})
	}
}

func TestFrameCounterSharedByInstances(t *testing.T) {
	devs, frames := counterFleet(t)
	o := storeOptions(t, devices.DriverPostgres)
	a, b := openCounterRig(t, o, devs, "a"), openCounterRig(t, o, devs, "b")
	for i := 0; i < 3; i++ {
		if up, err := a.handle(t, frames[i], nil); !up || err != nil {
			t.Fatalf("A, frame %d: uplink %v err %v", i+1, up, err)
		}
	}
	// The copy of A's last frame another gateway brought to B: its
	// reception only, not an uplink twice and not a dead letter.
	if up, err := b.handle(t, frames[2], nil); up || err != nil || b.replays() != 0 || b.copies() != 1 {
		t.Fatalf("copy of frame 3 on B: uplink %v err %v replays %d copies %d", up, err, b.replays(), b.copies())
	}
	if n := b.counters.Get("lorawan.duplicates_other_instance"); n != 1 {
		t.Fatalf("lorawan.duplicates_other_instance = %d, want 1", n)
	}
	// B never saw the device: an old frame of it, recorded and sent again
	// later, is a replay.
	b.f.now = func() time.Time { return time.Now().Add(2 * lateKeep) }
	if up, err := b.handle(t, frames[1], nil); up || err != nil || b.replays() != 1 {
		t.Fatalf("frame 2 replayed to B: uplink %v err %v replays %d", up, err, b.replays())
	}
	b.f.now = time.Now
	if up, err := b.handle(t, frames[3], nil); !up || err != nil {
		t.Fatalf("frame 4 on B: uplink %v err %v", up, err)
	}
	// A's memory says 3; the store says 4.
	if up, err := a.handle(t, frames[3], nil); up || err != nil {
		t.Fatalf("frame 4 on A after B took it: uplink %v err %v", up, err)
	}
	if up, err := a.handle(t, frames[4], nil); !up || err != nil {
		t.Fatalf("frame 5 on A: uplink %v err %v", up, err)
	}
}

// TestFrameCounterRetakenAfterKill: an instance killed after storing a
// frame's counter and before its uplink was spooled gets the frame again
// from the broker under its client id: the uplink is handled again in
// full, at the stored time, not dropped as a copy; the same frame on
// another instance is still only its reception.
func TestFrameCounterRetakenAfterKill(t *testing.T) {
	for _, driver := range []string{devices.DriverSQLite, devices.DriverPostgres} {
		t.Run(driver, func(t *testing.T) {
			devs, frames := counterFleet(t)
			o := storeOptions(t, driver)
			killed := openCounterRig(t, o, devs, "a")
			fr := Frame{PHYPayload: frames[0], Gateway: gateway.GatewayRx{ID: "g1"}, DR: -1}
			received := time.Now().Add(-time.Second).UTC()
			up, acc, err := killed.f.uplink([]Frame{fr}, received)
			if err != nil {
				t.Fatal(err)
			}
			// The claim is stored; the process dies before the handler.
			if how, _, err := killed.f.storeCounter(context.Background(), fr, &acc, up.Time); how != storedTaken || err != nil {
				t.Fatalf("claim: %v %v", how, err)
			}
			killed.store.Close()

			again := openCounterRig(t, o, devs, "a")
			var got gateway.Uplink
			if ok, err := again.handle(t, frames[0], func(_ context.Context, u gateway.Uplink) error { got = u; return nil }); !ok || err != nil {
				t.Fatalf("redelivery to the same client id: uplink %v err %v", ok, err)
			}
			if !got.Time.Equal(up.Time) || again.counters.Get("lorawan.uplinks_retaken") != 1 {
				t.Fatalf("retaken at %s, want the stored %s; counters %v", got.Time, up.Time, again.counters.Snapshot())
			}
			if driver != devices.DriverPostgres {
				return
			}
			other := openCounterRig(t, o, devs, "b")
			if ok, err := other.handle(t, frames[0], nil); ok || err != nil || other.copies() != 1 {
				t.Fatalf("the frame on another instance: uplink %v err %v copies %d", ok, err, other.copies())
			}
		})
	}
}

// TestFrameCounterCopyAfterMerge: B's memory holds A's claims (merged
// with a later frame's), so its own check calls an older frame's copy a
// replay; the store tells it is a copy, written at A's uplink time, and
// other bytes with that counter are still a replay.
func TestFrameCounterCopyAfterMerge(t *testing.T) {
	devs, frames := counterFleet(t)
	o := storeOptions(t, devices.DriverPostgres)
	a, b := openCounterRig(t, o, devs, "a"), openCounterRig(t, o, devs, "b")
	times := map[uint32]time.Time{}
	record := func(_ context.Context, up gateway.Uplink) error { times[up.FCnt] = up.Time; return nil }
	for i := 0; i < 3; i++ {
		if up, err := a.handle(t, frames[i], record); !up || err != nil {
			t.Fatalf("A, frame %d: uplink %v err %v", i+1, up, err)
		}
	}
	var copies []gateway.Uplink
	keep := func(_ context.Context, up gateway.Uplink) error { copies = append(copies, up); return nil }
	for _, i := range []int{2, 1} { // frame 3's copy merges A's state into B's memory, then frame 2's
		if up, err := b.handle(t, frames[i], keep); up || err != nil {
			t.Fatalf("B, copy of frame %d: uplink %v err %v", i+1, up, err)
		}
	}
	if len(copies) != 2 || !copies[0].Time.Equal(times[3]) || !copies[1].Time.Equal(times[2]) || b.replays() != 0 || b.counters.Get("lorawan.replays") != 0 {
		t.Fatalf("B's copies %+v, want frames 3 and 2 at A's times %v; replays %d", copies, times, b.replays())
	}
	other, err := simulate.EncodeUplink(devs[0].Session, 2, 2, []byte{9, 9, 9})
	if err != nil {
		t.Fatal(err)
	}
	if up, err := b.handle(t, other, nil); up || err != nil || b.replays() != 1 {
		t.Fatalf("other bytes with counter 2 on B: uplink %v err %v replays %d", up, err, b.replays())
	}
}

func TestFrameCounterReleasedWhenUplinkNotTaken(t *testing.T) {
	for _, driver := range []string{devices.DriverSQLite, devices.DriverPostgres} {
		t.Run(driver, func(t *testing.T) {
			devs, frames := counterFleet(t)
			o := storeOptions(t, driver)
			r := openCounterRig(t, o, devs, "a")
			refused := errors.New("spool full")
			if _, err := r.handle(t, frames[0], func(context.Context, gateway.Uplink) error { return refused }); !errors.Is(err, refused) {
				t.Fatalf("err = %v", err)
			}
			r.store.Close()
			// Redelivered after a restart: taken, not a replay or a copy.
			again := openCounterRig(t, o, devs, "a")
			if up, err := again.handle(t, frames[0], nil); !up || err != nil {
				t.Fatalf("redelivery: uplink %v err %v", up, err)
			}
		})
	}
}

// When the counter cannot be stored the frame is neither an uplink nor a
// dead letter: Handle's error leaves it unacknowledged, for redelivery.
func TestFrameCounterStoreUnreachable(t *testing.T) {
	for _, driver := range []string{devices.DriverSQLite, devices.DriverPostgres} {
		t.Run(driver, func(t *testing.T) {
			devs, frames := counterFleet(t)
			r := openCounterRig(t, storeOptions(t, driver), devs, "a")
			r.store.Close()
			up, err := r.handle(t, frames[0], nil)
			if up || err == nil || !strings.Contains(err.Error(), "frame counters not stored") || len(r.dl.all()) != 0 {
				t.Fatalf("uplink %v err %v dead letters %d", up, err, len(r.dl.all()))
			}
		})
	}
}

func TestFrameCounterConcurrentFramesOneWinner(t *testing.T) {
	devs, frames := counterFleet(t)
	o := storeOptions(t, devices.DriverPostgres)
	rigs := []counterRig{openCounterRig(t, o, devs, "a"), openCounterRig(t, o, devs, "b"), openCounterRig(t, o, devs, "c")}
	// Every instance gets every frame at once: each frame becomes one
	// uplink in all, whichever instance wins it, and the others' copies
	// receptions at the winner's time.
	var mu sync.Mutex
	uplinks := map[uint32]int{}
	times := map[uint32]time.Time{}
	copies := map[uint32][]time.Time{}
	var wg sync.WaitGroup
	for _, phy := range frames {
		for _, r := range rigs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := r.handle(t, phy, func(_ context.Context, up gateway.Uplink) error {
					mu.Lock()
					if up.GatewayCopies {
						copies[up.FCnt] = append(copies[up.FCnt], up.Time)
					} else {
						uplinks[up.FCnt]++
						times[up.FCnt] = up.Time
					}
					mu.Unlock()
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	for i := range frames {
		fc := uint32(i + 1)
		if n := uplinks[fc]; n != 1 {
			t.Errorf("FCnt %d: %d uplinks, want exactly 1", fc, n)
		}
		for _, at := range copies[fc] {
			if !at.Equal(times[fc]) {
				t.Errorf("FCnt %d: a copy at %s, the uplink at %s", fc, at, times[fc])
			}
		}
	}
	for _, r := range rigs {
		for _, d := range r.dl.all() {
			if !strings.Contains(d.Detail, "replayed") {
				t.Errorf("dead letter: %+v", d)
			}
		}
	}
}

// FuzzDecodeCounter: a stored state read back from a shared database is
// input like any other; whatever decodes must encode to the same bytes.
func FuzzDecodeCounter(f *testing.F) {
	f.Add(storedCounter{addr: devices.DevAddr{1, 2, 3, 4}, fp: [8]byte{5}, last: 70000, window: 3, seen: 1}.encode())
	withRecs := storedCounter{addr: devices.DevAddr{1, 2, 3, 4}, fp: [8]byte{5}, last: 70000, window: 3, seen: 1}
	withRecs.keep(claimRec{fcnt: 69999, at: 1_700_000_000_000_000_000, inst: instanceTag("a"), sum: frameSum([]byte("frame 69999"))})
	withRecs.keep(claimRec{fcnt: 70000, at: 1_700_000_001_000_000_000, inst: instanceTag("b"), sum: frameSum([]byte("frame 70000"))})
	f.Add(withRecs.encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ok := decodeCounter(b)
		if !ok {
			return
		}
		// Version 1 states (no claim records) are read and rewritten as
		// version 2.
		if got := c.encode(); b[0] == 2 && string(got) != string(b) {
			t.Fatalf("decode(%x) encodes to %x", b, got)
		}
		if again, ok := decodeCounter(c.encode()); !ok || again != c {
			t.Fatalf("decode(%x) = %+v does not survive encoding: %+v %v", b, c, again, ok)
		}
		_ = claim(b, c.addr, c.fp, claimRec{fcnt: c.last + 1}, time.Unix(0, c.seen*1e6), FrameConfig{})
	})
}

// BenchmarkFrameStored measures a frame through handleGroup with its
// counter in memory only, stored in SQLite, and stored in PostgreSQL,
// with 32 frames of 64 devices in flight (a busy gateway feed): the store
// costs a transaction per batch of the frames that arrived meanwhile. The
// frames are encoded in the loop, equally in every case.
func BenchmarkFrameStored(b *testing.B) {
	for _, driver := range []string{"memory", devices.DriverSQLite, devices.DriverPostgres} {
		b.Run(driver, func(b *testing.B) {
			fleet, err := simulate.NewSemtechFleet(simulate.SemtechOptions{Devices: 64, Seed: 3})
			if err != nil {
				b.Fatal(err)
			}
			devs := fleet.Devices()
			var lookup DevAddrLookup
			var f *Frames
			dl := &deadLetters{}
			if driver == "memory" {
				reg, err := devices.NewRegistry(devs)
				if err != nil {
					b.Fatal(err)
				}
				lookup = reg
			} else {
				o := devices.StoreOptions{Driver: driver, StateDir: b.TempDir(), Log: zerolog.Nop()}
				if driver == devices.DriverPostgres {
					o.DSN = testserver.PostgresDB(b)
				}
				store, err := devices.Open(context.Background(), o, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { store.Close() })
				if _, _, err := store.Upsert(context.Background(), devs); err != nil {
					b.Fatal(err)
				}
				lookup = store.Registry()
				f, err = NewFrames("bench", FrameConfig{}, lookup, dl, &gateway.Counters{}, zerolog.Nop())
				if err != nil {
					b.Fatal(err)
				}
				f.UseCounterStore(store, "bench")
			}
			if f == nil {
				if f, err = NewFrames("bench", FrameConfig{}, lookup, dl, &gateway.Counters{}, zerolog.Nop()); err != nil {
					b.Fatal(err)
				}
			}
			var next sync.Mutex
			dev := 0
			ok := func(context.Context, gateway.Uplink) error { return nil }
			b.SetParallelism(16) // 32 goroutines on 2 CPUs
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				next.Lock()
				d := devs[dev%len(devs)]
				dev++
				next.Unlock()
				fcnt := uint32(0)
				for pb.Next() {
					fcnt++
					phy, err := simulate.EncodeUplink(d.Session, fcnt, 2, []byte{1, 0x67, 0, 0xd2})
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := f.handleGroup(context.Background(), []Frame{{PHYPayload: phy, Gateway: gateway.GatewayRx{ID: "g"}, DR: -1}}, time.Now(), ok); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			if n := len(dl.all()); n != 0 {
				b.Fatalf("%d frames dead-lettered (%s): the benchmark must measure accepted frames", n, dl.all()[0].Detail)
			}
		})
	}
}
