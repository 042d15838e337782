package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// loadConfigText writes a config to dir/sensorgate.yaml and loads it.
func loadConfigText(t *testing.T, dir, text string) *config.Config {
	t.Helper()
	path := filepath.Join(dir, "sensorgate.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// feedMessage reads testdata/feeds/<name>.json and its topic.
func feedMessage(t *testing.T, name string) simulate.Message {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("../../testdata/feeds", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	topic, err := os.ReadFile(filepath.Join("../../testdata/feeds", name+".topic"))
	if err != nil {
		t.Fatal(err)
	}
	return simulate.Message{Topic: strings.TrimSpace(string(topic)), Payload: body}
}

// TestNetworkServerEventsEndToEnd runs the daemon against a real
// Mosquitto and InfluxDB with the network servers' own messages
// (testdata/feeds), each published twice (a redelivery): every gateway of
// an uplink is one uplink_gateway point, ChirpStack's status event is
// device fields, its join and log events and The Things Stack's join are
// device_event points, ack events are counted and dropped, and device
// health shows the last join and the latest error.
func TestNetworkServerEventsEndToEnd(t *testing.T) {
	mq := testserver.StartMosquitto(t)
	db := testserver.StartInfluxDB(t)
	dir := t.TempDir()
	port := testserver.FreePort(t)
	docsDev := devices.Device{EUI: mustParseEUI(t, "0101010101010101"), Name: "docs-sensor", Tags: map[string]string{"district": "centre"}}
	multi := devices.Device{EUI: mustParseEUI(t, "010101010101010a"), Name: "harbour-multi-gw", Tags: map[string]string{"district": "harbour"}}
	writeYAML(t, filepath.Join(dir, "devices.yaml"), map[string]any{"devices": []devices.Device{docsDev, multi}})
	cfgText := fmt.Sprintf(`
log: {level: warn, format: json}
http: {listen: "127.0.0.1:%[4]d", token: %[5]q}
state_dir: %[1]s/state
sources:
  - {name: cs4, type: mqtt, format: chirpstack-v4, broker: %[2]q, topics: ["application/+/device/+/event/+"], client_id: ev-cs4}
  - {name: tts, type: mqtt, format: tts-v3, broker: %[2]q, topics: ["v3/+/devices/+/up", "v3/+/devices/+/join"], client_id: ev-tts, qos: 1}
influx: {url: %[3]q, bucket: sensors/autogen, flush_interval: 20ms}
devices: {import: %[1]s/devices.yaml, tags: [district]}
`, dir, mq.URL(), db.URL(), port, rigToken)
	d := startDaemon(t, loadConfigText(t, dir, cfgText), zerolog.ErrorLevel)
	api := opsAPI{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port), token: rigToken}
	api.waitReady()

	var msgs []simulate.Message
	for _, name := range []string{
		"chirpstack-v4/docs-example",               // 1 gateway
		"chirpstack-v4/multi-gateway-object-upper", // 3 gateways
		"tts-v3/decoded-normalized-two-gateways",   // 2 gateways, one Packet Broker
		"chirpstack-v4/status-docs-example", "chirpstack-v4/join-docs-example", "chirpstack-v4/log-docs-example",
		"chirpstack-v4/ack-docs-example", "tts-v3/join-received-at",
	} {
		msgs = append(msgs, feedMessage(t, name))
	}
	msgs = append(msgs, msgs...) // every message again, as a broker redelivers
	publishAll(t, mq.URL(), msgs)
	api.waitFor("every message taken twice", func() bool {
		c := d.Counters
		return c.Get("uplinks_written") == 6 && c.Get("device_status") == 2 && c.Get("device_events.join") == 4 &&
			c.Get("device_events.log.error") == 2 && c.Get("events_ignored") == 2
	})
	api.waitFor("the spool delivered", func() bool { return d.spool.Stats().Pending == 0 })

	perGateway := map[string]int{}
	for _, r := range rowsOf(db.Query(t, `SELECT "rssi", "gateway_id", "dev_eui" FROM "uplink_gateway"`)) {
		perGateway[r.str("dev_eui")+"/"+r.str("gateway_id")]++
	}
	want := map[string]int{
		"0101010101010101/0016c001f153a14c": 1,
		"010101010101010a/0016c001f153a14c": 1, "010101010101010a/b827ebfffe8a1c02": 1, "010101010101010a/b827ebfffe8a1c03": 1,
		"0101010101010105/6a7e111a10000000": 1, "0101010101010105/packetbroker": 1,
	}
	if fmt.Sprint(perGateway) != fmt.Sprint(want) {
		t.Errorf("uplink_gateway points by device/gateway %v, want %v", perGateway, want)
	}
	if n := db.Count(t, "uplink"); n != 3 {
		t.Errorf("%d uplink points, want 3", n)
	}

	st := rowsOf(db.Query(t, `SELECT "batteryLevel", "margin", "externalPower", "device", "district" FROM "device"`))
	if len(st) != 1 || st[0].float("batteryLevel") != 88.3 || st[0].float("margin") != 10 || st[0].values["externalPower"] != false ||
		st[0].str("device") != "docs-sensor" || st[0].str("district") != "centre" {
		t.Errorf("device status points %+v", st)
	}
	events := map[string]string{}
	for _, r := range rowsOf(db.Query(t, `SELECT * FROM "device_event"`)) {
		events[r.str("dev_eui")+"/"+r.str("type")+"/"+r.str("level")+"/"+r.str("code")] = r.str("dev_addr") + r.str("description")
	}
	wantEvents := map[string]string{
		"0101010101010101/join//":               "00189440",
		"0101010101010101/log/error/uplink_mic": "MIC of join-request is invalid, make sure keys are correct",
		"0004a30b001c0530/join//":               "00bcb929",
	}
	if fmt.Sprint(events) != fmt.Sprint(wantEvents) {
		t.Errorf("device_event points %v, want %v", events, wantEvents)
	}

	h := api.call("GET", "/api/v1/devices/0101010101010101/health", nil, 200)
	if h["last_join"] != "2022-07-18T09:33:28.823500726Z" || !strings.HasPrefix(fmt.Sprint(h["last_error"]), "uplink_mic: MIC of join-request") ||
		h["battery_level"] != 88.3 {
		t.Errorf("health of the docs device: last_join %v, last_error %v, battery_level %v", h["last_join"], h["last_error"], h["battery_level"])
	}
	if h["uplinks_24h"] != nil && h["uplinks_24h"].(float64) > 1 {
		t.Errorf("events counted as uplinks: %v", h["uplinks_24h"])
	}
}
