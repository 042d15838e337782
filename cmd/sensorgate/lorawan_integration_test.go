package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/deadletter"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// sentUplink is a simulated frame and the source it was sent through.
type sentUplink struct {
	simulate.SemtechMessage
	source string
}

// TestLoRaWANEndToEnd runs the daemon with a semtech-udp source on a
// loopback port and a gateway-bridge MQTT source on a real Mosquitto,
// writing to a real InfluxDB. A simulated fleet of ABP devices sends
// encrypted frames, most heard by several gateways; a replayed frame, a
// frame with a broken MIC, a bad-CRC event and a malformed event go along.
// InfluxDB must then hold exactly one uplink per frame, one uplink_gateway
// point per gateway that heard it, and the decrypted values; the dead
// letters exactly the replay, the bad MIC and the malformed event.
func TestLoRaWANEndToEnd(t *testing.T) {
	mq := testserver.StartMosquitto(t)
	db := testserver.StartInfluxDB(t)
	dir := t.TempDir()
	start := time.Date(2026, 6, 1, 7, 0, 0, 0, time.UTC)
	fleet, err := simulate.NewSemtechFleet(simulate.SemtechOptions{Devices: 5, Gateways: 3, Seed: 41, Start: start, Interval: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var csv bytes.Buffer
	if err := fleet.WriteDevicesCSV(&csv); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "devices.csv"), csv.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	udpAddr := freeUDPAddr(t)
	cfgPath := filepath.Join(dir, "sensorgate.yaml")
	cfgText := fmt.Sprintf(`
log: {level: warn, format: json}
state_dir: %[1]s/state
http: {listen: "127.0.0.1:%[6]d"}  # tests run daemons side by side: no fixed API port
sources:
  - {name: udp-gw, type: semtech-udp, listen: %[2]q, dedup_window: 300ms, unknown_devices: reject}
  - name: bridge
    type: mqtt
    format: gateway-bridge
    broker: %[3]q
    topics: ["eu868/gateway/+/event/up"]
    client_id: it-bridge
    dedup_window: 1s
influx: {url: %[4]q, bucket: %[5]q, flush_interval: 20ms}
devices: {import: %[1]s/devices.csv, tags: [district]}
`, dir, udpAddr, mq.URL(), db.URL(), db.Bucket(), testserver.FreePort(t))
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// The bridge's persistent session exists before the daemon starts, as
	// in a deployment: what is published meanwhile is queued for it.
	presubscribe(t, mq.URL(), cfg.Sources[1].MQTT.ClientID, cfg.Sources[1].MQTT.Topics)

	d := startDaemon(t, cfg, zerolog.WarnLevel)
	waitUDPListening(t, udpAddr)

	// Semtech UDP: 12 uplinks through the simulated gateways' forwarders.
	var sent []sentUplink
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	err = simulate.SendSemtech(sctx, fleet, simulate.SemtechSendOptions{Addr: udpAddr, Count: 12,
		OnSent: func(m simulate.SemtechMessage) { sent = append(sent, sentUplink{m, "udp-gw"}) }})
	if err != nil {
		t.Fatal(err)
	}
	awaitCounter(t, d, "lorawan.uplinks", 12)

	// A replay: a frame counter already taken, with other bytes (an exact
	// copy would be dropped as a late duplicate), and a broken MIC.
	devs := fleet.Devices()
	first := sent[0]
	replay, err := simulate.EncodeUplink(sessionOf(devs, first.DevEUI), first.FCnt, first.FPort, []byte{1, 0x67, 0x7f, 0xff})
	if err != nil {
		t.Fatal(err)
	}
	badMIC := append([]byte(nil), sent[1].PHYPayload...)
	binary.BigEndian.PutUint32(badMIC[len(badMIC)-4:], 0xdeadbeef)
	for _, phy := range [][]byte{replay, badMIC} {
		pushRaw(t, udpAddr, sent[0].Rx[0].GatewayEUI, phy)
	}

	// Gateway Bridge: 10 more uplinks of the same fleet, each copy a
	// message of its own gateway, plus a bad-CRC copy and a broken event.
	var msgs []simulate.Message
	for i := 0; i < 10; i++ {
		m := fleet.Next()
		sent = append(sent, sentUplink{m, "bridge"})
		for j, rx := range m.Rx {
			msgs = append(msgs, bridgeEvent(m, rx, "CRC_OK", uint32(100*i+j)))
		}
	}
	msgs = append(msgs, bridgeEvent(sent[len(sent)-1].SemtechMessage, sent[len(sent)-1].Rx[0], "BAD_CRC", 9999),
		simulate.Message{Topic: "eu868/gateway/b827ebfffe000001/event/up", Payload: []byte("\x0a\x08protobuf")})
	publishAll(t, mq.URL(), msgs)

	const want = 22
	multi, totalRx := 0, 0
	for _, m := range sent {
		totalRx += len(m.Rx)
		if len(m.Rx) > 1 {
			multi++
		}
	}
	if multi < 5 {
		t.Fatalf("only %d of %d frames heard by several gateways: pick another seed", multi, want)
	}
	statePath := filepath.Join(dir, "state", deadletter.FileName)
	deadline := time.Now().Add(60 * time.Second)
	for {
		dls, _ := deadletter.ReadAll(statePath)
		if db.Count(t, "uplink") == want && db.Count(t, "uplink_gateway") == totalRx && len(dls) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("InfluxDB holds %d uplinks (want %d), %d uplink_gateway points (want %d); %d dead letters (want 3); counters %v",
				db.Count(t, "uplink"), want, db.Count(t, "uplink_gateway"), totalRx, len(dls), d.Counters.Snapshot())
		}
		time.Sleep(50 * time.Millisecond)
	}

	uplinks := map[string]row{}
	for _, r := range rowsOf(db.Query(t, `SELECT * FROM "uplink"`)) {
		k := key(r.str("dev_eui"), r.time)
		if _, dup := uplinks[k]; dup {
			t.Fatalf("uplink %s written twice", k)
		}
		uplinks[k] = r
	}
	gws := map[string][]row{}
	for _, r := range rowsOf(db.Query(t, `SELECT * FROM "uplink_gateway"`)) {
		k := key(r.str("dev_eui"), r.time)
		gws[k] = append(gws[k], r)
	}
	temps := map[string]row{}
	for _, r := range rowsOf(db.Query(t, `SELECT "temperature", "dev_eui" FROM "air" WHERE "channel" = '1'`)) {
		temps[key(r.str("dev_eui"), r.time)] = r
	}
	if len(uplinks) != want || len(temps) != want {
		t.Fatalf("%d uplinks, %d temperatures, want %d", len(uplinks), len(temps), want)
	}
	for _, m := range sent {
		k := key(m.DevEUI.String(), m.Time)
		u, ok := uplinks[k]
		if !ok {
			t.Fatalf("no uplink for %s (%s FCnt %d)", k, m.source, m.FCnt)
		}
		dev := deviceOf(devs, m.DevEUI)
		wantFields := map[string]string{
			"source": m.source, "device": dev.Name, "model": "cayenne-lpp", "district": dev.Tags["district"],
			"f_cnt": strconv.FormatUint(uint64(m.FCnt), 10), "f_port": "2", "frequency": strconv.FormatUint(m.Frequency, 10),
			"sf": strconv.Itoa(m.SF), "gateways": strconv.Itoa(len(m.Rx)),
			// Schema 2: the best reception is its uplink_gateway point's.
			"rssi": "<nil>", "snr": "<nil>",
			"payload": base64.StdEncoding.EncodeToString(weatherPayload(m.SemtechMessage)),
		}
		for f, w := range wantFields {
			if got := fmt.Sprint(u.values[f]); got != w {
				t.Errorf("uplink %s (%s): %s = %s, want %s", k, m.source, f, got, w)
			}
		}
		if got := temps[k].float("temperature"); got != m.Temperature {
			t.Errorf("uplink %s: temperature %v, want %v", k, got, m.Temperature)
		}
		g := gws[k]
		if len(g) != len(m.Rx) {
			t.Fatalf("uplink %s: %d uplink_gateway points, want one per gateway of %d", k, len(g), len(m.Rx))
		}
		sort.Slice(g, func(i, j int) bool { return g[i].str("gateway_id") < g[j].str("gateway_id") })
		rx := append([]simulate.SemtechRx(nil), m.Rx...)
		sort.Slice(rx, func(i, j int) bool { return rx[i].GatewayEUI.String() < rx[j].GatewayEUI.String() })
		for i := range rx {
			if g[i].str("gateway_id") != rx[i].GatewayEUI.String() || g[i].float("rssi") != float64(rx[i].RSSI) ||
				g[i].float("snr") != rx[i].SNR || g[i].str("source") != m.source || g[i].str("device") != dev.Name {
				t.Errorf("uplink_gateway %s: %v, want %+v from %s", k, g[i].values, rx[i], m.source)
			}
		}
	}

	dls, err := deadletter.ReadAll(statePath)
	if err != nil {
		t.Fatal(err)
	}
	got := map[gateway.Reason]gateway.DeadLetter{}
	for _, dl := range dls {
		got[dl.Reason] = dl
	}
	if dl := got[gateway.ReasonReplay]; dl.Source != "udp-gw" || dl.DevEUI != first.DevEUI.String() || len(dl.Raw) == 0 {
		t.Errorf("replay dead letter %+v", dl)
	}
	if dl := got[gateway.ReasonBadMIC]; dl.Source != "udp-gw" || len(dl.Raw) == 0 {
		t.Errorf("bad MIC dead letter %+v", dl)
	}
	if dl := got[gateway.ReasonMalformed]; dl.Source != "bridge" || dl.Topic == "" || string(dl.Raw) != "\x0a\x08protobuf" {
		t.Errorf("malformed dead letter %+v", dl)
	}
	if len(got) != 3 {
		t.Errorf("dead letter reasons %v", got)
	}
	for name, w := range map[string]uint64{"lorawan.crc_errors": 1, "lorawan.replays": 1, "lorawan.bad_mic": 1, "lorawan.uplinks": want} {
		if g := d.Counters.Get(name); g != w {
			t.Errorf("counter %s = %d, want %d", name, g, w)
		}
	}
}

// freeUDPAddr returns a loopback UDP address no socket holds now.
func freeUDPAddr(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// waitUDPListening sends PULL_DATA until the semtech-udp source answers
// with PULL_ACK: the daemon listens from then on.
func waitUDPListening(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pull := []byte{2, 0x12, 0x34, 2, 0xb8, 0x27, 0xeb, 0xff, 0xfe, 0, 0, 0x99}
	buf := make([]byte, 16)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.Write(pull); err == nil {
			_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if n, err := c.Read(buf); err == nil && n == 4 && buf[3] == 4 {
				return
			}
		}
		// A refused datagram (nothing listening yet) fails the read at
		// once: wait a little before the next try.
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no PULL_ACK from %s in 20s", addr)
}

// pushRaw sends one frame as gateway gw's PUSH_DATA and waits for PUSH_ACK.
func pushRaw(t *testing.T, addr string, gw devices.EUI, phy []byte) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body, _ := json.Marshal(map[string]any{"rxpk": []map[string]any{{"time": "2026-06-01T09:00:00Z", "stat": 1, "freq": 868.1,
		"modu": "LORA", "datr": "SF7BW125", "rssi": -80, "lsnr": 3.0, "size": len(phy), "data": phy}}})
	pkt := append(append([]byte{2, 0xbe, 0xef, 0}, gw[:]...), body...)
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(buf); err != nil || n != 4 || buf[3] != 1 {
		t.Fatalf("PUSH_ACK %x %v", buf[:n], err)
	}
}

// bridgeEvent is one gateway's copy of m as ChirpStack Gateway Bridge
// publishes it with the JSON marshaler.
func bridgeEvent(m simulate.SemtechMessage, rx simulate.SemtechRx, crc string, uplinkID uint32) simulate.Message {
	gw := rx.GatewayEUI.String()
	b, _ := json.Marshal(map[string]any{
		"phyPayload": base64.StdEncoding.EncodeToString(m.PHYPayload),
		"txInfo": map[string]any{"frequency": m.Frequency, "modulation": map[string]any{
			"lora": map[string]any{"bandwidth": 125000, "spreadingFactor": m.SF, "codeRate": "CR_4_5"}}},
		"rxInfo": map[string]any{"gatewayId": gw, "uplinkId": uplinkID, "gwTime": m.Time.Format(time.RFC3339Nano),
			"rssi": rx.RSSI, "snr": rx.SNR, "channel": 2, "context": "AAAAAA==", "crcStatus": crc},
	})
	return simulate.Message{Topic: "eu868/gateway/" + gw + "/event/up", Payload: b, DevEUI: m.DevEUI, Time: m.Time}
}

// awaitCounter waits until the daemon's counter reaches n.
func awaitCounter(t *testing.T, d *Daemon, name string, n uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for d.Counters.Get(name) < n {
		if time.Now().After(deadline) {
			t.Fatalf("counter %s = %d, want %d; counters %v", name, d.Counters.Get(name), n, d.Counters.Snapshot())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sessionOf(devs []devices.Device, e devices.EUI) *devices.Session {
	return deviceOf(devs, e).Session
}

func deviceOf(devs []devices.Device, e devices.EUI) devices.Device {
	for _, d := range devs {
		if d.EUI == e {
			return d
		}
	}
	return devices.Device{}
}

// weatherPayload is the Cayenne LPP payload the simulator encrypts: what
// the uplink point must hold once sensorgate decrypted it.
func weatherPayload(m simulate.SemtechMessage) []byte {
	b := []byte{1, 0x67, 0, 0, 2, 0x68, byte(m.Humidity * 2), 3, 0x73, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(int16(math.Round(m.Temperature*10))))
	binary.BigEndian.PutUint16(b[9:], uint16(math.Round(m.Pressure*10)))
	return b
}
