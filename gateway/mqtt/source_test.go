package mqtt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// memDeadLetters is gateway.DeadLetters in memory; fail makes Put refuse.
type memDeadLetters struct {
	mu   sync.Mutex
	got  []gateway.DeadLetter
	puts int
	fail func(n int) bool // n: 1 for the first Put
}

func (m *memDeadLetters) Put(_ context.Context, dl gateway.DeadLetter) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.puts++
	if m.fail != nil && m.fail(m.puts) {
		return errors.New("dead-letter store unavailable")
	}
	m.got = append(m.got, dl)
	return nil
}

func (m *memDeadLetters) list() []gateway.DeadLetter {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]gateway.DeadLetter(nil), m.got...)
}

// recorder is a handler that keeps what it was given.
type recorder struct {
	mu  sync.Mutex
	ups []gateway.Uplink
}

func (r *recorder) handle(_ context.Context, up gateway.Uplink) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ups = append(r.ups, up)
	return nil
}

func (r *recorder) list() []gateway.Uplink {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]gateway.Uplink(nil), r.ups...)
}

// syncBuffer collects log output; paho may call back (and log) after a
// test's Run returned, which testing's writer does not allow.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newTestSource returns a ChirpStack v4 source on the broker; its log is
// printed if the test fails.
func newTestSource(t *testing.T, broker, clientID string, dl gateway.DeadLetters, edit ...func(*Config)) *Source {
	t.Helper()
	cfg := Config{
		Name: "test-" + clientID, Type: "mqtt", Format: FormatChirpStackV4, Broker: broker,
		Topics: []string{"application/+/device/+/event/up"}, ClientID: clientID,
		ReconnectMax: 500 * time.Millisecond,
	}
	for _, e := range edit {
		e(&cfg)
	}
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("source log:\n%s", logs)
		}
	})
	s, err := New(cfg, dl, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startRun runs s until the returned stop is called (or the test ends) and
// waits until it is subscribed. stop returns Run's error.
func startRun(t *testing.T, s *Source, h gateway.Handler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, h) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				err = errors.New("Run did not return within 20s of cancellation")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	waitFor(t, 10*time.Second, "source subscribed", s.Ready)
	return stop
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// publisher connects a plain paho client for publishing test messages.
func publisher(t *testing.T, broker string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID("publisher-" + t.Name()).SetCleanSession(true))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func publish(t *testing.T, c paho.Client, topic string, payload []byte) {
	t.Helper()
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
}

// v4Message is a ChirpStack v4 uplink for device n.
func v4Message(n int) (topic string, payload []byte, eui string) {
	eui = fmt.Sprintf("01010101%08x", n)
	topic = "application/app/device/" + eui + "/event/up"
	payload = fmt.Appendf(nil, `{"deduplicationId":"dedup-%d","time":"2024-03-05T11:22:33Z","deviceInfo":{"deviceName":"dev-%d","devEui":"%s"},"fCnt":%d,"fPort":1,"data":"AQ==","rxInfo":[{"gatewayId":"0016c001f153a14c","rssi":-80,"snr":5}],"txInfo":{"frequency":868100000}}`, n, n, eui, n)
	return topic, payload, eui
}

func TestSourceDeliversEveryMessageOnce(t *testing.T) {
	m := testserver.StartMosquitto(t)
	s := newTestSource(t, m.URL(), "deliver", &memDeadLetters{})
	var rec recorder
	stop := startRun(t, s, rec.handle)
	pub := publisher(t, m.URL())

	const n = 200
	want := map[string]bool{}
	for i := range n {
		topic, payload, eui := v4Message(i)
		want[eui] = true
		publish(t, pub, topic, payload)
	}
	waitFor(t, 30*time.Second, fmt.Sprintf("%d uplinks", n), func() bool { return len(rec.list()) >= n })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := rec.list()
	if len(got) != n {
		t.Errorf("handler got %d uplinks, want %d", len(got), n)
	}
	seen := map[string]int{}
	for _, up := range got {
		seen[up.DevEUI.String()]++
		if up.Source != "test-deliver" || !strings.HasSuffix(up.Topic, "/event/up") || len(up.Raw) == 0 {
			t.Errorf("uplink without Source/Topic/Raw: %q %q %d bytes", up.Source, up.Topic, len(up.Raw))
		}
	}
	for eui := range want {
		if seen[eui] != 1 {
			t.Errorf("device %s delivered %d times, want once", eui, seen[eui])
		}
	}
}

func TestSourceRedeliversRefusedAfterReconnect(t *testing.T) {
	m := testserver.StartMosquitto(t)
	pub := publisher(t, m.URL())

	// First run: the pipeline refuses everything.
	refused := make(chan string, 16)
	first := newTestSource(t, m.URL(), "redeliver", &memDeadLetters{})
	stop := startRun(t, first, func(_ context.Context, up gateway.Uplink) error {
		refused <- up.ID
		return errors.New("sink unavailable")
	})
	topic, payload, _ := v4Message(7)
	publish(t, pub, topic, payload)
	select {
	case id := <-refused:
		if id != "dedup-7" {
			t.Fatalf("refused %q, want dedup-7", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler never saw the message")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Second run, same client id: the broker redelivers the unacked message.
	var rec recorder
	second := newTestSource(t, m.URL(), "redeliver", &memDeadLetters{})
	startRun(t, second, rec.handle)
	waitFor(t, 10*time.Second, "redelivery of dedup-7", func() bool {
		for _, up := range rec.list() {
			if up.ID == "dedup-7" {
				return true
			}
		}
		return false
	})
}

func TestSourceRestartsSessionToGetRefusedMessageAgain(t *testing.T) {
	m := testserver.StartMosquitto(t)
	pub := publisher(t, m.URL())
	var calls atomic.Int32
	var rec recorder
	s := newTestSource(t, m.URL(), "restart", &memDeadLetters{})
	startRun(t, s, func(ctx context.Context, up gateway.Uplink) error {
		if calls.Add(1) == 1 {
			return errors.New("sink briefly unavailable")
		}
		return rec.handle(ctx, up)
	})
	topic, payload, eui := v4Message(9)
	publish(t, pub, topic, payload)
	waitFor(t, 15*time.Second, "the refused message delivered again in the same Run", func() bool {
		ups := rec.list()
		return len(ups) == 1 && ups[0].DevEUI.String() == eui
	})
}

func TestSourceMalformedBecomesDeadLetterAndIsAcked(t *testing.T) {
	m := testserver.StartMosquitto(t)
	pub := publisher(t, m.URL())
	dl := &memDeadLetters{}
	var rec recorder
	s := newTestSource(t, m.URL(), "malformed", dl)
	stop := startRun(t, s, rec.handle)

	badTopic := "application/app/device/0101010101010101/event/up"
	publish(t, pub, badTopic, []byte("not json"))
	topic, payload, _ := v4Message(1)
	publish(t, pub, topic, payload)
	waitFor(t, 10*time.Second, "dead letter and uplink", func() bool { return len(dl.list()) == 1 && len(rec.list()) == 1 })
	d := dl.list()[0]
	if d.Reason != gateway.ReasonMalformed || string(d.Raw) != "not json" || d.Topic != badTopic ||
		d.Source != "test-malformed" || !strings.Contains(d.Detail, "chirpstack-v4") || d.Time.IsZero() {
		t.Errorf("dead letter = %+v", d)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Acked: a new session gets the next message, not the malformed one again.
	again := newTestSource(t, m.URL(), "malformed", dl)
	startRun(t, again, rec.handle)
	topic, payload, _ = v4Message(2)
	publish(t, pub, topic, payload)
	waitFor(t, 10*time.Second, "second uplink", func() bool { return len(rec.list()) == 2 })
	if n := len(dl.list()); n != 1 {
		t.Errorf("%d dead letters after reconnecting, want 1: the malformed message was not acked", n)
	}
}

func TestSourceKeepsMessageWhenDeadLetterFails(t *testing.T) {
	m := testserver.StartMosquitto(t)
	pub := publisher(t, m.URL())
	dl := &memDeadLetters{fail: func(n int) bool { return n == 1 }}
	s := newTestSource(t, m.URL(), "dlfail", dl)
	startRun(t, s, (&recorder{}).handle)
	publish(t, pub, "application/app/device/x/event/up", []byte("{"))
	waitFor(t, 15*time.Second, "the dead letter stored on redelivery", func() bool { return len(dl.list()) == 1 })
	dl.mu.Lock()
	puts := dl.puts
	dl.mu.Unlock()
	if puts < 2 {
		t.Errorf("Put called %d times, want a retry after the failure", puts)
	}
}

func TestSourceBoundsConcurrency(t *testing.T) {
	m := testserver.StartMosquitto(t)
	pub := publisher(t, m.URL())
	const limit, n = 3, 30
	var cur, peak atomic.Int32
	var rec recorder
	s := newTestSource(t, m.URL(), "bound", &memDeadLetters{}, func(c *Config) { c.MaxInFlight = limit })
	startRun(t, s, func(ctx context.Context, up gateway.Uplink) error {
		c := cur.Add(1)
		for {
			p := peak.Load()
			if c <= p || peak.CompareAndSwap(p, c) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond) // hold the slot so others pile up
		cur.Add(-1)
		return rec.handle(ctx, up)
	})
	for i := range n {
		topic, payload, _ := v4Message(i)
		publish(t, pub, topic, payload)
	}
	waitFor(t, 20*time.Second, "all uplinks", func() bool { return len(rec.list()) == n })
	if p := peak.Load(); p > limit {
		t.Errorf("%d handlers ran at once, limit %d", p, limit)
	}
}

func TestSourceStartsWhileBrokerDown(t *testing.T) {
	m := testserver.StartMosquitto(t)
	m.Stop()
	var rec recorder
	s := newTestSource(t, m.URL(), "late", &memDeadLetters{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, rec.handle) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	time.Sleep(300 * time.Millisecond) // let a connection attempt fail
	if s.Ready() {
		t.Fatal("Ready with the broker down")
	}
	m.Restart()
	waitFor(t, 15*time.Second, "connection once the broker is up", s.Ready)
	pub := publisher(t, m.URL())
	topic, payload, _ := v4Message(3)
	publish(t, pub, topic, payload)
	waitFor(t, 10*time.Second, "uplink", func() bool { return len(rec.list()) == 1 })
}

func TestSourceRunReturnsPromptlyWhenNeverConnected(t *testing.T) {
	port := testserver.FreePort(t)
	s := newTestSource(t, fmt.Sprintf("tcp://127.0.0.1:%d", port), "nobroker", &memDeadLetters{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Run(ctx, (&recorder{}).handle); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %s to return after cancellation", d)
	}
}

func TestNewValidatesAndDefaults(t *testing.T) {
	good := Config{Name: "cs", Format: FormatChirpStackV4, Broker: "tcp://127.0.0.1:1883", Topics: []string{"a/#"}}
	s, err := New(good, &memDeadLetters{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.ClientID != "sensorgate-cs" || *s.cfg.QoS != 1 || s.cfg.Clean || s.cfg.MaxInFlight != DefaultMaxInFlight {
		t.Errorf("defaults not applied: %+v", s.cfg)
	}
	if good.RejectUnknown() {
		t.Error("a network-server feed rejects unknown devices by default")
	}
	if !(Config{Format: FormatJSON}).RejectUnknown() {
		t.Error("generic JSON accepts unknown devices by default")
	}
	if _, err := New(good, nil, zerolog.Nop()); err == nil {
		t.Error("New without dead letters succeeded")
	}
	qos := 3
	bad := Config{Format: "chirpstack", Broker: "127.0.0.1:1883", QoS: &qos, UnknownDevices: "maybe", Type: "http"}
	_, err = New(bad, &memDeadLetters{}, zerolog.Nop())
	if err == nil {
		t.Fatal("New accepted a bad config")
	}
	for _, want := range []string{"name missing", `format "chirpstack"`, "broker", "topics missing", "qos 3", "unknown_devices", `type "http"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestNewWarnsTTSQoS(t *testing.T) {
	var logs syncBuffer
	_, err := New(Config{Name: "ttn", Format: FormatTTSV3, Broker: "tcp://127.0.0.1:1883", Topics: []string{"v3/+/devices/+/up"}},
		&memDeadLetters{}, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "QoS 0 only") {
		t.Errorf("no QoS warning for tts-v3: %s", logs.String())
	}
}

func TestRunTwiceAtOnceFails(t *testing.T) {
	m := testserver.StartMosquitto(t)
	s := newTestSource(t, m.URL(), "twice", &memDeadLetters{})
	startRun(t, s, (&recorder{}).handle)
	if err := s.Run(context.Background(), (&recorder{}).handle); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second Run: %v", err)
	}
}

// TestSourceKeepsDeviceOrder: messages of one device are handled in the
// order they were published, one at a time, while different devices are
// handled at once.
func TestSourceKeepsDeviceOrder(t *testing.T) {
	m := testserver.StartMosquitto(t)
	pub := publisher(t, m.URL())
	const devs, each = 8, 25
	var mu sync.Mutex
	seen := map[string][]uint32{}
	busy := map[string]bool{}
	var cur, peak atomic.Int32
	var total atomic.Int32
	s := newTestSource(t, m.URL(), "order", &memDeadLetters{}, func(c *Config) { c.MaxInFlight = 16 })
	startRun(t, s, func(_ context.Context, up gateway.Uplink) error {
		dev := up.DevEUI.String()
		mu.Lock()
		if busy[dev] {
			t.Errorf("device %s handled twice at once", dev)
		}
		busy[dev] = true
		mu.Unlock()
		c := cur.Add(1)
		for p := peak.Load(); c > p && !peak.CompareAndSwap(p, c); p = peak.Load() {
		}
		time.Sleep(time.Duration(up.FCnt%3) * time.Millisecond) // uneven handling times
		cur.Add(-1)
		mu.Lock()
		busy[dev] = false
		seen[dev] = append(seen[dev], up.FCnt)
		mu.Unlock()
		total.Add(1)
		return nil
	})
	for f := range each {
		for d := range devs {
			eui := fmt.Sprintf("02020202%08x", d)
			payload := fmt.Appendf(nil, `{"deduplicationId":"o-%d-%d","time":"2024-03-05T11:22:33Z","deviceInfo":{"deviceName":"dev-%d","devEui":"%s"},"fCnt":%d,"fPort":1,"data":"AQ==","rxInfo":[{"gatewayId":"0016c001f153a14c","rssi":-80,"snr":5}],"txInfo":{"frequency":868100000}}`, d, f, d, eui, f)
			pub.Publish("application/app/device/"+eui+"/event/up", 1, false, payload)
		}
	}
	waitFor(t, 30*time.Second, "every uplink", func() bool { return total.Load() == devs*each })
	mu.Lock()
	defer mu.Unlock()
	for dev, fcnts := range seen {
		for i, f := range fcnts {
			if f != uint32(i) {
				t.Fatalf("device %s handled frame counters %v, want 0..%d in order", dev, fcnts, each-1)
			}
		}
	}
	if p := peak.Load(); p < 2 {
		t.Errorf("at most %d handler ran at once: devices were not handled in parallel", p)
	}
}

func TestOrderKey(t *testing.T) {
	cs := &Source{}
	js := &Source{unordered: true}
	for _, tc := range []struct {
		src   *Source
		topic string
		want  string
	}{
		{cs, "application/7/device/0102030405060708/event/up", "application/7/device/0102030405060708"},
		{cs, "application/7/device/0102030405060708/rx", "application/7/device/0102030405060708"},
		{cs, "v3/app@ttn/devices/meter-1/up", "v3/app@ttn/devices/meter-1"},
		{cs, "v3/app@ttn/devices/meter-1/up/normalized", "v3/app@ttn/devices/meter-1"},
		{cs, "sensors/hall-3/temperature", "sensors/hall-3/temperature"},
		{cs, "plain", "plain"},
		{cs, "x/device", "x/device"},
		{js, "application/7/device/0102030405060708/event/up", ""},
	} {
		if got := tc.src.orderKey(tc.topic); got != tc.want {
			t.Errorf("orderKey(%q) = %q, want %q", tc.topic, got, tc.want)
		}
	}
}

// TestSourceOnConnectBeforeMessages: the OnConnect callbacks of a
// connection have run before any of its messages reaches the handler,
// also for the messages a persistent session queued, which the broker
// sends right after CONNACK.
func TestSourceOnConnectBeforeMessages(t *testing.T) {
	m := testserver.StartMosquitto(t)
	s := newTestSource(t, m.URL(), "gate", &memDeadLetters{})
	var connected atomic.Int32
	s.OnConnect(func() {
		time.Sleep(100 * time.Millisecond) // a slow callback widens the race it must win
		connected.Add(1)
	})
	var early atomic.Int32
	var rec recorder
	h := func(ctx context.Context, up gateway.Uplink) error {
		if connected.Load() == 0 {
			early.Add(1)
		}
		return rec.handle(ctx, up)
	}
	stop := startRun(t, s, h)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Queued while the source is away: they arrive right after CONNACK.
	pub := publisher(t, m.URL())
	const n = 50
	for i := range n {
		topic, payload, _ := v4Message(i)
		publish(t, pub, topic, payload)
	}
	connected.Store(0)
	startRun(t, s, h)
	waitFor(t, 30*time.Second, fmt.Sprintf("%d uplinks", n), func() bool { return len(rec.list()) >= n })
	if early.Load() != 0 {
		t.Errorf("%d messages reached the handler before the connection's OnConnect callbacks ran", early.Load())
	}
}
