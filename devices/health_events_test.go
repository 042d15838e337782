package devices

import (
	"context"
	"testing"
	"time"
)

// TestHealthEvents: a registered device's join gives it a health entry
// (last join, last seen) before its first uplink; an unregistered one's
// does not; the latest error and a status battery level show, and
// neither counts as an uplink. They survive a save and a reload.
func TestHealthEvents(t *testing.T) {
	t0 := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	h := NewHealth(3)
	reg, stranger := EUI{1}, EUI{2}
	h.ObserveEvent(EventObservation{EUI: stranger, Time: t0, Join: true})
	h.ObserveEvent(EventObservation{EUI: reg, Time: t0, Join: true, Registered: true})
	h.ObserveEvent(EventObservation{EUI: reg, Time: t0.Add(time.Second), Error: "uplink_codec: boom", Registered: true})
	// An older error does not replace the latest.
	h.ObserveEvent(EventObservation{EUI: reg, Time: t0.Add(-time.Hour), Error: "uplink_mic: old", Registered: true})
	h.ObserveEvent(EventObservation{EUI: reg, Time: t0.Add(2 * time.Second), BatteryLevel: 77, HasBatteryLevel: true, Registered: true})
	if _, ok := h.Get(stranger, t0); ok {
		t.Fatal("an unregistered device's join made a health entry")
	}
	now := t0.Add(time.Minute)
	check := func(h *Health) {
		t.Helper()
		got, ok := h.Get(reg, now)
		if !ok {
			t.Fatal("no health entry after a registered device's join")
		}
		if got.LastJoin == nil || !got.LastJoin.Equal(t0) || !got.LastSeen.Equal(t0) {
			t.Errorf("last join %v, last seen %v; want both %v", got.LastJoin, got.LastSeen, t0)
		}
		if got.LastError != "uplink_codec: boom" || got.LastErrorTime == nil || !got.LastErrorTime.Equal(t0.Add(time.Second)) {
			t.Errorf("last error %q at %v", got.LastError, got.LastErrorTime)
		}
		if got.BatteryLevel == nil || *got.BatteryLevel != 77 {
			t.Errorf("battery level %v, want 77", got.BatteryLevel)
		}
		if got.Uplinks24h != 0 {
			t.Errorf("events counted as %d uplinks", got.Uplinks24h)
		}
	}
	check(h)

	ctx := context.Background()
	s, path := openTestStore(t)
	if err := s.SaveHealth(ctx, h); err != nil {
		t.Fatal(err)
	}
	s2 := reopenTestStore(t, s, path)
	h2 := NewHealth(3)
	if err := s2.LoadHealth(ctx, h2); err != nil {
		t.Fatal(err)
	}
	check(h2)
}
