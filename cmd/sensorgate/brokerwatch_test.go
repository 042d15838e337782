package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

// lockedBuffer is a log sink safe for the watch's timer goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDropWatch feeds synthetic streams through the check the way the
// pipeline does (the check, then device health) and looks for the one
// warning.
func TestDropWatch(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	eui := func(i int) devices.EUI { return devices.EUI{0x70, 0xb3, 0xd5, 0x7e, 0, 0, byte(i >> 8), byte(i)} }
	type uplink struct {
		dev  int
		fcnt uint32
	}
	// each: every device of n sends the counters fcnts returns for it
	each := func(n int, fcnts func(dev int) []uint32) []uplink {
		var out []uplink
		for d := range n {
			for _, f := range fcnts(d) {
				out = append(out, uplink{d, f})
			}
		}
		return out
	}
	seq := func(from, to uint32) []uint32 {
		var s []uint32
		for f := from; f <= to; f++ {
			s = append(s, f)
		}
		return s
	}
	cases := []struct {
		name   string
		before []uplink // seen before sensorgate (re)connects: device health's last counters
		after  []uplink // in the window after connecting
		warn   bool
	}{
		{
			name:   "queue dropped: in sequence, then every device jumps",
			before: each(50, func(int) []uint32 { return []uint32{10} }),
			after:  append(each(50, func(int) []uint32 { return []uint32{11} }), each(50, func(int) []uint32 { return []uint32{40} })...),
			warn:   true,
		},
		{
			name:   "nothing dropped: every frame in order",
			before: each(50, func(int) []uint32 { return []uint32{10} }),
			after:  each(50, func(int) []uint32 { return seq(11, 20) }),
		},
		{
			name:   "radio loss: a few devices miss a frame",
			before: each(50, func(int) []uint32 { return []uint32{10} }),
			after: each(50, func(d int) []uint32 {
				if d%10 == 0 {
					return []uint32{12}
				}
				return []uint32{11}
			}),
		},
		{
			name:   "too few devices to tell",
			before: each(8, func(int) []uint32 { return []uint32{10} }),
			after:  each(8, func(int) []uint32 { return []uint32{30} }),
		},
		{
			name:   "new devices and counter resets are not gaps",
			before: each(30, func(int) []uint32 { return []uint32{50000} }),
			after:  append(each(30, func(int) []uint32 { return []uint32{0, 1} }), uplink{100, 7}),
		},
		{
			name:   "redeliveries are not gaps",
			before: each(30, func(int) []uint32 { return []uint32{10} }),
			after:  each(30, func(int) []uint32 { return []uint32{9, 10, 11} }),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			logs := &lockedBuffer{}
			health := devices.NewHealth(0)
			w := newDropWatch(health, zerolog.New(logs))
			w.window = 50 * time.Millisecond
			i := 0
			feed := func(ups []uplink) {
				for _, u := range ups {
					i++
					up := gateway.Uplink{DevEUI: eui(u.dev), FCnt: u.fcnt, HasFCnt: true, Time: t0.Add(time.Duration(i) * time.Second)}
					w.Observe(up, gateway.Seen{})
					health.Observe(devices.Observation{EUI: up.DevEUI, Time: up.Time, FCnt: up.FCnt, HasFCnt: true})
				}
			}
			// Gaps before the first connection open no window.
			feed(tc.before)
			w.connected()
			feed(tc.after)
			time.Sleep(200 * time.Millisecond)
			got := strings.Count(logs.String(), "max_queued_messages")
			if want := map[bool]int{true: 1, false: 0}[tc.warn]; got != want {
				t.Fatalf("%d warnings, want %d; log:\n%s", got, want, logs)
			}
			// The window is closed: the same stream again warns no more.
			feed(tc.after)
			time.Sleep(100 * time.Millisecond)
			if n := strings.Count(logs.String(), "max_queued_messages"); n != got {
				t.Fatalf("warned again outside the window; log:\n%s", logs)
			}
		})
	}
}

// TestDropWatchReconnectRestartsWindow: a connection during a window
// starts a new one, and the old window's timer does not end it.
func TestDropWatchReconnectRestartsWindow(t *testing.T) {
	logs := &lockedBuffer{}
	health := devices.NewHealth(0)
	w := newDropWatch(health, zerolog.New(logs))
	w.window = time.Hour // the timers do not fire: the test fires the first one itself
	w.connected()
	w.mu.Lock()
	first := w.gen
	w.mu.Unlock()
	w.connected()
	w.evaluate(first) // the first window's timer, firing after the reconnection
	if !w.open.Load() {
		t.Fatal("the window of the second connection was closed by the first one's timer")
	}
	w.stop()
	if w.open.Load() {
		t.Fatal("stop left the window open")
	}
}

// TestDropWatchSeenIsBounded: a flood of new EUIs during the window adds
// nothing to the watch's table; devices health knows are checked.
func TestDropWatchSeenIsBounded(t *testing.T) {
	health := devices.NewHealth(0)
	w := newDropWatch(health, zerolog.Nop())
	w.window = time.Hour
	w.connected()
	defer w.stop()
	known := devices.EUI{1}
	health.Observe(devices.Observation{EUI: known, Time: time.Now(), FCnt: 1, HasFCnt: true})
	w.Observe(gateway.Uplink{DevEUI: known, FCnt: 5, HasFCnt: true}, gateway.Seen{})
	for i := range 10000 {
		w.Observe(gateway.Uplink{DevEUI: devices.EUI{0xee, byte(i >> 8), byte(i)}, FCnt: 5, HasFCnt: true}, gateway.Seen{})
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.seen) != 1 || !w.seen[known] {
		t.Fatalf("the watch holds %d devices, want the one health knows (with its gap)", len(w.seen))
	}
}
