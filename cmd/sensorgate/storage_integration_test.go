package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/gateway/ttsstorage"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// The Things Stack refill, end to end: real Mosquitto and InfluxDB 1.8,
// sensorgate in-process, and a test server speaking the Storage
// Integration's documented HTTP format (The Things Stack itself cannot
// run here), holding every uplink the "network server" published.

const storageKey = "NNSXS.E2EKEYID.E2ESECRETTHATMUSTNOTBELOGGED"

// storageRig is a faultRig with a TTS fleet and a Storage Integration.
type storageRig struct {
	*faultRig
	storage *testserver.TTSStorage
	cfgPath string
}

// newStorageRig starts the servers and writes the config; extra adds keys
// to the source's storage map (", timeout: 1h").
func newStorageRig(t *testing.T, devicesN int, extra ...string) *storageRig {
	t.Helper()
	r := &faultRig{t: t, mq: testserver.StartMosquitto(t), db: testserver.StartInfluxDB(t), dir: t.TempDir()}
	r.log = filepath.Join(r.dir, "sensorgate.log")
	s := &storageRig{faultRig: r, storage: testserver.StartTTSStorage(t, "weather", storageKey)}
	fleet, err := simulate.NewFleet(simulate.Options{Format: simulate.TTSV3, Devices: devicesN, Seed: 20})
	if err != nil {
		t.Fatal(err)
	}
	r.devs = fleet.Devices()
	writeYAML(t, filepath.Join(r.dir, "devices.yaml"), map[string]any{"devices": r.devs})
	text := fmt.Sprintf(`log: {level: info, format: json}
state_dir: %[1]s/state
http: {listen: "127.0.0.1:%[2]d"}
sources:
  - name: tts
    type: mqtt
    format: tts-v3
    broker: %[3]q
    topics: ["v3/+/devices/+/up"]
    client_id: storage-e2e
    qos: 0
    reconnect_max: 500ms
    storage: {url: %[4]q, api_key: "${E2E_STORAGE_KEY}", application_id: weather, request_interval: 1ms, delay: 10ms%[6]s}
influx: {url: %[5]q, bucket: sensors/autogen, flush_interval: 20ms}
devices: {import: %[1]s/devices.yaml, tags: [district, site]}
`, r.dir, testserver.FreePort(t), r.mq.URL(), s.storage.URL(), r.db.URL(), strings.Join(extra, ""))
	t.Setenv("E2E_STORAGE_KEY", storageKey)
	s.cfgPath = filepath.Join(r.dir, "sensorgate.yaml")
	if err := os.WriteFile(s.cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// start runs the daemon and waits until its source is connected and
// subscribed.
func (s *storageRig) start() *inProcess {
	s.t.Helper()
	p := s.runInProcess(s.cfgPath)
	src := p.sources[0].(*mqtt.Source)
	deadline := time.Now().Add(30 * time.Second)
	for !src.Ready() {
		if time.Now().After(deadline) {
			s.t.Fatalf("the source did not connect within 30s\n%s", s.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return p
}

// stream returns n messages of a fresh fleet whose uplink times start
// after now (the first connection starts the cursor at the wall clock),
// one a second, and stores all of them in the Storage Integration.
func (s *storageRig) stream(n, devicesN int) []simulate.Message {
	s.t.Helper()
	fleet, err := simulate.NewFleet(simulate.Options{Format: simulate.TTSV3, Devices: devicesN, Seed: 20,
		Start: time.Now().Add(time.Second).UTC().Truncate(time.Millisecond), Interval: time.Second})
	if err != nil {
		s.t.Fatal(err)
	}
	msgs := make([]simulate.Message, n)
	for i := range msgs {
		msgs[i] = fleet.Next()
		if err := s.storage.Store(msgs[i].Payload); err != nil {
			s.t.Fatal(err)
		}
	}
	return msgs
}

// publish publishes msgs through the broker; sensorgate's subscription is
// QoS 0, as The Things Stack's MQTT server offers nothing else.
func (s *storageRig) publish(msgs []simulate.Message) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := publishReliably(ctx, s.mq.URL(), "tts-network-server", msgs, 2000, nil); err != nil {
		s.t.Fatal(err)
	}
}

// TestStorageRefillExactCount is issue 20's exact count: 10,000 uplinks
// published at QoS 0, a window of 2,000 of them while sensorgate is
// stopped (the broker keeps no QoS 0 message for it), and after the
// refill at its next connection InfluxDB holds exactly the 10,000, none
// doubled, though the Storage Integration returned the first minute
// before the gap and the 4,000 published after it a second time.
func TestStorageRefillExactCount(t *testing.T) {
	const devicesN = 50
	s := newStorageRig(t, devicesN)
	p := s.start()
	msgs := s.stream(10000, devicesN)

	s.publish(msgs[:4000])
	awaitUplinks(t, s.db, 4000, 2*time.Minute, s.daemonState(p))
	p.stop(t) // disconnected: saves the cursor at the newest uplink taken

	s.publish(msgs[4000:6000]) // nobody receives these
	if n := uplinksIn(t, s.db); n != 4000 {
		t.Fatalf("InfluxDB holds %d uplinks while sensorgate is stopped, want 4000", n)
	}

	before := len(s.storage.Requests())
	p = s.start() // the connection asks for the refill
	s.publish(msgs[6000:])
	awaitUplinks(t, s.db, 10000, 3*time.Minute, s.daemonState(p))
	want := expectSet{}
	want.add(msgs...)
	assertExactly(t, s.db, want)

	// The refill began a margin before the newest uplink taken before the
	// stop, not at the beginning.
	reqs := s.storage.Requests()[before:]
	if len(reqs) == 0 {
		t.Fatal("the Storage Integration was never asked")
	}
	if got, want := reqs[0].Get("after"), msgs[3999].Time.Add(-ttsstorage.Margin).Format(time.RFC3339Nano); got != want {
		t.Errorf("the refill asked for uplinks after %s, want after %s (the last one taken, less %s)", got, want, ttsstorage.Margin)
	}
	// Until the refill is logged, it may still be running.
	deadline := time.Now().Add(time.Minute)
	for len(s.logLines("refilled from the Storage Integration")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no refill logged\n%s", s.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := p.counter("storage.uplinks"); n < 6000 {
		t.Errorf("the refill took %d uplinks, want at least the 6,000 from the margin on", n)
	}
	if n := uplinksIn(t, s.db); n != 10000 {
		t.Errorf("InfluxDB holds %d uplinks after the refill ended, want 10000", n)
	}
}

// TestStorageRefillRevokedKey: with the API key revoked the refill fails
// with an error naming the key by its id and saying what to do, live
// uplinks keep flowing, and nothing is lost: the next start with a valid
// key fetches the gap.
func TestStorageRefillRevokedKey(t *testing.T) {
	const devicesN = 10
	s := newStorageRig(t, devicesN)
	p := s.start()
	msgs := s.stream(300, devicesN)
	s.publish(msgs[:100])
	awaitUplinks(t, s.db, 100, time.Minute, s.daemonState(p))
	p.stop(t)
	s.publish(msgs[100:150]) // the gap
	// The Storage Integration holds only the gap's and earlier uplinks
	// now: the later ones come live.
	s.storage.Revoke(true)

	p = s.start()
	s.publish(msgs[150:250])
	awaitUplinks(t, s.db, 200, time.Minute, s.daemonState(p))
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(s.logTail(), "NNSXS.E2EKEYID.***") {
		if time.Now().After(deadline) {
			t.Fatalf("no error naming the key\n%s", s.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.stop(t)
	log, _ := os.ReadFile(s.log)
	if strings.Contains(string(log), "E2ESECRET") {
		t.Error("the log shows the API key's secret")
	}
	for _, want := range []string{"storage.api_key", "Read application traffic", "nothing is lost"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("the log does not say %q", want)
		}
	}

	s.storage.Revoke(false)
	p = s.start()
	s.publish(msgs[250:])
	want := expectSet{}
	want.add(msgs...)
	awaitUplinks(t, s.db, 300, time.Minute, s.daemonState(p))
	assertExactly(t, s.db, want)
}

// TestBackfillCommand: sensorgate backfill writes a range of stored
// uplinks offline (delivering them before it exits) and through a running
// daemon; a second, larger range overwrites the first, doubling nothing;
// a refused key exits non-zero with the key named by its id only.
func TestBackfillCommand(t *testing.T) {
	const devicesN = 10
	s := newStorageRig(t, devicesN)
	msgs := s.stream(300, devicesN) // stored only: never published
	run := func(args ...string) (int, string, string) {
		var out, errOut strings.Builder
		code := Main(context.Background(), append([]string{"backfill", "-c", s.cfgPath}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	since := msgs[0].Time.Add(-time.Second).Format(time.RFC3339Nano)

	// Offline: no daemon answers.
	code, out, errOut := run("--source", "tts", "--since", since, "--until", msgs[199].Time.Add(500*time.Millisecond).Format(time.RFC3339Nano))
	if code != 0 || !strings.Contains(out, "tts: 200 uplinks") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	want := expectSet{}
	want.add(msgs[:200]...)
	assertExactly(t, s.db, want)

	// Through the running daemon, the whole range.
	p := s.start()
	code, out, errOut = run("--source", "tts", "--since", since)
	if code != 0 || !strings.Contains(out, "tts: 300 uplinks") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	want.add(msgs[200:]...)
	awaitUplinks(t, s.db, 300, time.Minute, s.daemonState(p))
	assertExactly(t, s.db, want)
	if !slices.Contains(p.ops.api.Routes(), "POST /api/v1/backfill") {
		t.Errorf("the daemon's API does not serve POST /api/v1/backfill (openapi.yaml says it does): %v", p.ops.api.Routes())
	}

	s.storage.Revoke(true)
	code, out, errOut = run("--source", "tts", "--since", since)
	if code == 0 || !strings.Contains(errOut, "NNSXS.E2EKEYID.***") || strings.Contains(errOut+out, "E2ESECRET") || !strings.Contains(out, "tts: 0 uplinks") {
		t.Errorf("refused key: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	for _, args := range [][]string{{"--since", since}, {"--source", "tts"}, {"--source", "nope", "--since", "1h"}} {
		if code, _, _ := run(args...); code == 0 {
			t.Errorf("backfill %v: exit 0", args)
		}
	}
}

// TestStorageRefillStalledShutdown: a Storage Integration that stalls in
// the middle of a refill does not hold up shutdown (the refill is
// cancelled with the daemon), and what the refill had not written is
// fetched at the next start.
func TestStorageRefillStalledShutdown(t *testing.T) {
	const devicesN = 10
	s := newStorageRig(t, devicesN, ", timeout: 1h, page_size: 10")
	p := s.start()
	msgs := s.stream(200, devicesN)
	s.publish(msgs[:50])
	awaitUplinks(t, s.db, 50, time.Minute, s.daemonState(p))
	p.stop(t)
	s.publish(msgs[50:100]) // the gap

	s.storage.StallAfter(5) // every response: five lines, then nothing
	before := len(s.storage.Requests())
	p = s.start()
	deadline := time.Now().Add(time.Minute)
	for len(s.storage.Requests()) == before {
		if time.Now().After(deadline) {
			t.Fatalf("no refill request\n%s", s.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.stop(t) // fails the test if Run does not return within 60s

	s.storage.StallAfter(0)
	p = s.start()
	s.publish(msgs[100:])
	want := expectSet{}
	want.add(msgs...)
	awaitUplinks(t, s.db, 200, time.Minute, s.daemonState(p))
	assertExactly(t, s.db, want)
}

// TestStorageRefillAfterCut: the refill follows a reconnection, not only a
// start: the network to the broker is cut while the daemon runs, a third
// of the uplinks is published meanwhile (QoS 0: the broker keeps none of
// them), and after paho reconnects InfluxDB holds every uplink once.
func TestStorageRefillAfterCut(t *testing.T) {
	const devicesN = 20
	s := newStorageRig(t, devicesN)
	px := startTCPProxy(t, s.mq.URL()[len("tcp://"):])
	cfg, err := os.ReadFile(s.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.cfgPath, []byte(strings.Replace(string(cfg), s.mq.URL(), px.URL(), 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := s.start()
	msgs := s.stream(3000, devicesN)
	s.publish(msgs[:1000])
	awaitUplinks(t, s.db, 1000, time.Minute, s.daemonState(p))

	px.cut()
	src := p.sources[0].(*mqtt.Source)
	deadline := time.Now().Add(time.Minute)
	for src.Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not notice the cut\n%s", s.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.publish(msgs[1000:2000]) // nobody receives these
	if err := px.restore(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(time.Minute)
	for !src.Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not reconnect\n%s", s.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.publish(msgs[2000:])
	awaitUplinks(t, s.db, 3000, 2*time.Minute, s.daemonState(p))
	want := expectSet{}
	want.add(msgs...)
	assertExactly(t, s.db, want)
	deadline = time.Now().Add(time.Minute)
	for len(s.logLines("refilled from the Storage Integration")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no refill logged\n%s", s.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := uplinksIn(t, s.db); n != 3000 {
		t.Errorf("InfluxDB holds %d uplinks after the refill ended, want 3000", n)
	}
}
