package devices

import (
	"context"
	"math"
	"testing"
	"time"
)

func TestHealth(t *testing.T) {
	t0 := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	e := EUI{1}
	obs := func(fcnt uint32, at time.Duration) Observation {
		return Observation{EUI: e, Time: t0.Add(at), Name: "bin-1", Model: "m", Source: "cs", FCnt: fcnt, HasFCnt: true,
			RSSI: -100 - float64(fcnt), HasRSSI: true, SNR: 5, HasSNR: true}
	}
	tests := []struct {
		name        string
		uplinks     []Observation
		now         time.Duration
		uplinks24h  int
		lost        int
		interval    float64
		silent      bool
		deadLetters int
	}{
		{"regular", []Observation{obs(1, 0), obs(2, 10*time.Minute), obs(3, 20*time.Minute)}, 25 * time.Minute, 3, 0, 600, false, 0},
		{"gap of two frames", []Observation{obs(1, 0), obs(4, 30*time.Minute)}, 31 * time.Minute, 2, 2, 600, false, 0},
		{"redelivery counted once", []Observation{obs(1, 0), obs(2, 10*time.Minute), obs(2, 10*time.Minute)}, 11 * time.Minute, 2, 0, 600, false, 0},
		{"silent after 3 intervals", []Observation{obs(1, 0), obs(2, 10*time.Minute)}, 41 * time.Minute, 2, 0, 600, true, 0},
		{"counter reset is not loss", []Observation{obs(500, 0), obs(0, 10*time.Minute), obs(1, 20*time.Minute)}, 21 * time.Minute, 3, 0, 600, false, 0},
		{"huge jump is not loss", []Observation{obs(1, 0), obs(60000, 10*time.Minute)}, 11 * time.Minute, 2, 0, 600, false, 0},
		{"older than a day drops out", []Observation{obs(1, 0), obs(2, 10*time.Minute)}, 25 * time.Hour, 0, 0, 600, true, 0},
		{"dead letters", []Observation{obs(1, 0), func() Observation { o := obs(2, 10*time.Minute); o.DeadLetter = "decode_error"; return o }()}, 11 * time.Minute, 2, 0, 600, false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHealth(3)
			for _, o := range tc.uplinks {
				h.Observe(o)
			}
			r, ok := h.Get(e, t0.Add(tc.now))
			if !ok {
				t.Fatal("no health")
			}
			if r.Uplinks24h != tc.uplinks24h || r.Lost24h != tc.lost || math.Abs(r.Interval-tc.interval) > 1e-6 || r.Silent != tc.silent || r.DeadLetters24h != tc.deadLetters {
				t.Fatalf("got uplinks %d lost %d interval %v silent %v dead %d", r.Uplinks24h, r.Lost24h, r.Interval, r.Silent, r.DeadLetters24h)
			}
			if r.Name != "bin-1" || r.RSSI == nil || r.SNR == nil || r.Source != "cs" {
				t.Fatalf("report %+v", r)
			}
		})
	}

	h := NewHealth(0)
	h.Observe(obs(1, 0))
	h.Observe(obs(5, 40*time.Minute))
	r, _ := h.Get(e, t0.Add(41*time.Minute))
	if r.LossPct != 60 { // 3 lost of 5 frames
		t.Errorf("loss %v%%, want 60", r.LossPct)
	}
	h.Observe(Observation{EUI: e, Time: t0.Add(50 * time.Minute), Battery: 3.6, HasBattery: true, BatteryLevel: 80, HasBatteryLevel: true})
	r, _ = h.Get(e, t0.Add(51*time.Minute))
	if r.Battery == nil || *r.Battery != 3.6 || r.BatteryLevel == nil || *r.BatteryLevel != 80 || r.Name != "bin-1" {
		t.Errorf("battery %+v", r)
	}
}

// TestHealthHourly: the per-hour series ends at the current hour, drops
// hours older than a day and ignores uplinks from a clock ahead of ours.
func TestHealthHourly(t *testing.T) {
	t0 := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	e := EUI{2}
	h := NewHealth(0)
	for i, at := range []time.Duration{0, 5 * time.Minute, 3 * time.Hour, 23*time.Hour + 59*time.Minute, 25 * time.Hour, 26 * time.Hour} {
		h.Observe(Observation{EUI: e, Time: t0.Add(at), FCnt: uint32(i + 1), HasFCnt: true})
	}
	r, _ := h.Get(e, t0.Add(24*time.Hour+30*time.Minute)) // 08:30 the next day
	want := make([]int, 24)
	want[2] = 1  // 11:00 the first day
	want[22] = 1 // 07:59 the next day
	// 08:00-08:05 the first day is 24 hours old and gone; 09:00 and 10:00
	// the next day are in the future.
	if len(r.UplinksHourly) != 24 {
		t.Fatalf("%d hours", len(r.UplinksHourly))
	}
	for i := range want {
		if r.UplinksHourly[i] != want[i] {
			t.Fatalf("hourly %v, want %v", r.UplinksHourly, want)
		}
	}
}

func TestHealthPersists(t *testing.T) {
	ctx := context.Background()
	s, path := openTestStore(t)
	t0 := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	h := NewHealth(3)
	h.Observe(Observation{EUI: EUI{1}, Time: t0, Name: "a", FCnt: 1, HasFCnt: true})
	h.Observe(Observation{EUI: EUI{1}, Time: t0.Add(time.Minute), Name: "a", FCnt: 3, HasFCnt: true})
	if err := s.SaveHealth(ctx, h); err != nil {
		t.Fatal(err)
	}
	s2 := reopenTestStore(t, s, path)
	h2 := NewHealth(3)
	if err := s2.LoadHealth(ctx, h2); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(2 * time.Minute)
	want, _ := h.Get(EUI{1}, now)
	got, ok := h2.Get(EUI{1}, now)
	if !ok || got.Uplinks24h != want.Uplinks24h || got.Lost24h != 1 || got.Interval != want.Interval || !got.LastSeen.Equal(want.LastSeen) {
		t.Fatalf("after reload %+v, want %+v", got, want)
	}
	// The counter continues where it was: frame 4 is no loss.
	h2.Observe(Observation{EUI: EUI{1}, Time: t0.Add(90 * time.Second), FCnt: 4, HasFCnt: true})
	if got, _ := h2.Get(EUI{1}, now); got.Lost24h != 1 || got.Uplinks24h != 3 {
		t.Fatalf("after reload and one more uplink: %+v", got)
	}
}

func TestUnknowns(t *testing.T) {
	u := NewUnknowns()
	t0 := time.Unix(1000, 0)
	e := EUI{3}
	raw := make([]byte, 20000)
	u.Observe(UnknownObservation{EUI: e, Time: t0, Source: "cs", Name: "ns", Payload: []byte{1}, Raw: raw})
	u.Observe(UnknownObservation{EUI: e, Time: t0.Add(time.Minute), Source: "cs", Payload: []byte{2}, Accepted: true})
	u.Observe(UnknownObservation{EUI: e, Time: t0.Add(-time.Minute), Source: "cs", Payload: []byte{0}})
	u.Observe(UnknownObservation{Time: t0}) // no EUI: nothing to adopt
	got, ok := u.Get(e)
	if !ok || got.Count != 3 || !got.FirstSeen.Equal(t0.Add(-time.Minute)) || !got.LastSeen.Equal(t0.Add(time.Minute)) ||
		got.LastPayload[0] != 2 || got.Name != "ns" || !got.Accepted || len(got.LastRaw) != 0 {
		t.Fatalf("%+v", got)
	}
	if len(u.List()) != 1 {
		t.Fatal("an observation without EUI was listed")
	}
	u2 := NewUnknowns()
	u2.Observe(UnknownObservation{EUI: e, Time: t0, Raw: raw})
	if g, _ := u2.Get(e); len(g.LastRaw) != maxUnknownRaw || !g.RawTruncate {
		t.Fatalf("raw kept %d bytes", len(g.LastRaw))
	}
	u2.SetMax(100)
	for i := 0; i < 100+5; i++ {
		u2.Observe(UnknownObservation{EUI: EUI{0xff, byte(i >> 8), byte(i)}, Time: t0})
	}
	// The least recently heard go first: e and the flood's first five.
	if _, listed := u2.Get(e); u2.Len() != 100 || u2.Dropped() != 6 || listed {
		t.Fatalf("%d listed, %d dropped, first device listed %v", u2.Len(), u2.Dropped(), listed)
	}
	if !u.Remove(e) || u.Remove(e) {
		t.Fatal("Remove")
	}
}

// TestHealthLateFramesAreNotLost: frames handled out of order (concurrent
// handlers, redelivery after a reconnect) are not counted as lost once
// they arrive.
func TestHealthLateFramesAreNotLost(t *testing.T) {
	h := NewHealth(0)
	eui := EUI{1, 2, 3, 4, 5, 6, 7, 8}
	t0 := time.Now().Add(-time.Hour).Truncate(time.Minute)
	// Frames 1..10, ten minutes apart, arriving as 1 2 4 3 5 8 6 7 9 10.
	for _, f := range []uint32{1, 2, 4, 3, 5, 8, 6, 7, 9, 10} {
		h.Observe(Observation{EUI: eui, Time: t0.Add(time.Duration(f) * time.Minute), FCnt: f, HasFCnt: true})
	}
	r, ok := h.Get(eui, time.Now())
	if !ok {
		t.Fatal("no report")
	}
	if r.Uplinks24h != 10 || r.Lost24h != 0 || r.LossPct != 0 {
		t.Fatalf("uplinks %d lost %d (%.1f %%), want 10, 0", r.Uplinks24h, r.Lost24h, r.LossPct)
	}
	// A real gap stays counted.
	h.Observe(Observation{EUI: eui, Time: t0.Add(13 * time.Minute), FCnt: 13, HasFCnt: true})
	if r, _ := h.Get(eui, time.Now()); r.Lost24h != 2 {
		t.Fatalf("lost %d after a gap of 2, want 2", r.Lost24h)
	}
}

// TestHealthSilentWhenFramesCameNewestFirst: a backlog handled newest
// first still yields an interval, so silence is detected.
func TestHealthSilentWhenFramesCameNewestFirst(t *testing.T) {
	h := NewHealth(3)
	eui := EUI{8, 7, 6, 5, 4, 3, 2, 1}
	t0 := time.Now().Add(-20 * time.Hour)
	for f := uint32(6); f >= 1; f-- {
		h.Observe(Observation{EUI: eui, Time: t0.Add(time.Duration(f) * 10 * time.Minute), FCnt: f, HasFCnt: true})
	}
	r, _ := h.Get(eui, time.Now())
	if r.Interval < 599 || r.Interval > 601 || !r.Silent || r.Lost24h != 0 {
		t.Fatalf("interval %.0f s, silent %v, lost %d; want 600 s, silent, 0 lost", r.Interval, r.Silent, r.Lost24h)
	}
}

// TestHealthReportIsACopy: a report taken before later uplinks keeps its
// values; Observe updates the last-seen values in place.
func TestHealthReportIsACopy(t *testing.T) {
	t0 := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	e := EUI{2}
	h := NewHealth(3)
	h.Observe(Observation{EUI: e, Time: t0, FCnt: 1, HasFCnt: true, RSSI: -100, HasRSSI: true})
	before, _ := h.Get(e, t0)
	h.Observe(Observation{EUI: e, Time: t0.Add(time.Minute), FCnt: 2, HasFCnt: true, RSSI: -90, HasRSSI: true})
	if *before.LastFCnt != 1 || *before.RSSI != -100 {
		t.Fatalf("earlier report changed to f_cnt %d, rssi %v", *before.LastFCnt, *before.RSSI)
	}
	after, _ := h.Get(e, t0.Add(time.Minute))
	if *after.LastFCnt != 2 || *after.RSSI != -90 {
		t.Fatalf("report after the second uplink: f_cnt %d, rssi %v", *after.LastFCnt, *after.RSSI)
	}
}
