package main

import (
	"encoding/base64"
	"encoding/json"
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

// observedRig is a daemon running in-process against a real Mosquitto and
// InfluxDB after a scripted day of uplinks, for the metrics and status
// page tests:
//
//   - good: registered, reports every ~40 minutes until now (green);
//   - flaky: registered, one uplink of which does not decode (a dead
//     letter, so amber);
//   - gone: registered, stopped reporting after the first third of the
//     day (silent, red);
//   - stranger: not registered, accepted under the network server's name
//     (an unknown device to adopt);
//   - never: registered, never heard from (grey);
//   - one message that is not JSON (a malformed dead letter).
type observedRig struct {
	d      *Daemon
	base   string // http://127.0.0.1:PORT
	token  string
	broker string

	good, flaky, gone, stranger, never devices.Device
	// written counts uplinks that became points; decodeErrors the flaky
	// device's one broken uplink.
	written, decodeErrors int
}

const rigToken = "status-t0ken"

func startObservedRig(t *testing.T) *observedRig {
	t.Helper()
	mq := testserver.StartMosquitto(t)
	db := testserver.StartInfluxDB(t)
	dir := t.TempDir()
	port := testserver.FreePort(t)
	const n = 144 // one uplink every 10 minutes for 24 hours, over four devices
	now := time.Now().UTC()
	// The day ends an hour ago; the last hour brings one more uplink of
	// every device that still reports, so they are fresh now.
	fleet, err := simulate.NewFleet(simulate.Options{Format: simulate.ChirpStackV4, Devices: 4, Seed: 11,
		Start: now.Add(-n*10*time.Minute - time.Hour), Interval: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	fd := fleet.Devices()
	r := &observedRig{token: rigToken, broker: mq.URL(), base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	r.good, r.flaky, r.gone, r.stranger = fd[0], fd[1], fd[2], fd[3]
	r.good.Name, r.flaky.Name, r.gone.Name = "bin-north-1", "air-school-3", "level-river-2"
	r.never = devices.Device{EUI: devices.EUI{0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0x0f, 0xff, 0x01}, Name: "meter-depot-9", Model: simulate.Model,
		Tags: map[string]string{"district": "east"}}
	writeYAML(t, filepath.Join(dir, "devices.yaml"), map[string]any{"devices": []devices.Device{r.good, r.flaky, r.gone, r.never}})

	var msgs []simulate.Message
	brokeOne := false
	for i := 0; i < n; i++ {
		m := fleet.Next()
		switch {
		case m.DevEUI == r.gone.EUI && i > n/3:
			continue // it went silent
		case m.DevEUI == r.flaky.EUI && !brokeOne && i > n/2:
			m.Payload = withPayload(t, m.Payload, []byte{0x01, 0xee}) // channel 1, no such LPP type
			brokeOne = true
			r.decodeErrors++
		default:
			r.written++
		}
		msgs = append(msgs, m)
	}
	if !brokeOne {
		t.Fatal("the stream has no uplink of the flaky device to break")
	}
	// The devices that still report do once more; the silent one's draws
	// are left out (nothing of it follows, so no frame counts as lost).
	for fresh := map[devices.EUI]bool{}; len(fresh) < 3; {
		m := fleet.Next()
		if m.DevEUI != r.gone.EUI {
			fresh[m.DevEUI] = true
			msgs = append(msgs, m)
			r.written++
		}
	}

	cfgText := fmt.Sprintf(`
log: {level: warn, format: json}
http: {listen: "127.0.0.1:%[4]d", token: %[5]q}
state_dir: %[1]s/state
sources:
  - {name: city-chirpstack, type: mqtt, format: chirpstack-v4, broker: %[2]q, topics: ["application/+/device/+/event/up"], client_id: status-cs4}
influx: {url: %[3]q, bucket: sensors/autogen, flush_interval: 20ms}
devices: {import: %[1]s/devices.yaml, tags: [district]}
`, dir, mq.URL(), db.URL(), port, rigToken)
	cfgPath := filepath.Join(dir, "sensorgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	r.d = startDaemon(t, cfg, zerolog.ErrorLevel)
	api := opsAPI{t: t, base: r.base, token: rigToken}
	api.waitReady()
	msgs = append(msgs, simulate.Message{Topic: "application/x/device/0000000000000000/event/up", Payload: []byte("{not json")})
	publishAll(t, mq.URL(), msgs)
	api.waitFor("every uplink taken", func() bool {
		return r.d.Counters.Get("uplinks_written") == uint64(r.written) &&
			r.d.Counters.Get("dead_letters.decode_error") == uint64(r.decodeErrors) &&
			len(api.call("GET", "/api/v1/deadletters", nil, 200)["dead_letters"].([]any)) == r.decodeErrors+1
	})
	api.waitFor("the spool delivered", func() bool { return r.d.spool.Stats().Pending == 0 })
	return r
}

// withPayload replaces a ChirpStack v4 message's application payload.
func withPayload(t *testing.T, msg, payload []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatal(err)
	}
	m["data"] = base64.StdEncoding.EncodeToString(payload)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
