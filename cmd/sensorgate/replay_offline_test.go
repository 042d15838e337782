package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/deadletter"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// TestOfflineReplayDelivers: `deadletters replay` with no daemon running
// builds the pipeline from the config, replays, and delivers the points
// to InfluxDB before it returns, through the daemon's own shutdown drain,
// which does not wait out flush_interval (an hour here).
func TestOfflineReplayDelivers(t *testing.T) {
	db := testserver.StartInfluxDB(t)
	dir := t.TempDir()
	fleet, err := simulate.NewFleet(simulate.Options{Format: simulate.ChirpStackV4, Devices: 3, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	writeYAML(t, filepath.Join(dir, "devices.yaml"), map[string]any{"devices": fleet.Devices()})
	cfgPath := filepath.Join(dir, "sensorgate.yaml")
	cfgText := fmt.Sprintf(`log: {level: warn}
state_dir: %[1]s/state
http: {listen: "127.0.0.1:%[4]d"}
sources:
  - {name: cs, type: mqtt, format: chirpstack-v4, broker: "tcp://127.0.0.1:1", topics: ["application/+/device/+/event/up"]}
influx: {url: %[2]q, bucket: %[3]q, flush_interval: 1h}
devices: {import: %[1]s/devices.yaml}
`, dir, db.URL(), db.Bucket(), testserver.FreePort(t)) // nothing listens on the HTTP port: no daemon
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o750); err != nil {
		t.Fatal(err)
	}
	// Letters of messages a decoder refused then, fixed since.
	store, err := deadletter.Open(filepath.Join(dir, "state", deadletter.FileName), deadletter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const n = 7
	for range n {
		m := fleet.Next()
		if err := store.Put(ctx, gateway.DeadLetter{Time: time.Now(), Source: "cs", Topic: m.Topic, DevEUI: m.DevEUI.String(),
			Reason: gateway.ReasonDecode, Detail: "decoder bug, fixed since", Raw: m.Payload}); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	var out, errb bytes.Buffer
	if code := Main(ctx, []string{"deadletters", "replay", "-c", cfgPath}, &out, &errb); code != 0 {
		t.Fatalf("replay: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), fmt.Sprintf("%d replayed, 0 failed", n)) || strings.Contains(errb.String(), "not yet in InfluxDB") {
		t.Fatalf("replay output:\n%s\n%s", out.String(), errb.String())
	}
	// The command has returned: the points are in InfluxDB already.
	if got := db.Count(t, "uplink"); got != n {
		t.Fatalf("InfluxDB holds %d uplink points after the offline replay, want %d", got, n)
	}
}
