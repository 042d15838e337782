package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// TestDropWatchWarnsAboutDroppingBroker: a Mosquitto that keeps only a
// few queued messages for the persistent session (max_queued_messages
// 10) loses most of a backlog published while sensorgate is down; after
// sensorgate connects again, live uplinks of most devices skip frames,
// and the daemon logs the one warning naming the broker setting.
func TestDropWatchWarnsAboutDroppingBroker(t *testing.T) {
	const devs = 20
	r := &faultRig{t: t, mq: testserver.StartMosquitto(t, testserver.MaxQueuedMessages(10)), db: testserver.StartInfluxDB(t), dir: t.TempDir()}
	fr := newFaultRig(t, 7, devs) // for its fleet; its own servers stay idle
	r.fleet, r.devs, r.log = fr.fleet, fr.devs, filepath.Join(r.dir, "sensorgate.log")
	cfgPath := r.writeConfig(rigConfig{})

	// run starts the daemon and waits until it is subscribed.
	run := func() (stop func(), counter func(string) uint64) {
		cfg, err := config.Load(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		logf, err := os.OpenFile(r.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		d, err := NewDaemon(cfg, zerolog.New(logf).Level(zerolog.InfoLevel).With().Timestamp().Logger())
		if err != nil {
			t.Fatal(err)
		}
		d.drops.window = 5 * time.Second
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		stopped := false
		stop = func() {
			if stopped {
				return
			}
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("daemon Run: %v", err)
			}
			d.Close()
			logf.Close()
		}
		t.Cleanup(stop)
		src := d.sources[0].(*mqtt.Source)
		for deadline := time.Now().Add(30 * time.Second); !src.Ready(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the daemon did not subscribe\n%s", r.logTail())
			}
		}
		return stop, d.Counters.Get
	}
	waitUplinks := func(counter func(string) uint64, n uint64) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for counter("uplinks") < n {
			if time.Now().After(deadline) {
				t.Fatalf("the daemon took %d of %d uplinks\n%s", counter("uplinks"), n, r.logTail())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// publish sends msgs in bursts the broker's limits hold even while
	// connected (it queues what waits for an inflight slot, and drops
	// beyond max_queued_messages then too), each taken before the next.
	publish := func(counter func(string) uint64, msgs []simulate.Message) {
		t.Helper()
		base := counter("uplinks")
		for i := 0; i < len(msgs); i += 50 {
			burst := msgs[i:min(i+50, len(msgs))]
			publishAll(t, r.mq.URL(), burst)
			waitUplinks(counter, base+uint64(i+len(burst)))
		}
	}

	// Every device is heard while sensorgate runs: device health knows
	// its frame counter.
	stop, counter := run()
	publish(counter, r.stream(10*devs))
	stop()
	if n := strings.Count(readFile(t, r.log), "max_queued_messages"); n != 0 {
		t.Fatalf("warned %d times with nothing dropped", n)
	}

	// Down: the broker keeps what its limits allow of the backlog (for
	// Mosquitto 2.0, max_inflight_messages plus max_queued_messages).
	backlog := r.stream(300)
	publishAll(t, r.mq.URL(), backlog)

	// Up again: the kept messages arrive, then live uplinks skip frames.
	_, counter = run()
	live := r.stream(10 * devs)
	time.Sleep(time.Second) // the kept backlog first
	kept := counter("uplinks")
	publish(counter, live)
	received := counter("uplinks")
	if kept >= uint64(len(backlog)) {
		t.Fatalf("the broker kept the whole backlog (%d uplinks after reconnecting): it drops nothing, so nothing tests the warning", kept)
	}
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(readFile(t, r.log), "max_queued_messages") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no warning about the dropping broker; %d of %d backlog messages arrived\n%s", kept, len(backlog), r.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(6 * time.Second) // past the window: still one warning
	if n := strings.Count(readFile(t, r.log), "max_queued_messages"); n != 1 {
		t.Fatalf("%d warnings, want 1\n%s", n, r.logTail())
	}
	t.Logf("%d of %d backlog messages survived the broker; %d uplinks after reconnecting", kept, len(backlog), received)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}
