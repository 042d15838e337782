package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// TestFailedReplayCountedOnce: a malformed message and an uplink of a
// device with a missing model are dead letters; replaying them through
// the API fails again. sensorgate_dead_letters_total and the pipeline's
// dead_letters.<reason> events count each letter once, the malformed one
// the source stored itself included, and still once after it (a failed
// replay is not a new dead letter in either), and the replays are
// counted as dead_letters_replay_failed.
func TestFailedReplayCountedOnce(t *testing.T) {
	mq := testserver.StartMosquitto(t)
	db := testserver.StartInfluxDB(t)
	dir := t.TempDir()
	port := testserver.FreePort(t)
	fleet, _ := simulate.NewFleet(simulate.Options{Format: simulate.ChirpStackV4, Devices: 1, Seed: 9, Start: time.Now().UTC().Add(-time.Minute)})
	dev := fleet.Devices()[0]
	dev.Model = "acme-missing"
	writeYAML(t, filepath.Join(dir, "devices.yaml"), map[string]any{"devices": []devices.Device{dev}})
	cfgPath := filepath.Join(dir, "sensorgate.yaml")
	cfgText := fmt.Sprintf(`
log: {level: warn, format: json}
http: {listen: "127.0.0.1:%[4]d", token: "t0ken"}
state_dir: %[1]s/state
sources:
  - {name: cs4, type: mqtt, format: chirpstack-v4, broker: %[2]q, topics: ["application/+/device/+/event/up"], client_id: replay-metrics}
influx: {url: %[3]q, bucket: sensors/autogen, flush_interval: 20ms}
devices: {import: %[1]s/devices.yaml}
`, dir, mq.URL(), db.URL(), port)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	startDaemon(t, cfg, zerolog.WarnLevel)
	api := opsAPI{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), token: "t0ken"}
	api.waitReady()
	up := fleet.Next()
	malformed := simulate.Message{Topic: "application/x/device/" + dev.EUI.String() + "/event/up", Payload: []byte(`{"deviceInfo": [`)}
	publishAll(t, mq.URL(), []simulate.Message{malformed, up})
	api.waitFor("two dead letters", func() bool {
		return api.call("GET", "/api/v1/deadletters", nil, 200)["count"] == float64(2)
	})

	const (
		storedMalformed = `sensorgate_dead_letters_total{reason="malformed",source="cs4"}`
		storedModel     = `sensorgate_dead_letters_total{reason="unknown_model",source="cs4"}`
		eventModel      = `sensorgate_pipeline_events_total{event="dead_letters.unknown_model"}`
		eventMalformed  = `sensorgate_pipeline_events_total{event="dead_letters.malformed"}`
		eventFailed     = `sensorgate_pipeline_events_total{event="dead_letters_replay_failed"}`
		eventReplayed   = `sensorgate_pipeline_events_total{event="dead_letters_replayed"}`
	)
	check := func(when string, want map[string]float64) {
		t.Helper()
		m := scrapeMetrics(t, api.base)
		for series, w := range want {
			if m[series] != w {
				t.Errorf("%s: %s = %v, want %v", when, series, m[series], w)
			}
		}
	}
	check("before the replay", map[string]float64{storedMalformed: 1, storedModel: 1, eventModel: 1, eventMalformed: 1, eventFailed: 0, eventReplayed: 0})

	res := api.call("POST", "/api/v1/deadletters/replay", map[string]any{}, 200)
	if res["failed"] != float64(2) || res["replayed"] != float64(0) {
		t.Fatalf("replay: %v, want both letters failed", res)
	}
	if n := api.call("GET", "/api/v1/deadletters", nil, 200)["count"]; n != float64(2) {
		t.Fatalf("%v dead letters after the failed replay, want the same 2", n)
	}
	check("after the failed replay", map[string]float64{storedMalformed: 1, storedModel: 1, eventModel: 1, eventMalformed: 1, eventFailed: 2, eventReplayed: 0})
}
