package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/deadletter"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// expectedUplink is what one published uplink must become in InfluxDB.
type expectedUplink struct {
	source, device, model, district string
	time                            time.Time
	temperature                     float64
}

// TestEndToEnd runs the daemon against a real Mosquitto and a real InfluxDB
// 1.8: 1,100 uplinks in four feed formats, redeliveries and bad messages,
// then checks what InfluxDB holds, point by point.
func TestEndToEnd(t *testing.T) {
	mq := testserver.StartMosquitto(t)
	db := testserver.StartInfluxDB(t)
	dir := t.TempDir()
	start := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)

	cs, _ := simulate.NewFleet(simulate.Options{Format: simulate.ChirpStackV4, Devices: 20, Seed: 11, Start: start})
	tts, _ := simulate.NewFleet(simulate.Options{Format: simulate.TTSV3, Devices: 10, Seed: 12, Start: start.Add(time.Millisecond)})
	devs := append(cs.Devices(), tts.Devices()...)
	// Devices of the chirpstack-v3 and json feeds: no model, values come
	// from the network server's object or the sensor's own JSON.
	v3EUI, _ := devices.ParseEUI("00aa00aa00aa0001")
	devs = append(devs,
		devices.Device{EUI: v3EUI, Name: "river-gauge-1", Tags: map[string]string{"district": "harbour"}},
		devices.Device{EUI: mustParseEUI(t, "00bb00bb00bb0002"), Name: "kiosk-7", Tags: map[string]string{"district": "centre"}},
	)
	writeYAML(t, filepath.Join(dir, "devices.yaml"), map[string]any{"devices": devs})
	cfgText := fmt.Sprintf(`
log: {level: warn, format: json}
state_dir: %[1]s/state
http: {listen: "127.0.0.1:%[4]d"}  # tests run daemons side by side: no fixed API port
sources:
  - {name: cs4, type: mqtt, format: chirpstack-v4, broker: %[2]q, topics: ["application/+/device/+/event/up"], client_id: it-cs4}
  - {name: tts, type: mqtt, format: tts-v3, broker: %[2]q, topics: ["v3/+/devices/+/up"], client_id: it-tts, qos: 1}
  - name: cs3
    type: mqtt
    format: chirpstack-v3
    broker: %[2]q
    topics: ["application/+/device/+/rx"]
    client_id: it-cs3
    map: [{key: waterTemp, quantity: water.temperature.current}, {key: level_cm, quantity: water.level, scale: 0.01}]
  - name: kiosks
    type: mqtt
    format: json
    broker: %[2]q
    topics: ["city/kiosk/+/data"]
    client_id: it-json
    json: {device_id: "topic:2", time: ts, time_format: unix_ms}
    map: [{key: temp, quantity: air.temperature}, {key: noise, quantity: sound.laeq}]
influx: {url: %[3]q, bucket: sensors/autogen, flush_interval: 20ms}
devices: {import: %[1]s/devices.yaml, tags: [district, site]}
`, dir, mq.URL(), db.URL(), testserver.FreePort(t))
	cfgPath := filepath.Join(dir, "sensorgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// Create the persistent sessions first, as a long-running deployment
	// has them: what is published before the daemon connects is queued.
	for _, s := range cfg.Sources {
		presubscribe(t, mq.URL(), s.MQTT.ClientID, s.MQTT.Topics)
	}

	want := map[string]expectedUplink{} // dev_eui + time
	var msgs []simulate.Message
	for i := 0; i < 600; i++ {
		m := cs.Next()
		msgs = append(msgs, m)
		want[key(m.DevEUI.String(), m.Time)] = expectedUplink{source: "cs4", device: nameOf(devs, m.DevEUI), model: "cayenne-lpp", district: districtOf(devs, m.DevEUI), time: m.Time, temperature: m.Temperature}
	}
	for i := 0; i < 400; i++ {
		m := tts.Next()
		msgs = append(msgs, m)
		want[key(m.DevEUI.String(), m.Time)] = expectedUplink{source: "tts", device: nameOf(devs, m.DevEUI), model: "cayenne-lpp", district: districtOf(devs, m.DevEUI), time: m.Time, temperature: m.Temperature}
	}
	for i := 0; i < 50; i++ {
		tm := start.Add(time.Duration(i) * time.Minute).Add(123456789)
		body := fmt.Sprintf(`{"applicationID":"8","applicationName":"rivers","deviceName":"gauge","deviceProfileName":"River Gauge","devEUI":"00AA00AA00AA0001",`+
			`"rxInfo":[{"gatewayID":"b827ebfffe000001","time":%q,"rssi":-101,"loRaSNR":-3.5}],"txInfo":{"frequency":867700000,"dr":3},`+
			`"adr":true,"fCnt":%d,"fPort":5,"data":"AQI=","object":{"waterTemp":%d.5,"level_cm":%d}}`, tm.Format(time.RFC3339Nano), i, i%20, 150+i)
		msgs = append(msgs, simulate.Message{Topic: "application/8/device/00aa00aa00aa0001/rx", Payload: []byte(body), DevEUI: v3EUI, Time: tm})
		want[key(v3EUI.String(), tm)] = expectedUplink{source: "cs3", device: "river-gauge-1", model: "river-gauge", district: "harbour", time: tm}
	}
	for i := 0; i < 50; i++ {
		tm := start.Add(time.Duration(i) * 30 * time.Second).Truncate(time.Millisecond)
		body := fmt.Sprintf(`{"ts":%d,"temp":%d.25,"noise":%d}`, tm.UnixMilli(), 10+i%15, 40+i)
		msgs = append(msgs, simulate.Message{Topic: "city/kiosk/kiosk-7/data", Payload: []byte(body), Time: tm})
		want[key("00bb00bb00bb0002", tm)] = expectedUplink{source: "kiosks", device: "kiosk-7", model: "kiosks", district: "centre", time: tm, temperature: float64(10+i%15) + 0.25}
	}
	// Redeliveries: the same messages again must not double anything.
	msgs = append(msgs, msgs[:25]...)
	msgs = append(msgs, msgs[600:610]...)
	// Bad messages become dead letters, not crashes.
	bad := []simulate.Message{
		{Topic: "application/x/device/0101/event/up", Payload: []byte(`{"deduplicationId": `)},
		{Topic: "application/x/device/0909090909090909/event/up", Payload: []byte(`{"time":"2026-05-04T08:00:00Z","deviceInfo":{"devEui":"0909090909090909"},"fPort":2,"data":"AWcA"}`)},
		{Topic: "v3/a/devices/d/up", Payload: []byte(`{"end_device_ids":{"dev_eui":"zz"}}`)},
		{Topic: "city/kiosk/unknown-kiosk/data", Payload: []byte(`{"ts":1,"temp":1}`)},
	}
	// A Cayenne device sending a truncated payload: a decode error.
	bad = append(bad, simulate.Message{Topic: "application/x/device/" + devs[0].EUI.String() + "/event/up", Payload: []byte(fmt.Sprintf(
		`{"time":"2026-05-04T07:00:00Z","deviceInfo":{"devEui":%q},"fPort":2,"fCnt":1,"data":"AWc="}`, devs[0].EUI))})
	// …except that an unknown device on a ChirpStack feed is accepted by
	// default (named by the network server); make that explicit:
	want[key("0909090909090909", time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC))] = expectedUplink{source: "cs4", device: "0909090909090909", model: "", time: time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)}
	wantDeadLetters := len(bad) - 1
	msgs = append(msgs, bad...)

	publishAll(t, mq.URL(), msgs)

	d := startDaemon(t, cfg, zerolog.WarnLevel)

	deadline := time.Now().Add(60 * time.Second)
	for {
		n := db.Count(t, "uplink")
		dls, _ := deadletter.ReadAll(filepath.Join(dir, "state", deadletter.FileName))
		if n == len(want) && len(dls) == wantDeadLetters {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("InfluxDB holds %d uplinks (want %d), %d dead letters (want %d); counters %v", n, len(want), len(dls), wantDeadLetters, d.Counters.Snapshot())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Every uplink point: right tags and the network-server time.
	rows := db.Query(t, `SELECT "rssi", "f_cnt", "payload", "device", "dev_eui", "model", "source", "district" FROM "uplink"`)
	got := map[string]bool{}
	for _, r := range rowsOf(rows) {
		k := key(r.str("dev_eui"), r.time)
		e, ok := want[k]
		if !ok {
			t.Fatalf("unexpected uplink point %v", r)
		}
		if got[k] {
			t.Fatalf("uplink %s written twice", k)
		}
		got[k] = true
		if r.str("source") != e.source || r.str("device") != e.device || r.str("model") != e.model || r.str("district") != e.district {
			t.Fatalf("uplink %s: tags %v, want %+v", k, r.values, e)
		}
	}
	// Normalized temperature: the exact value at the exact time.
	temps := 0
	for _, r := range rowsOf(db.Query(t, `SELECT "temperature", "dev_eui", "device", "source", "channel", "district", "site", "model" FROM "air"`)) {
		k := key(r.str("dev_eui"), r.time)
		e, ok := want[k]
		if !ok {
			t.Fatalf("air point for unknown uplink %s: %v", k, r.values)
		}
		if r.float("temperature") != e.temperature {
			t.Fatalf("%s: temperature %v, want %v", k, r.float("temperature"), e.temperature)
		}
		if e.source == "kiosks" && r.str("channel") != "" || e.source != "kiosks" && r.str("channel") != "1" {
			t.Fatalf("%s: channel tag %q", k, r.str("channel"))
		}
		temps++
	}
	if wantTemps := 600 + 400 + 50; temps != wantTemps {
		t.Fatalf("%d air temperature points, want %d", temps, wantTemps)
	}
	if n := db.Count(t, "water"); n != 50 {
		t.Fatalf("%d water points, want 50", n)
	}
	lvl := rowsOf(db.Query(t, `SELECT "level", "temperature_current" FROM "water" WHERE time = '`+gateway.PointTime(start.Add(3*time.Minute+123456789)).Format(time.RFC3339Nano)+`'`))
	if len(lvl) != 1 || lvl[0].float("level") != 1.53 || lvl[0].float("temperature_current") != 3.5 {
		t.Fatalf("river gauge point: %+v", lvl)
	}
	// Schema 2: the gauge's two values are both quantities (the source's
	// map), so nothing is left for decoded_river_gauge.
	if n := db.Count(t, "decoded_river_gauge"); n != 0 {
		t.Fatalf("%d decoded_river_gauge points, want none: waterTemp and level_cm are in water already", n)
	}
	// The daemon recorded the schema it writes.
	if v := rowsOf(db.Query(t, `SELECT "schema_version", "version" FROM "sensorgate"`)); len(v) != 1 || v[0].float("schema_version") != gateway.SchemaVersion || v[0].str("version") == "" {
		t.Fatalf("sensorgate schema points %+v, want one with schema_version %d", v, gateway.SchemaVersion)
	}
	// Exactly these tag keys: nothing unbounded.
	keys := db.Query(t, `SHOW TAG KEYS FROM "air"`)
	var tagKeys []string
	for _, r := range rowsOf(keys) {
		tagKeys = append(tagKeys, r.str("tagKey"))
	}
	sort.Strings(tagKeys)
	if strings.Join(tagKeys, ",") != "channel,dev_eui,device,district,model,site,source" {
		t.Fatalf("air tag keys %v", tagKeys)
	}
	dls, _ := deadletter.ReadAll(filepath.Join(dir, "state", deadletter.FileName))
	reasons := map[string]int{}
	for _, dl := range dls {
		reasons[string(dl.Reason)]++
		if len(dl.Raw) == 0 || dl.Source == "" || dl.Topic == "" {
			t.Fatalf("dead letter without raw message, source or topic: %+v", dl)
		}
	}
	if fmt.Sprint(reasons) != "map[decode_error:1 malformed:2 unknown_device:1]" {
		t.Fatalf("dead letter reasons %v", reasons)
	}
}

func mustParseEUI(t *testing.T, s string) devices.EUI {
	e, err := devices.ParseEUI(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// key names an uplink's points: its device and its time as the points
// have it, cut to the millisecond (gateway.PointTime, schema 2). A row's
// time is cut already; a published message's is cut here.
func key(eui string, t time.Time) string {
	return eui + "@" + strconv.FormatInt(gateway.PointTime(t).UnixNano(), 10)
}

func nameOf(devs []devices.Device, e devices.EUI) string {
	for _, d := range devs {
		if d.EUI == e {
			return d.Name
		}
	}
	return ""
}

func districtOf(devs []devices.Device, e devices.EUI) string {
	for _, d := range devs {
		if d.EUI == e {
			return d.Tags["district"]
		}
	}
	return ""
}

func writeYAML(t testing.TB, path string, v any) {
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func presubscribe(t testing.TB, broker, clientID string, topics []string) {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(clientID).SetCleanSession(false))
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	filters := map[string]byte{}
	for _, tp := range topics {
		filters[tp] = 1
	}
	if tok := c.SubscribeMultiple(filters, nil); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	c.Disconnect(100)
}

func publishAll(t *testing.T, broker string, msgs []simulate.Message) {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID("it-publisher"))
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(100)
	toks := make([]paho.Token, 0, len(msgs))
	for _, m := range msgs {
		toks = append(toks, c.Publish(m.Topic, 1, false, m.Payload))
	}
	for _, tok := range toks {
		if tok.Wait(); tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
}

type row struct {
	time   time.Time
	values map[string]any
}

func (r row) str(k string) string {
	s, _ := r.values[k].(string)
	return s
}

func (r row) float(k string) float64 {
	switch v := r.values[k].(type) {
	case json.Number:
		f, _ := v.Float64()
		return f
	case float64:
		return v
	}
	return 0
}

func rowsOf(series []testserver.Series) []row {
	var out []row
	for _, s := range series {
		for _, vals := range s.Values {
			r := row{values: map[string]any{}}
			for i, c := range s.Columns {
				if c == "time" {
					ns, _ := strconv.ParseInt(fmt.Sprint(vals[i]), 10, 64)
					r.time = time.Unix(0, ns).UTC()
					continue
				}
				r.values[c] = vals[i]
			}
			for k, v := range s.Tags {
				r.values[k] = v
			}
			out = append(out, r)
		}
	}
	return out
}
