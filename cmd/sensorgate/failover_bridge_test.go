package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/simulate"
)

// TestFailoverGatewayBridge is TestFailoverSharedSubscription with raw
// LoRaWAN frames: three sensorgate processes share a gateway-bridge feed
// (ChirpStack Gateway Bridge events, one message per gateway copy) on a
// shared subscription of a real Mosquitto, with the registry (ABP
// sessions and their keys, frame counters) in a fresh PostgreSQL database
// and one InfluxDB 1.8. 3,000 frames of 100 ABP devices are each heard by
// three gateways, so 9,000 events are published at QoS 1; the broker
// hands consecutive messages to different members, so the copies of one
// frame mostly reach different instances. Each gateway's copy carries its
// own receive time (1 µs apart), as GPS gateways' do, so the uplink's
// time depends on which copies the instance that takes the frame has, and
// the others must write their receptions at that same time. Instance C
// is SIGKILLed mid-stream and restarted under its client id (Mosquitto
// redelivers what it had not acknowledged, including frames whose counter
// C had stored but whose uplink it had not spooled). A device installed
// meanwhile is registered with its session keys through A's API; its
// frames start once every instance has it, and all three handle them.
//
// At the end InfluxDB holds exactly one uplink point per frame (none
// lost, none doubled), at the receive time of one of its gateways, with
// the decoded temperature once; and exactly one uplink_gateway point per
// gateway per frame, each at its uplink's time with that gateway's RSSI.
// The registered device's uplinks carry its name and model.
func TestFailoverGatewayBridge(t *testing.T) {
	const (
		fleetN  = 100
		perDev  = 30
		total   = fleetN * perDev // frames, three gateway copies each
		phase1  = total / 2       // frames published before the registration
		killAt  = 400             // uplinks in InfluxDB when C is killed
		restart = 300             // more uplinks in InfluxDB before C is restarted
		group   = "gwfailover"
		topic   = "eu868/gateway/+/event/up"
	)
	rig := newFailoverRig(t)
	fleet, err := simulate.NewSemtechFleet(simulate.SemtechOptions{Devices: fleetN, Gateways: 3, MinGateways: 3, Seed: 2417,
		Start: time.Now().UTC().Truncate(time.Second).Add(-time.Hour), Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	devs := fleet.Devices()
	newcomer := devs[len(devs)-1] // not in the devices file: registered through A later
	devicesFile := filepath.Join(rig.dir, "devices.csv")
	writeDevicesCSVWithout(t, fleet, devicesFile, newcomer.EUI)

	// The stream: every frame as three gateway events, each gateway's
	// time its index in microseconds after the frame's.
	frames := make([]simulate.SemtechMessage, total)
	var msgs1, msgs2 []simulate.Message
	for i := range frames {
		m := fleet.Next()
		frames[i] = m
		if i < phase1 && m.DevEUI == newcomer.EUI {
			continue // not installed yet
		}
		for j, rx := range m.Rx {
			ev := bridgeEvent(withGatewayTime(m, rx), rx, "CRC_OK", uint32(3*i+j))
			if i < phase1 {
				msgs1 = append(msgs1, ev)
			} else {
				msgs2 = append(msgs2, ev)
			}
		}
	}

	src := failoverSource{
		entry: fmt.Sprintf(`{name: bridge, type: mqtt, format: gateway-bridge, broker: %%[1]q, topics: [%q], share_group: %s, client_id: %%[2]s, reconnect_max: 500ms}`,
			topic, group),
		subscriptions: []string{"$share/" + group + "/" + topic},
	}
	a, b, c := rig.start("a", src, devicesFile), rig.start("b", src, devicesFile), rig.start("c", src, devicesFile)
	all := []*failoverInstance{a, b, c}
	rig.awaitReady(time.Minute, all...)
	db := rig.db
	counters := func() string {
		var s []string
		for _, in := range all {
			m := scrape(in.api)
			var parts []string
			for _, ev := range []string{"lorawan.uplinks", "lorawan.copies_written", "lorawan.duplicates", "lorawan.late_duplicates",
				"lorawan.duplicates_other_instance", "lorawan.uplinks_retaken", "lorawan.copies_unmatched", "lorawan.replays", "lorawan.unknown_dev_addr"} {
				parts = append(parts, fmt.Sprintf("%s=%v", strings.TrimPrefix(ev, "lorawan."), m[`sensorgate_pipeline_events_total{event="`+ev+`",instance="failover-`+in.name+`"}`]))
			}
			s = append(s, in.name+": "+strings.Join(parts, " "))
		}
		return strings.Join(s, "\n")
	}
	var want []simulate.SemtechMessage // the frames InfluxDB must hold
	for i, m := range frames {
		if i >= phase1 || m.DevEUI != newcomer.EUI {
			want = append(want, m)
		}
	}
	// missing names the frames without an uplink point and the gateways
	// whose receptions of them InfluxDB holds, so that a failure says
	// which frame was lost and whether its copies were written.
	missing := func() string {
		have := map[string]bool{}
		for _, r := range rowsOf(db.Query(t, `SELECT "f_cnt", "dev_eui" FROM "uplink"`)) {
			have[fmt.Sprintf("%s/%d", r.str("dev_eui"), int64(r.float("f_cnt")))] = true
		}
		var out []string
		for _, m := range want {
			if k := fmt.Sprintf("%s/%d", m.DevEUI.String(), m.FCnt); !have[k] && len(out) < 10 {
				rxs := rowsOf(db.Query(t, fmt.Sprintf(`SELECT "rssi", "gateway_id" FROM "uplink_gateway" WHERE "dev_eui" = '%s' AND time >= '%s' AND time < '%s'`,
					m.DevEUI.String(), m.Time.Add(-time.Millisecond).Format(time.RFC3339Nano), m.Time.Add(time.Millisecond).Format(time.RFC3339Nano))))
				out = append(out, fmt.Sprintf("%s (sent %s, %d of its receptions in InfluxDB)", k, m.Time.Format(time.RFC3339Nano), len(rxs)))
			}
		}
		return "frames without an uplink point: " + strings.Join(out, ", ")
	}
	diag := func() string {
		return fmt.Sprintf("InfluxDB: %d uplink, %d uplink_gateway points\n%s\n%s\n%s", uplinksIn(t, db), countOf(t, db, "uplink_gateway", "rssi"), missing(), counters(), rig.diag())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	registered := make(chan struct{})
	published := make(chan error, 1)
	go func() {
		if err := publishReliably(ctx, rig.mq.URL(), "gwfailover-publisher", msgs1, 0, nil); err != nil {
			published <- err
			return
		}
		select {
		case <-registered:
		case <-ctx.Done():
			published <- ctx.Err()
			return
		}
		published <- publishReliably(ctx, rig.mq.URL(), "gwfailover-publisher", msgs2, 0, nil)
	}()

	// C dies mid-stream (SIGKILL: no flush, no disconnect) and comes back
	// under its client id once the others have made progress.
	waitFor(t, time.Minute, fmt.Sprintf("%d uplinks in InfluxDB", killAt), func() bool { return uplinksIn(t, db) > killAt }, diag)
	c.proc.kill()
	atKill := uplinksIn(t, db)
	waitFor(t, time.Minute, "progress while C is down", func() bool { return uplinksIn(t, db) > atKill+restart }, diag)
	c.proc.start()
	t.Logf("C killed at %d uplinks in InfluxDB, restarted at %d", atKill, uplinksIn(t, db))

	// The newcomer is registered through A, with its session keys; its
	// frames start once every instance has it (NOTIFY from PostgreSQL).
	eui := newcomer.EUI.String()
	s := newcomer.Session
	body := map[string]any{"dev_eui": eui, "name": "installed-1", "model": newcomer.Model, "tags": newcomer.Tags,
		"session": map[string]any{"dev_addr": s.DevAddr.String(), "nwk_s_key": hex.EncodeToString(s.NwkSKey[:]), "app_s_key": hex.EncodeToString(s.AppSKey[:])}}
	registeredAt := time.Now()
	if st, out := a.call("POST", "/api/v1/devices", body); st != http.StatusCreated {
		t.Fatalf("register through A: %d %v", st, out)
	}
	rig.awaitReady(30*time.Second, c)
	for _, in := range all {
		waitFor(t, 30*time.Second, "instance "+in.name+" has the registered device", func() bool {
			st, d := in.call("GET", "/api/v1/devices/"+eui, nil)
			return st == 200 && d["model"] == newcomer.Model && bytes.Contains(mustJSON(d), []byte(s.DevAddr.String()))
		}, diag)
	}
	t.Logf("the registration through A was in effect on all three instances after %s", time.Since(registeredAt).Round(time.Millisecond))
	close(registered)
	if err := <-published; err != nil {
		t.Fatalf("publish: %v\n%s", err, diag())
	}

	awaitUplinks(t, db, len(want), 2*time.Minute, diag)
	waitFor(t, time.Minute, fmt.Sprintf("%d uplink_gateway points", 3*len(want)), func() bool {
		return countOf(t, db, "uplink_gateway", "rssi") >= 3*len(want)
	}, diag)

	// Exactly one uplink per frame, at one of its gateways' times.
	type frameKey struct {
		eui  string
		fcnt int64
	}
	wantBy := map[frameKey]simulate.SemtechMessage{}
	for _, m := range want {
		wantBy[frameKey{m.DevEUI.String(), int64(m.FCnt)}] = m
	}
	upTime := map[frameKey]time.Time{}
	var problems []string
	for _, r := range rowsOf(db.Query(t, `SELECT "f_cnt", "dev_eui", "device", "model" FROM "uplink"`)) {
		k := frameKey{r.str("dev_eui"), int64(r.float("f_cnt"))}
		m, ok := wantBy[k]
		switch _, dup := upTime[k]; {
		case !ok:
			problems = append(problems, fmt.Sprintf("uplink %v not published", k))
		case dup:
			problems = append(problems, fmt.Sprintf("uplink %v twice", k))
		case !gatewayTime(m, r.time):
			problems = append(problems, fmt.Sprintf("uplink %v at %s: none of its gateways' times (%s + 0..2 µs)", k, r.time.Format(time.RFC3339Nano), m.Time.Format(time.RFC3339Nano)))
		case m.DevEUI == newcomer.EUI && (r.str("device") != "installed-1" || r.str("model") != newcomer.Model):
			problems = append(problems, fmt.Sprintf("registered device's uplink %v: device %q model %q", k, r.str("device"), r.str("model")))
		}
		upTime[k] = r.time
	}
	for k := range wantBy {
		if _, ok := upTime[k]; !ok {
			problems = append(problems, fmt.Sprintf("uplink %v missing", k))
		}
	}
	// Exactly one uplink_gateway point per gateway of each frame, at its
	// uplink's time.
	type rx struct {
		gw   string
		rssi float64
	}
	gws := map[string][]rx{}
	for _, r := range rowsOf(db.Query(t, `SELECT "rssi", "dev_eui", "gateway_id" FROM "uplink_gateway"`)) {
		k := key(r.str("dev_eui"), r.time)
		gws[k] = append(gws[k], rx{r.str("gateway_id"), r.float("rssi")})
	}
	matched := 0
	for fk, m := range wantBy {
		at, ok := upTime[fk]
		if !ok {
			continue
		}
		got := gws[key(fk.eui, at)]
		matched += len(got)
		wantRx := map[string]float64{}
		for _, g := range m.Rx {
			wantRx[g.GatewayEUI.String()] = float64(g.RSSI)
		}
		seen := map[string]bool{}
		for _, g := range got {
			if w, ok := wantRx[g.gw]; !ok || seen[g.gw] || w != g.rssi {
				problems = append(problems, fmt.Sprintf("frame %v: uplink_gateway points %+v, want one per gateway of %+v at the uplink's time", fk, got, m.Rx))
				break
			}
			seen[g.gw] = true
		}
		if len(seen) != len(wantRx) && len(got) == len(seen) {
			problems = append(problems, fmt.Sprintf("frame %v: uplink_gateway points %+v, want one per gateway of %+v at the uplink's time", fk, got, m.Rx))
		}
	}
	if n := countOf(t, db, "uplink_gateway", "rssi"); n != matched || n != 3*len(want) {
		problems = append(problems, fmt.Sprintf("%d uplink_gateway points in all, %d of them at their uplink's time; want %d", n, matched, 3*len(want)))
	}
	// The payload decoded once per frame.
	temps := map[string]float64{}
	for _, r := range rowsOf(db.Query(t, `SELECT "temperature", "dev_eui" FROM "air" WHERE "channel" = '1'`)) {
		temps[key(r.str("dev_eui"), r.time)] = r.float("temperature")
	}
	for fk, m := range wantBy {
		if at, ok := upTime[fk]; ok {
			if got, ok := temps[key(fk.eui, at)]; !ok || got != m.Temperature {
				problems = append(problems, fmt.Sprintf("frame %v: temperature %v (present %v), want %v", fk, got, ok, m.Temperature))
			}
		}
	}
	if len(temps) != len(want) {
		problems = append(problems, fmt.Sprintf("%d temperature points, want %d", len(temps), len(want)))
	}
	if len(problems) > 0 {
		t.Fatalf("%d problems, first: %v\n%s", len(problems), first(problems), counters())
	}

	// Health is shared: every instance reports, for every device of the
	// devices file, each of its frames and no loss, though the frames and
	// their copies were spread over the three instances.
	perDevice := map[string]int{}
	for _, m := range want {
		if m.DevEUI != newcomer.EUI {
			perDevice[m.DevEUI.String()]++
		}
	}
	for _, in := range all {
		var bad []string
		waitFor(t, time.Minute, "instance "+in.name+" reports every device's frames and 0 % loss", func() bool {
			st, list := in.call("GET", "/api/v1/device-health", nil)
			devs, _ := list["devices"].([]any)
			if st != 200 {
				bad = []string{fmt.Sprintf("status %d", st)}
				return false
			}
			bad = bad[:0]
			found := 0
			for _, d := range devs {
				h := d.(map[string]any)
				n, ok := perDevice[fmt.Sprint(h["dev_eui"])]
				if !ok {
					continue
				}
				found++
				if h["loss_pct"] != 0.0 || h["uplinks_24h"] != float64(n) || h["lost_24h"] != 0.0 {
					bad = append(bad, fmt.Sprintf("%v: %v uplinks (want %d), %v lost, loss %v %%", h["dev_eui"], h["uplinks_24h"], n, h["lost_24h"], h["loss_pct"]))
				}
			}
			if found != len(perDevice) {
				bad = append(bad, fmt.Sprintf("%d of %d devices reported", found, len(perDevice)))
			}
			return len(bad) == 0
		}, func() string { return fmt.Sprintf("%d devices wrong, e.g. %v\n%s", len(bad), first(bad), diag()) })
	}
	t.Logf("per instance:\n%s", counters())
}

// withGatewayTime is m as gateway rx received it: each gateway's clock a
// few microseconds from the others', as GPS gateways' are.
func withGatewayTime(m simulate.SemtechMessage, rx simulate.SemtechRx) simulate.SemtechMessage {
	m.Time = m.Time.Add(time.Duration(rx.GatewayEUI[7]) * time.Microsecond)
	return m
}

// gatewayTime reports whether at is the receive time of one of m's
// gateways (withGatewayTime).
func gatewayTime(m simulate.SemtechMessage, at time.Time) bool {
	for _, rx := range m.Rx {
		if gateway.PointTime(withGatewayTime(m, rx).Time).Equal(at) { // points are at the millisecond
			return true
		}
	}
	return false
}

// writeDevicesCSVWithout writes the fleet's devices file with their keys,
// leaving out the device skip.
func writeDevicesCSVWithout(t *testing.T, fleet *simulate.SemtechFleet, path string, skip devices.EUI) {
	t.Helper()
	var all bytes.Buffer
	if err := fleet.WriteDevicesCSV(&all); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.SplitAfter(all.String(), "\n") {
		if !strings.HasPrefix(line, skip.String()+",") {
			out = append(out, line)
		}
	}
	if err := os.WriteFile(path, []byte(strings.Join(out, "")), 0o600); err != nil {
		t.Fatal(err)
	}
}
