package lorawan

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/simulate"
)

func abpDevice(i byte, version string, addr devices.DevAddr) *devices.Device {
	s := &devices.Session{DevAddr: addr, MACVersion: version, AppSKey: devices.Key{0xa0, i}}
	if version == devices.MACVersion11 {
		s.FNwkSIntKey, s.SNwkSIntKey, s.NwkSEncKey = devices.Key{0xf0, i}, devices.Key{0x50, i}, devices.Key{0xe0, i}
	} else {
		s.NwkSKey = devices.Key{0x10, i}
	}
	return &devices.Device{EUI: devices.EUI{0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 0, i}, Name: "abp-" + string('a'+rune(i)), Session: s}
}

func encode(t testing.TB, d *devices.Device, fcnt uint32, port uint8, payload string) []byte {
	t.Helper()
	b, err := simulate.EncodeUplink(d.Session, fcnt, port, []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// clock is a settable clock for the frame-counter policy.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestFrameCounter walks a device's counter through rollover, replays and
// restarts under both policies; each step is one frame.
func TestFrameCounter(t *testing.T) {
	type step struct {
		fcnt    uint32        // the device's 32-bit counter (the frame carries 16 bits)
		after   time.Duration // time since the previous step
		want    uint32        // the uplink's FCnt when accepted
		outcome string        // "ok", "replay", "bad_mic"
	}
	for _, tc := range []struct {
		name    string
		version string
		cfg     FrameConfig
		steps   []step
	}{
		{"increasing and rollover", devices.MACVersion10, FrameConfig{}, []step{
			{1, 0, 1, "ok"}, {2, time.Minute, 2, "ok"}, {65535, time.Minute, 65535, "ok"},
			{65536, time.Minute, 65536, "ok"}, {65537 + 100, time.Minute, 65637, "ok"}, {3*65536 + 5, time.Minute, 3*65536 + 5, "ok"},
		}},
		{"1.1 rollover", devices.MACVersion11, FrameConfig{}, []step{
			{10, 0, 10, "ok"}, {65535, time.Minute, 65535, "ok"}, {65536 + 2, time.Minute, 65538, "ok"},
		}},
		{"replay rejected", devices.MACVersion10, FrameConfig{}, []step{
			{5, 0, 5, "ok"}, {6, time.Minute, 6, "ok"}, {6, time.Minute, 0, "replay"}, {7, time.Minute, 7, "ok"}, {5, time.Minute, 0, "replay"},
		}},
		{"replay across epochs", devices.MACVersion10, FrameConfig{}, []step{
			{65540, 0, 65540, "ok"}, {65539 - 64, time.Minute, 0, "replay"}, {3, time.Minute, 0, "replay"},
		}},
		{"late frames within the window, once", devices.MACVersion10, FrameConfig{}, []step{
			{100, 0, 100, "ok"}, {98, 0, 98, "ok"}, {101, 0, 101, "ok"}, {99, 0, 99, "ok"}, {98, 0, 0, "replay"},
			{37, 0, 0, "replay"}, {38, 0, 38, "ok"}, {165, 0, 165, "ok"}, {101, 0, 0, "replay"}, {102, 0, 102, "ok"}, {101, 0, 0, "replay"},
		}},
		{"late frame across an epoch", devices.MACVersion10, FrameConfig{}, []step{
			{65530, 0, 65530, "ok"}, {65540, 0, 65540, "ok"}, {65535, 0, 65535, "ok"}, {65535, 0, 0, "replay"},
		}},
		{"restart rejected by default", devices.MACVersion10, FrameConfig{}, []step{
			{900, 0, 900, "ok"}, {0, time.Hour, 0, "replay"}, {1, time.Hour, 0, "replay"},
		}},
		{"accept-low takes a restart after a gap", devices.MACVersion10, FrameConfig{FCntReset: FCntResetAcceptLow, FCntResetMax: 3, FCntResetGap: 10 * time.Minute}, []step{
			{900, 0, 900, "ok"},
			{0, time.Minute, 0, "replay"},      // too soon
			{5, 20 * time.Minute, 0, "replay"}, // too high
			{2, 20 * time.Minute, 2, "ok"},     // restart
			{3, time.Minute, 3, "ok"},
			{2, time.Minute, 0, "replay"}, // below the new base, too soon
		}},
		{"first frame past 65535 after a restart of sensorgate", devices.MACVersion10, FrameConfig{}, []step{
			{5*65536 + 7, 0, 5*65536 + 7, "ok"}, {5*65536 + 8, time.Minute, 5*65536 + 8, "ok"},
		}},
		{"1.1 searches epoch 0 only", devices.MACVersion11, FrameConfig{}, []step{
			{65536 + 7, 0, 0, "bad_mic"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := abpDevice(1, tc.version, devices.DevAddr{0x26, 0, 0, 1})
			f, _, c := newFrames(t, tc.cfg, lookup{d})
			clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			f.now = clk.now
			for i, s := range tc.steps {
				clk.add(s.after)
				phy := encode(t, d, s.fcnt, 2, "payload")
				up, _, err := f.uplink([]Frame{{PHYPayload: phy, DR: -1}}, clk.now())
				var rej *gateway.Rejection
				switch s.outcome {
				case "ok":
					if err != nil || up.FCnt != s.want || string(up.Payload) != "payload" {
						t.Fatalf("step %d (fcnt %d): %v, FCnt %d payload %q; want FCnt %d", i, s.fcnt, err, up.FCnt, up.Payload, s.want)
					}
				default:
					if !errors.As(err, &rej) || string(rej.Reason) != s.outcome {
						t.Fatalf("step %d (fcnt %d): err %v, want %s", i, s.fcnt, err, s.outcome)
					}
				}
			}
			if tc.cfg.FCntReset == FCntResetAcceptLow && c.Get("lorawan.fcnt_resets") != 1 {
				t.Errorf("fcnt_resets = %d", c.Get("lorawan.fcnt_resets"))
			}
		})
	}
}

func TestReplayDetailSaysWhatToDo(t *testing.T) {
	d := abpDevice(1, devices.MACVersion10, devices.DevAddr{0x26, 0, 0, 1})
	f, _, _ := newFrames(t, FrameConfig{}, lookup{d})
	if _, _, err := f.uplink([]Frame{{PHYPayload: encode(t, d, 10, 1, "x")}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.uplink([]Frame{{PHYPayload: encode(t, d, 10, 1, "x")}}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "FCnt 10 was accepted before or is over 64 below the highest accepted 10") || !strings.Contains(err.Error(), "fcnt_reset: accept-low") {
		t.Fatalf("err = %v", err)
	}
}

// TestSharedDevAddr: devices sharing a DevAddr are told apart by the MIC,
// and each keeps its own counter.
func TestSharedDevAddr(t *testing.T) {
	addr := devices.DevAddr{0x26, 0x01, 0x1b, 0xda}
	a, b := abpDevice(1, devices.MACVersion10, addr), abpDevice(2, devices.MACVersion11, addr)
	other := abpDevice(3, devices.MACVersion10, devices.DevAddr{0x26, 0x01, 0x1b, 0xdb})
	f, _, _ := newFrames(t, FrameConfig{}, lookup{a, b, other})
	for _, tc := range []struct {
		dev  *devices.Device
		fcnt uint32
		err  gateway.Reason
	}{
		{a, 100, ""}, {b, 5, ""}, {b, 6, ""}, {a, 101, ""}, {b, 6, gateway.ReasonReplay}, {a, 30, gateway.ReasonReplay}, {a, 99, ""}, {b, 7, ""},
	} {
		up, _, err := f.uplink([]Frame{{PHYPayload: encode(t, tc.dev, tc.fcnt, 3, "hi")}}, time.Now())
		var rej *gateway.Rejection
		if tc.err != "" {
			if !errors.As(err, &rej) || rej.Reason != tc.err {
				t.Fatalf("%s fcnt %d: err %v, want %s", tc.dev.Name, tc.fcnt, err, tc.err)
			}
			continue
		}
		if err != nil || up.DevEUI != tc.dev.EUI || up.FCnt != tc.fcnt || string(up.Payload) != "hi" {
			t.Fatalf("%s fcnt %d: %+v %v", tc.dev.Name, tc.fcnt, up, err)
		}
	}
	// A frame of the address signed with keys no device has.
	stranger := abpDevice(9, devices.MACVersion10, addr)
	_, _, err := f.uplink([]Frame{{PHYPayload: encode(t, stranger, 1, 3, "hi")}}, time.Now())
	var rej *gateway.Rejection
	if !errors.As(err, &rej) || rej.Reason != gateway.ReasonBadMIC || !strings.Contains(err.Error(), "2 session(s)") {
		t.Fatalf("stranger: %v", err)
	}
}

func TestUnknownDevAddrPolicy(t *testing.T) {
	d := abpDevice(1, devices.MACVersion10, devices.DevAddr{0x26, 0, 0, 1})
	phy := encode(t, d, 1, 1, "x")
	for _, policy := range []string{"", UnknownDrop, UnknownReject} {
		f, dl, c := newFrames(t, FrameConfig{UnknownDevices: policy}, lookup{})
		f.cfg.DedupWindow = time.Millisecond
		err := f.Handle(context.Background(), Frame{PHYPayload: phy, Raw: []byte("rx")}, func(context.Context, gateway.Uplink) error {
			t.Fatal("handler called")
			return nil
		})
		if err != nil || c.Get("lorawan.unknown_dev_addr") != 1 {
			t.Fatalf("%q: %v %v", policy, err, c.Snapshot())
		}
		want := 0
		if policy == UnknownReject {
			want = 1
		}
		if got := dl.all(); len(got) != want || (want == 1 && got[0].Reason != gateway.ReasonUnknownDevice) {
			t.Fatalf("%q: dead letters %+v", policy, got)
		}
	}
}

// recorder is a handler recording uplinks; fail makes it refuse them.
type recorder struct {
	mu   sync.Mutex
	ups  []gateway.Uplink
	cps  []gateway.Uplink // receptions of uplinks taken already (GatewayCopies)
	fail error
}

func (r *recorder) handle(_ context.Context, up gateway.Uplink) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	if up.GatewayCopies {
		r.cps = append(r.cps, up)
	} else {
		r.ups = append(r.ups, up)
	}
	return nil
}

func (r *recorder) copies() []gateway.Uplink {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]gateway.Uplink(nil), r.cps...)
}

func (r *recorder) uplinks() []gateway.Uplink {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]gateway.Uplink(nil), r.ups...)
}

// TestDedup: copies of one frame from three gateways within the window
// make one uplink with all three receptions; a copy after the window is
// its reception only, at the uplink's time; every copy's Handle returns
// the handler's result.
func TestDedup(t *testing.T) {
	d := abpDevice(1, devices.MACVersion10, devices.DevAddr{0x26, 0, 0, 1})
	f, dl, c := newFrames(t, FrameConfig{DedupWindow: 100 * time.Millisecond}, lookup{d})
	phy := encode(t, d, 42, 2, "data")
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	copies := []Frame{
		{PHYPayload: phy, Gateway: gateway.GatewayRx{ID: "b827ebfffe000003", RSSI: -100, SNR: -3, HasSNR: true}, Time: t0.Add(time.Microsecond), Frequency: 868100000, SF: 9, Bandwidth: 125000, DR: -1},
		{PHYPayload: phy, Gateway: gateway.GatewayRx{ID: "b827ebfffe000001", RSSI: -60, SNR: 9.5, HasSNR: true}, Time: t0, DR: -1},
		{PHYPayload: phy, Gateway: gateway.GatewayRx{ID: "b827ebfffe000002", RSSI: -80, SNR: 1, HasSNR: true}, DR: -1},
		{PHYPayload: phy, Gateway: gateway.GatewayRx{ID: "b827ebfffe000002", RSSI: -85, SNR: 0, HasSNR: true}, DR: -1}, // same gateway twice: keep the better
	}
	rec := &recorder{}
	var wg sync.WaitGroup
	errs := make([]error, len(copies))
	for i := range copies {
		if i > 0 {
			// The first copy must lead: wait until it is pending.
			waitFor(t, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.pending) == 1 })
		}
		wg.Add(1)
		go func(i int) { defer wg.Done(); errs[i] = f.Handle(context.Background(), copies[i], rec.handle) }(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("copy %d: %v", i, err)
		}
	}
	ups := rec.uplinks()
	if len(ups) != 1 {
		t.Fatalf("%d uplinks, want 1", len(ups))
	}
	up := ups[0]
	wantGws := []gateway.GatewayRx{copies[1].Gateway, copies[2].Gateway, copies[0].Gateway}
	if len(up.Radio.Gateways) != 3 || up.Radio.Gateways[0] != wantGws[0] || up.Radio.Gateways[1] != wantGws[1] || up.Radio.Gateways[2] != wantGws[2] {
		t.Fatalf("gateways %+v", up.Radio.Gateways)
	}
	if !up.Time.Equal(t0) || up.LocalTime || up.Radio.Frequency != 868100000 || up.Radio.SF != 9 || up.Source != "udp-test" || up.FCnt != 42 || up.ID != d.EUI.String()+":42" {
		t.Fatalf("uplink %+v", up)
	}
	// Late copy: its reception at the uplink's time, not an uplink again
	// and not a replay dead letter. (A gateway that forwarded a frame
	// after its window had its copy dropped before; its uplink_gateway
	// point was then missing.)
	late := copies[0]
	late.Gateway.ID = "b827ebfffe000004"
	if err := f.Handle(context.Background(), late, rec.handle); err != nil {
		t.Fatal(err)
	}
	if len(rec.uplinks()) != 1 || len(dl.all()) != 0 || c.Get("lorawan.late_duplicates") != 1 || c.Get("lorawan.duplicates") != 3 {
		t.Fatalf("late copy: uplinks %d, dead letters %v, counters %v", len(rec.uplinks()), dl.all(), c.Snapshot())
	}
	cps := rec.copies()
	if len(cps) != 1 || !cps[0].Time.Equal(up.Time) || len(cps[0].Radio.Gateways) != 1 || cps[0].Radio.Gateways[0] != late.Gateway ||
		cps[0].DevEUI != d.EUI || cps[0].Source != "udp-test" || len(cps[0].Payload) != 0 {
		t.Fatalf("late copy: %+v", cps)
	}
}

// TestHandlerRefusalRollsBack: an uplink the handler refused (sink down)
// is handled again when the feed redelivers it, not called a replay.
func TestHandlerRefusalRollsBack(t *testing.T) {
	d := abpDevice(1, devices.MACVersion10, devices.DevAddr{0x26, 0, 0, 1})
	f, dl, _ := newFrames(t, FrameConfig{DedupWindow: time.Millisecond}, lookup{d})
	rec := &recorder{fail: errors.New("sink down")}
	fr := Frame{PHYPayload: encode(t, d, 7, 2, "data")}
	if err := f.Handle(context.Background(), fr, rec.handle); err == nil || !strings.Contains(err.Error(), "sink down") {
		t.Fatalf("err = %v", err)
	}
	rec.fail = nil
	if err := f.Handle(context.Background(), fr, rec.handle); err != nil {
		t.Fatal(err)
	}
	if len(rec.uplinks()) != 1 || len(dl.all()) != 0 {
		t.Fatalf("uplinks %v dead letters %v", rec.uplinks(), dl.all())
	}
	// And now it is a duplicate (late), then a replay once forgotten.
	if err := f.Handle(context.Background(), fr, rec.handle); err != nil || len(rec.uplinks()) != 1 {
		t.Fatal("late duplicate handled again")
	}
	f.mu.Lock()
	f.recent = map[string]recentEntry{}
	f.mu.Unlock()
	if err := f.Handle(context.Background(), fr, rec.handle); err != nil {
		t.Fatal(err)
	}
	if got := dl.all(); len(got) != 1 || got[0].Reason != gateway.ReasonReplay || got[0].DevEUI != d.EUI.String() {
		t.Fatalf("dead letters %+v", got)
	}
}

func TestHandleCancelled(t *testing.T) {
	d := abpDevice(1, devices.MACVersion10, devices.DevAddr{0x26, 0, 0, 1})
	f, _, _ := newFrames(t, FrameConfig{DedupWindow: 5 * time.Second}, lookup{d})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Handle(ctx, Frame{PHYPayload: encode(t, d, 1, 2, "x")}, (&recorder{}).handle) }()
	waitFor(t, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.pending) == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestRecentIsPruned(t *testing.T) {
	d := abpDevice(1, devices.MACVersion10, devices.DevAddr{0x26, 0, 0, 1})
	f, _, _ := newFrames(t, FrameConfig{}, lookup{d})
	clk := &clock{t: time.Now()}
	f.now = clk.now
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := 0; i < 1000; i++ {
		f.remember(string(rune(i)), nil, clk.now())
		clk.add(time.Second)
		f.pruneRecent(clk.now())
	}
	if len(f.recent) > 62 || len(f.recentQ)-f.recentH > 62 || len(f.recentQ) > 200 {
		t.Fatalf("recent %d, queue %d (head %d)", len(f.recent), len(f.recentQ), f.recentH)
	}
}

// waitFor polls cond (a state the code under test reaches on its own
// goroutine, with no event to wait on) for up to 5s.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDedupTableIsBounded: a flood of distinct frames (anyone can send a
// Semtech UDP source datagrams) keeps at most dedup_max_frames in the
// table, forgetting the oldest early and counting them.
func TestDedupTableIsBounded(t *testing.T) {
	d := abpDevice(1, devices.MACVersion10, devices.DevAddr{0x26, 0, 0, 1})
	f, dl, _ := newFrames(t, FrameConfig{DedupMaxFrames: 50, DedupWindow: time.Microsecond}, lookup{d})
	ctx := context.Background()
	h := func(context.Context, gateway.Uplink) error { return nil }
	ours := Frame{PHYPayload: encode(t, d, 1, 1, "x")}
	if err := f.Handle(ctx, ours, h); err != nil {
		t.Fatal(err)
	}
	for i := range 999 {
		// Frames of a DevAddr no session has: dropped, but remembered as
		// handled like every frame.
		fr := Frame{PHYPayload: encode(t, &devices.Device{Session: &devices.Session{DevAddr: devices.DevAddr{0x99, 0, byte(i >> 8), byte(i)}}}, 1, 1, "x")}
		if err := f.Handle(ctx, fr, h); err != nil {
			t.Fatal(err)
		}
	}
	entries, evicted := f.DedupStats()
	if entries != 50 || evicted != 950 {
		t.Fatalf("%d frames remembered, %d forgotten early; want 50, 950", entries, evicted)
	}
	// A late copy of a frame forgotten early is no longer dropped as a
	// duplicate: its counter was accepted, so it is a replay dead letter.
	if err := f.Handle(ctx, ours, h); err != nil {
		t.Fatal(err)
	}
	if dls := dl.all(); len(dls) != 1 || dls[0].Reason != gateway.ReasonReplay {
		t.Fatalf("the late copy's dead letters: %+v", dls)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if live := len(f.recentQ) - f.recentH; live > 50 {
		t.Fatalf("%d live queue entries for 50 remembered frames", live)
	}
}
