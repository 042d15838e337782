package lorawan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/simulate"
)

var testGW = [8]byte{0xaa, 0x55, 0x5a, 0, 0, 0, 0x01, 0x01}

func header(id byte, token uint16, gw bool) []byte {
	b := []byte{2, byte(token >> 8), byte(token), id}
	if gw {
		b = append(b, testGW[:]...)
	}
	return b
}

func TestParsePacket(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		ack  []byte
		err  bool
	}{
		{"push data", append(header(idPushData, 0x1234, true), `{"rxpk":[]}`...), []byte{2, 0x12, 0x34, idPushAck}, false},
		{"pull data", header(idPullData, 7, true), []byte{2, 0, 7, idPullAck}, false},
		{"protocol v1", append([]byte{1, 0, 9, idPullData}, testGW[:]...), []byte{1, 0, 9, idPullAck}, false},
		{"tx ack", header(idTxAck, 1, true), nil, false},
		{"short", []byte{2, 0}, nil, true},
		{"no gateway", header(idPushData, 1, false), nil, true},
		{"version 3", append([]byte{3, 0, 1, idPullData}, testGW[:]...), nil, true},
		{"server-to-gateway id", header(idPullResp, 1, true), nil, true},
	} {
		p, err := parsePacket(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("%s: err = %v", tc.name, err)
			continue
		}
		if err != nil {
			if !errors.Is(err, errNotSemtech) {
				t.Errorf("%s: %v does not wrap errNotSemtech", tc.name, err)
			}
			continue
		}
		if !bytes.Equal(p.ack(), tc.ack) || p.gateway != testGW {
			t.Errorf("%s: ack %x gateway %x", tc.name, p.ack(), p.gateway)
		}
	}
}

func TestParsePushData(t *testing.T) {
	body := `{"rxpk":[
	 {"time":"2013-03-31T16:21:17.528002Z","tmst":3512348611,"chan":2,"rfch":0,"freq":866.349812,"stat":1,"modu":"LORA","datr":"SF7BW125","codr":"4/6","rssi":-35,"lsnr":5.1,"size":32,"data":"QAQDAgGAAQABppRkJhXWw7WC"},
	 {"tmst":3512348514,"chan":9,"rfch":1,"freq":869.1,"stat":1,"modu":"FSK","datr":50000,"rssi":-75,"size":16,"data":"QAQDAgGAAQABppRkJhXWw7WC"},
	 {"tmst":1,"freq":868.1,"stat":-1,"modu":"LORA","datr":"SF12BW125","rssi":-120,"lsnr":-20,"data":"AAAA"},
	 {"tmst":2,"freq":868.3,"stat":1,"modu":"LORA","datr":"SF9BW125","rsig":[{"ant":0,"chan":3,"rssic":-99,"lsnr":-2.25}],"data":"QAQDAgGAAQABppRkJhXWw7WC"},
	 {"tmst":3,"freq":868.5,"stat":1,"modu":"LORA","datr":"SF9BW125","rssi":-99,"data":"not base64!"},
	 {"tmst":4,"freq":"868.5","data":"QAQD"}
	],"stat":{"time":"2014-01-12 08:59:28 GMT","rxnb":2}}`
	frames, crc, bad, err := parsePushData(testGW, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if crc != 1 || len(bad) != 2 || len(frames) != 3 {
		t.Fatalf("frames %d, crc errors %d, bad %d", len(frames), crc, len(bad))
	}
	if !strings.Contains(bad[0].err.Error(), "base64") || !strings.Contains(string(bad[1].raw), `"868.5"`) {
		t.Fatalf("bad: %v / %s", bad[0].err, bad[1].raw)
	}
	f0 := frames[0]
	wantTime := time.Date(2013, 3, 31, 16, 21, 17, 528002000, time.UTC)
	if f0.Gateway != (gateway.GatewayRx{ID: "aa555a0000000101", RSSI: -35, SNR: 5.1, HasSNR: true}) || !f0.Time.Equal(wantTime) ||
		f0.Frequency != 866349812 || f0.SF != 7 || f0.Bandwidth != 125000 || f0.DR != -1 || len(f0.PHYPayload) != 18 || !json.Valid(f0.Raw) {
		t.Fatalf("frame 0 %+v", f0)
	}
	if f1 := frames[1]; f1.SF != 0 || f1.Bandwidth != 0 || f1.Gateway.HasSNR || !f1.Time.IsZero() || f1.Frequency != 869100000 {
		t.Fatalf("FSK frame %+v", f1)
	}
	if f2 := frames[2]; f2.Gateway.RSSI != -99 || f2.Gateway.SNR != -2.25 || !f2.Gateway.HasSNR || f2.SF != 9 {
		t.Fatalf("rsig frame %+v", f2)
	}
	if _, _, _, err := parsePushData(testGW, []byte(`{"rxpk":`)); err == nil {
		t.Fatal("truncated JSON accepted")
	}
	// A status-only PUSH_DATA has no frames and is fine.
	if fr, _, _, err := parsePushData(testGW, []byte(`{"stat":{"rxnb":0}}`)); err != nil || len(fr) != 0 {
		t.Fatalf("stat only: %v %v", fr, err)
	}
}

func TestLoraDatr(t *testing.T) {
	for in, want := range map[string][2]int{
		`"SF7BW125"`: {7, 125000}, `"SF12BW500"`: {12, 500000}, `"SF10BW812"`: {10, 812000},
		`50000`: {0, 0}, `"SF99BW125"`: {0, 0}, `"SFxBW125"`: {0, 0}, `"M0CW137"`: {0, 0}, ``: {0, 0},
	} {
		sf, bw := loraDatr(json.RawMessage(in))
		if sf != want[0] || bw != want[1] {
			t.Errorf("%s: %d %d, want %v", in, sf, bw, want)
		}
	}
}

func startSource(t *testing.T, cfg Config, devs DevAddrLookup, h gateway.Handler) (*Source, *deadLetters, *gateway.Counters) {
	t.Helper()
	dl := &deadLetters{}
	c := &gateway.Counters{}
	if cfg.Name == "" {
		cfg.Name = "gateways"
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	s, err := New(cfg, devs, dl, c, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	return s, dl, c
}

// TestSourceEndToEnd sends the simulator's datagrams (each uplink from
// one to three gateways) over loopback UDP and checks every uplink arrives
// once, decrypted, with every gateway's reception.
func TestSourceEndToEnd(t *testing.T) {
	fleet, err := simulate.NewSemtechFleet(simulate.SemtechOptions{Devices: 4, Gateways: 3, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := devices.NewRegistry(fleet.Devices())
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		got = map[string]gateway.Uplink{}
	)
	h := func(_ context.Context, up gateway.Uplink) error {
		mu.Lock()
		defer mu.Unlock()
		prev, dup := got[up.ID]
		if up.GatewayCopies {
			// A copy that came after the window (a loaded machine): its
			// reception, at the uplink's time.
			if !dup || !prev.Time.Equal(up.Time) {
				t.Errorf("copy of %s at %s: uplink %v at %s", up.ID, up.Time, dup, prev.Time)
			}
			prev.Radio.Gateways = append(prev.Radio.Gateways, up.Radio.Gateways...)
			got[up.ID] = prev
			return nil
		}
		if dup {
			t.Errorf("uplink %s twice", up.ID)
		}
		got[up.ID] = up
		return nil
	}
	src, dl, c := startSource(t, Config{FrameConfig: FrameConfig{DedupWindow: 50 * time.Millisecond}}, reg, h)

	var sent []simulate.SemtechMessage
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = simulate.SendSemtech(ctx, fleet, simulate.SemtechSendOptions{Addr: src.Addr().String(), Count: 40, OnSent: func(m simulate.SemtechMessage) { sent = append(sent, m) }})
	if err != nil {
		t.Fatal(err)
	}
	rxSent := 0
	for _, m := range sent {
		rxSent += len(m.Rx)
	}
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		rx := 0
		for _, up := range got {
			rx += len(up.Radio.Gateways)
		}
		return len(got) == len(sent) && rx == rxSent
	})
	mu.Lock()
	defer mu.Unlock()
	for _, m := range sent {
		up, ok := got[m.DevEUI.String()+":"+itoa(m.FCnt)]
		if !ok {
			t.Fatalf("uplink %s fcnt %d missing", m.DevEUI, m.FCnt)
		}
		want := []byte{1, 0x67}
		if !bytes.HasPrefix(up.Payload, want) || len(up.Payload) != 11 || up.FPort != 2 || !up.Time.Equal(m.Time) || up.LocalTime {
			t.Fatalf("uplink %+v, sent %+v", up, m)
		}
		if len(up.Radio.Gateways) != len(m.Rx) || up.Radio.Frequency != m.Frequency || up.Radio.SF != m.SF {
			t.Fatalf("radio %+v, sent %+v", up.Radio, m.Rx)
		}
		for _, rx := range m.Rx {
			found := false
			for _, g := range up.Radio.Gateways {
				found = found || (g.ID == rx.GatewayEUI.String() && g.RSSI == float64(rx.RSSI) && g.SNR == rx.SNR && g.HasSNR)
			}
			if !found {
				t.Fatalf("reception %+v missing from %+v", rx, up.Radio.Gateways)
			}
		}
	}
	if len(dl.all()) != 0 || c.Get("lorawan.udp_pull_data") != 3 || c.Get("lorawan.uplinks") != uint64(len(sent)) {
		t.Fatalf("dead letters %v, counters %v", dl.all(), c.Snapshot())
	}
}

func itoa(n uint32) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestSourceReplayAndBadMIC: a replayed datagram (after the late-copy
// memory) and a frame with a corrupted MIC become dead letters with their
// rxpk as raw message; garbage gets no ACK.
func TestSourceReplayAndBadMIC(t *testing.T) {
	d := abpDevice(1, devices.MACVersion10, devices.DevAddr{0x26, 0, 0, 1})
	rec := &recorder{}
	src, dl, c := startSource(t, Config{FrameConfig: FrameConfig{DedupWindow: 10 * time.Millisecond}}, lookup{d}, rec.handle)
	conn, err := net.Dial("udp", src.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(token uint16, phy []byte) {
		t.Helper()
		rx, _ := json.Marshal(map[string]any{"rxpk": []map[string]any{{"tmst": 1, "freq": 868.1, "stat": 1, "modu": "LORA", "datr": "SF7BW125", "rssi": -70, "lsnr": 7, "data": phy}}})
		if _, err := conn.Write(append(header(idPushData, token, true), rx...)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 16)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil || !bytes.Equal(buf[:n], []byte{2, byte(token >> 8), byte(token), idPushAck}) {
			t.Fatalf("ack %x, %v", buf[:n], err)
		}
	}
	good := encode(t, d, 10, 2, "data")
	send(1, good)
	waitFor(t, func() bool { return len(rec.uplinks()) == 1 })
	// Forget the frame, as a minute later; then the same bytes are a replay.
	src.frames.mu.Lock()
	src.frames.recent = map[string]recentEntry{}
	src.frames.mu.Unlock()
	send(2, good)
	bad := append([]byte(nil), good...)
	bad[len(bad)-1] ^= 0xff
	send(3, bad)
	waitFor(t, func() bool { return len(dl.all()) == 2 })
	dls := dl.all()
	reasons := map[gateway.Reason]gateway.DeadLetter{}
	for _, x := range dls {
		reasons[x.Reason] = x
	}
	r, m := reasons[gateway.ReasonReplay], reasons[gateway.ReasonBadMIC]
	if r.DevEUI != d.EUI.String() || r.Source != "gateways" || !bytes.Contains(r.Raw, []byte(`"rssi":-70`)) || m.Source != "gateways" || !strings.Contains(m.Detail, "26000001") {
		t.Fatalf("dead letters %+v", dls)
	}
	// Garbage: no ACK, counted.
	if _, err := conn.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return c.Get("lorawan.udp_ignored") == 1 })
	if len(rec.uplinks()) != 1 || c.Get("lorawan.replays") != 1 || c.Get("lorawan.bad_mic") != 1 {
		t.Fatalf("counters %v", c.Snapshot())
	}
}

// TestSourceDrainsOnShutdown: frames already acknowledged to the gateway
// are handled after the context ends, within the drain timeout.
func TestSourceDrainsOnShutdown(t *testing.T) {
	d := abpDevice(1, devices.MACVersion10, devices.DevAddr{0x26, 0, 0, 1})
	rec := &recorder{}
	s, err := New(Config{Name: "gw", Listen: "127.0.0.1:0", FrameConfig: FrameConfig{DedupWindow: 300 * time.Millisecond}}, lookup{d}, &deadLetters{}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, rec.handle) }()
	<-s.Ready()
	conn, _ := net.Dial("udp", s.Addr().String())
	defer conn.Close()
	rx, _ := json.Marshal(map[string]any{"rxpk": []map[string]any{{"stat": 1, "rssi": -70, "data": encode(t, d, 1, 2, "x")}}})
	_, _ = conn.Write(append(header(idPushData, 1, true), rx...))
	buf := make([]byte, 16)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(buf); err != nil {
		t.Fatal(err)
	}
	cancel() // the frame waits in its dedup window
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(rec.uplinks()) != 1 {
		t.Fatal("frame in flight at shutdown was not handled")
	}
	if err := s.Run(context.Background(), rec.handle); err == nil {
		t.Fatal("second Run accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Type: "udp", Listen: "nowhere", MaxInFlight: -1, FrameConfig: FrameConfig{DedupWindow: time.Minute, FCntReset: "maybe", UnknownDevices: "accept"}}.Validate()
	for _, want := range []string{"name is empty", `type "udp"`, `listen "nowhere"`, "max_in_flight", "dedup_window", `fcnt_reset "maybe"`, `unknown_devices "accept"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
	if err := (Config{Name: "gw", Type: SourceType, Listen: ":1700"}).Validate(); err != nil {
		t.Fatal(err)
	}
	c := Config{Name: "gw", Listen: ":1700"}.withDefaults()
	if c.DedupWindow != DefaultDedupWindow || c.FCntReset != FCntResetReject || c.UnknownDevices != UnknownDrop || c.MaxInFlight != DefaultMaxInFlight {
		t.Fatalf("defaults %+v", c)
	}
}
