package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// opsAPI calls a running daemon's API in tests.
type opsAPI struct {
	t     *testing.T
	base  string
	token string
}

func (a opsAPI) call(method, path string, body any, wantStatus int) map[string]any {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+a.token)
	if method != "GET" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		a.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, wantStatus, b)
	}
	out := map[string]any{}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			a.t.Fatalf("%s %s: not JSON: %s", method, path, b)
		}
	}
	return out
}

func (a opsAPI) waitFor(what string, cond func() bool) {
	a.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			a.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitReady waits until the daemon's /readyz answers 200.
func (a opsAPI) waitReady() {
	a.t.Helper()
	a.waitFor("readiness", func() bool {
		resp, err := http.Get(a.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// TestOpsEndToEnd runs the daemon against a real Mosquitto and InfluxDB:
// a device whose model is wrong sends uplinks, which become dead letters;
// the registry is fixed through the API, the letters replayed through the
// API land in InfluxDB, and a second (forced) replay writes the same
// points. On the way: readiness, unknown-device adoption, device health in
// the API and as device_health points, and the CLI against the daemon.
func TestOpsEndToEnd(t *testing.T) {
	mq := testserver.StartMosquitto(t)
	db := testserver.StartInfluxDB(t)
	dir := t.TempDir()
	port := testserver.FreePort(t)
	// Recent uplinks: health counts the last 24 hours of the clock.
	start := time.Now().UTC().Truncate(time.Second).Add(-10 * time.Minute)

	fleet, _ := simulate.NewFleet(simulate.Options{Format: simulate.ChirpStackV4, Devices: 2, Seed: 5, Start: start})
	fdevs := fleet.Devices()
	broken, stranger := fdevs[0], fdevs[1]
	broken.Model = "acme-missing" // a typo in the vendor sheet
	broken.Name = "bin-7"
	writeYAML(t, filepath.Join(dir, "devices.yaml"), map[string]any{"devices": []devices.Device{broken}})
	cfgText := fmt.Sprintf(`
log: {level: warn, format: json}
http: {listen: "127.0.0.1:%[4]d", token: "t0ken"}
state_dir: %[1]s/state
sources:
  - {name: cs4, type: mqtt, format: chirpstack-v4, broker: %[2]q, topics: ["application/+/device/+/event/up"], client_id: ops-cs4}
influx: {url: %[3]q, bucket: sensors/autogen, flush_interval: 20ms}
devices: {import: %[1]s/devices.yaml, tags: [district], health_interval: 300ms}
`, dir, mq.URL(), db.URL(), port)
	cfgPath := filepath.Join(dir, "sensorgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfg, zerolog.WarnLevel)
	api := opsAPI{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), token: "t0ken"}
	api.waitReady()

	var brokenMsgs, strangerMsgs []simulate.Message
	for len(brokenMsgs) < 5 || len(strangerMsgs) < 1 {
		m := fleet.Next()
		if m.DevEUI == broken.EUI {
			brokenMsgs = append(brokenMsgs, m)
		} else if len(strangerMsgs) == 0 {
			strangerMsgs = append(strangerMsgs, m)
		}
	}
	publishAll(t, mq.URL(), append(brokenMsgs, strangerMsgs...))

	// The broken device's uplinks are dead letters, with its reason.
	api.waitFor("5 unknown_model dead letters", func() bool {
		return api.call("GET", "/api/v1/deadletters?reason=unknown_model", nil, 200)["count"] == float64(5)
	})
	temperatures := func() []row { return rowsOf(db.Query(t, `SELECT "temperature", "device" FROM "air"`)) }
	api.waitFor("the stranger's uplink in InfluxDB", func() bool { return db.Count(t, "uplink") == 1 })
	if n := len(temperatures()); n != 0 {
		t.Fatalf("InfluxDB holds %d temperatures before the fix", n)
	}
	// A replay before the fix fails and adds no dead letter.
	res := api.call("POST", "/api/v1/deadletters/replay", map[string]any{"reason": "unknown_model"}, 200)
	if res["failed"] != float64(5) {
		t.Fatalf("replay before the fix: %v", res)
	}

	// Fix the model through the API, replay: the points arrive.
	api.call("PUT", "/api/v1/devices/"+broken.EUI.String(), map[string]any{"name": "bin-7", "model": "cayenne-lpp", "tags": broken.Tags}, 200)
	res = api.call("POST", "/api/v1/deadletters/replay", map[string]any{"reason": "unknown_model"}, 200)
	if res["replayed"] != float64(5) {
		t.Fatalf("replay after the fix: %v", res)
	}
	api.waitFor("5 temperatures in InfluxDB", func() bool { return len(temperatures()) == 5 })
	rows := temperatures()
	for i, r := range rows {
		if r.str("device") != "bin-7" || !r.time.Equal(gateway.PointTime(brokenMsgs[i].Time)) || r.float("temperature") != brokenMsgs[i].Temperature {
			t.Fatalf("air point %d: %v, want bin-7 at %v, %v", i, r.values, brokenMsgs[i].Time, brokenMsgs[i].Temperature)
		}
	}
	// Again: skipped. Forced: the same points again, so the same count.
	if res = api.call("POST", "/api/v1/deadletters/replay", map[string]any{"reason": "unknown_model"}, 200); res["skipped"] != float64(5) {
		t.Fatalf("second replay: %v", res)
	}
	if res = api.call("POST", "/api/v1/deadletters/replay", map[string]any{"reason": "unknown_model", "force": true}, 200); res["replayed"] != float64(5) {
		t.Fatalf("forced replay: %v", res)
	}
	api.waitFor("the spool to drain", func() bool { return d.spool.Stats().Pending == 0 })
	if n := len(temperatures()); n != 5 {
		t.Fatalf("after a forced replay InfluxDB holds %d temperatures, want 5", n)
	}
	if n := db.Count(t, "uplink"); n != 6 { // 5 replayed + the stranger's
		t.Fatalf("%d uplink points, want 6", n)
	}

	// The stranger (accepted under the network server's name) is listed;
	// adopting it registers it.
	unknown := api.call("GET", "/api/v1/unknown-devices", nil, 200)
	if unknown["count"] != float64(1) || !strings.Contains(fmt.Sprint(unknown["devices"]), stranger.EUI.String()) {
		t.Fatalf("unknown devices: %v", unknown)
	}
	api.call("POST", "/api/v1/unknown-devices/"+stranger.EUI.String()+"/adopt", map[string]any{"name": "bin-8", "model": "cayenne-lpp"}, 201)
	if _, ok := d.Devices.Lookup(stranger.EUI); !ok {
		t.Fatal("adopted device is not in the pipeline's registry")
	}

	// Health: the stranger was heard live (replays are history, not health).
	h := api.call("GET", "/api/v1/devices/"+stranger.EUI.String()+"/health", nil, 200)
	if h["uplinks_24h"] != float64(1) || h["rssi"] == nil {
		t.Fatalf("health: %v", h)
	}
	api.waitFor("device_health points", func() bool {
		return len(rowsOf(db.Query(t, `SELECT "uplinks_24h", "silent" FROM "device_health" WHERE "dev_eui" = '`+stranger.EUI.String()+`'`))) > 0
	})

	// The CLI talks to the running daemon.
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"devices", "list", "-c", cfgPath}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "bin-8") {
		t.Fatalf("devices list: %d %s %s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := Main(context.Background(), []string{"deadletters", "list", "-c", cfgPath, "-reason", "unknown_model"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "5 dead letters") {
		t.Fatalf("deadletters list: %d %s %s", code, out.String(), errOut.String())
	}
}

// TestCLIOffline runs the devices and deadletters commands with no daemon:
// they work on state_dir directly.
func TestCLIOffline(t *testing.T) {
	dir := t.TempDir()
	port := testserver.FreePort(t) // nothing listens there
	cfgText := fmt.Sprintf(`
log: {level: warn}
http: {listen: "127.0.0.1:%d"}
state_dir: %s/state
sources:
  - {name: cs4, type: mqtt, format: chirpstack-v4, broker: "tcp://127.0.0.1:1", topics: ["a/+"]}
influx: {url: "http://127.0.0.1:1", bucket: b}
`, port, dir)
	cfgPath := filepath.Join(dir, "sensorgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	csv := filepath.Join(dir, "sheet.csv")
	if err := os.WriteFile(csv, []byte("dev_eui;name;model\n0101010101010101;a;cayenne-lpp\nzz;b;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), args, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	code, out := run("devices", "import", "-c", cfgPath, csv)
	if code != 1 || !strings.Contains(out, "line 3: zz: devices: invalid EUI") || !strings.Contains(out, "nothing imported") {
		t.Fatalf("bad import: %d\n%s", code, out)
	}
	if err := os.WriteFile(csv, []byte("dev_eui;name;model\n0101010101010101;a;cayenne-lpp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out = run("devices", "import", "-c", cfgPath, "-dry-run", csv); code != 0 || !strings.Contains(out, "1 to create") {
		t.Fatalf("dry run: %d\n%s", code, out)
	}
	if code, out = run("devices", "import", "-c", cfgPath, csv); code != 0 || !strings.Contains(out, "working on") {
		t.Fatalf("import: %d\n%s", code, out)
	}
	if code, out = run("devices", "export", "-c", cfgPath, "-format", "csv"); code != 0 || !strings.Contains(out, "0101010101010101,a,cayenne-lpp") {
		t.Fatalf("export: %d\n%s", code, out)
	}
	if code, out = run("deadletters", "list", "-c", cfgPath); code != 0 || !strings.Contains(out, "0 dead letters") {
		t.Fatalf("deadletters list: %d\n%s", code, out)
	}
	if code, out = run("devices", "frobnicate", "-c", cfgPath); code != 2 {
		t.Fatalf("unknown subcommand: %d\n%s", code, out)
	}
}
