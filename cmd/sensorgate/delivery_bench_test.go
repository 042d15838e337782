package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// BenchmarkDeliveryPaths drains a backlog of uplinks through the path
// the daemon runs (each message acknowledged after an fsynced spool
// append, delivered from the spool), through a real Mosquitto into a real
// InfluxDB, in-process. The synchronous path it was once compared with
// (acknowledged after InfluxDB's 2xx) no longer exists: delivery is the
// spool's alone. Run it interleaved with the tree to compare against:
//
//	go test -run '^$' -bench DeliveryPaths -benchtime 1x -count 3 ./cmd/sensorgate
func BenchmarkDeliveryPaths(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.ReportMetric(deliveryRun(b), "spooled-msgs/s")
	}
}

// deliveryRun drains one backlog of e2e.n uplinks through the daemon and
// returns messages per second.
func deliveryRun(b *testing.B) float64 {
	b.StopTimer()
	mq := testserver.StartMosquitto(b)
	db := testserver.StartInfluxDB(b)
	dir := b.TempDir()
	fleet, _ := simulate.NewFleet(simulate.Options{Format: simulate.ChirpStackV4, Devices: 500, Seed: 7})
	writeYAML(b, filepath.Join(dir, "devices.yaml"), map[string]any{"devices": fleet.Devices()})
	cfgText := fmt.Sprintf(`log: {level: warn, format: json}
state_dir: %[1]s/state
http: {listen: "127.0.0.1:%[4]d"}
spool: {fsync: always}
sources:
  - {name: bench, type: mqtt, format: chirpstack-v4, broker: %[2]q, topics: ["application/+/device/+/event/up"], client_id: bench-paths}
influx: {url: %[3]q, bucket: sensors/autogen}
devices: {import: %[1]s/devices.yaml, tags: [district, site]}
`, dir, mq.URL(), db.URL(), testserver.FreePort(b))
	cfgPath := filepath.Join(dir, "sensorgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		b.Fatal(err)
	}
	presubscribe(b, mq.URL(), "bench-paths", []string{"application/+/device/+/event/up"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	if err := simulate.Publish(ctx, fleet, simulate.PublishOptions{Broker: mq.URL(), ClientID: "bench-pub", QoS: 1, Count: *e2eN}); err != nil {
		b.Fatal(err)
	}
	d, err := NewDaemon(cfg, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	began := time.Now()
	runErr := make(chan error, 1)
	go func() { runErr <- d.Run(ctx) }()
	for uplinkCount(b, db) < *e2eN {
		if ctx.Err() != nil {
			b.Fatalf("InfluxDB holds %d of %d uplinks", uplinkCount(b, db), *e2eN)
		}
		time.Sleep(50 * time.Millisecond)
	}
	el := time.Since(began)
	b.StopTimer()
	cancel()
	<-runErr
	d.Close()
	mq.Stop() // idle servers of earlier runs would only add noise
	db.Stop()
	return float64(*e2eN) / el.Seconds()
}
