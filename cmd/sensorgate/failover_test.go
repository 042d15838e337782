package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/internal/simulate"
)

// TestFailoverSharedSubscription runs three sensorgate processes with one
// config (their own client_id and state_dir) on a shared subscription of
// a real Mosquitto, a registry in a fresh PostgreSQL database and one
// InfluxDB 1.8. 30,000 ChirpStack v4 uplinks of 300 devices are published
// at QoS 1 as fast as the publisher's acknowledgement window allows;
// instance C is SIGKILLed mid-stream and restarted under its client id
// (Mosquitto keeps routing C's share into its persistent session, and
// redelivers what C had not acknowledged). One device is not registered:
// every instance accepts its uplinks as an unknown device, it is adopted
// through A's API, and once every instance has the adoption (NOTIFY from
// PostgreSQL) the rest of the stream goes on. At the end InfluxDB holds
// exactly the 30,000 uplinks (each dev_eui+time once: none lost, none
// doubled), and each of the adopted device's uplinks after the adoption
// carries its model, whichever instance handled it.
//
// Device health is shared (registry.health_sync_interval 200ms here):
// every instance reports, for every device, every uplink it published
// and 0 % loss, though each handled only its share. /api/v1/status of
// every instance lists the three instances, and /metrics carries each
// one's instance label.
func TestFailoverSharedSubscription(t *testing.T) {
	const (
		total   = 30000
		fleetN  = 300
		phase1  = 15000 // published before the adoption
		killAt  = 4000  // uplinks in InfluxDB when C is killed
		restart = 2000  // more uplinks in InfluxDB before C is restarted
		group   = "failover"
	)
	rig := newFailoverRig(t)
	mq, db, dir := rig.mq, rig.db, rig.dir
	// Recent times: health counts the last 24 hours of the clock.
	fleet, err := simulate.NewFleet(simulate.Options{Format: simulate.ChirpStackV4, Devices: fleetN, Seed: 1717,
		Start: time.Now().UTC().Truncate(time.Second).Add(-time.Hour), Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	devs := fleet.Devices()
	stranger := devs[len(devs)-1] // not in the devices file: adopted later
	writeYAML(t, filepath.Join(dir, "devices.yaml"), map[string]any{"devices": devs[:len(devs)-1]})
	stream := make([]simulate.Message, total)
	for i := range stream {
		stream[i] = fleet.Next()
	}

	src := failoverSource{
		entry: fmt.Sprintf(`{name: cs4, type: mqtt, format: chirpstack-v4, broker: %%[1]q, topics: [%q], share_group: %s, client_id: %%[2]s, reconnect_max: 500ms}`,
			csTopic, group),
		subscriptions: []string{"$share/" + group + "/" + csTopic},
	}
	devicesFile := filepath.Join(dir, "devices.yaml")
	a, b, c := rig.start("a", src, devicesFile), rig.start("b", src, devicesFile), rig.start("c", src, devicesFile)
	all := []*failoverInstance{a, b, c}
	diag := rig.diag
	rig.awaitReady(time.Minute, all...)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	adopted := make(chan struct{})
	published := make(chan error, 1)
	go func() {
		if err := publishReliably(ctx, mq.URL(), "failover-publisher", stream[:phase1], 0, nil); err != nil {
			published <- err
			return
		}
		select {
		case <-adopted:
		case <-ctx.Done():
			published <- ctx.Err()
			return
		}
		published <- publishReliably(ctx, mq.URL(), "failover-publisher", stream[phase1:], 0, nil)
	}()

	// C dies mid-stream (SIGKILL: no flush, no disconnect) and is
	// restarted with its client id once the others have made progress.
	waitFor(t, time.Minute, fmt.Sprintf("%d uplinks in InfluxDB", killAt), func() bool { return uplinksIn(t, db) > killAt }, diag)
	c.proc.kill()
	atKill := uplinksIn(t, db)
	waitFor(t, time.Minute, "progress while C is down", func() bool { return uplinksIn(t, db) > atKill+restart }, diag)
	c.proc.start()
	t.Logf("C killed at %d uplinks in InfluxDB, restarted at %d", atKill, uplinksIn(t, db))

	// The stranger's uplinks reach A and B as an unknown device; it is
	// adopted through A while B goes on handling its uplinks, and the
	// second half of the stream starts once every instance has the
	// adoption. (The 2 s promise is TestSharedRegistryChanges…'s; here,
	// with three daemons racing on two cores, the wait only has a
	// deadline, and the time it took is logged.)
	eui := stranger.EUI.String()
	for _, in := range []*failoverInstance{a, b} {
		waitFor(t, time.Minute, "instance "+in.name+" lists the unknown device", func() bool {
			_, list := in.call("GET", "/api/v1/unknown-devices", nil)
			return bytes.Contains(mustJSON(list), []byte(eui))
		}, diag)
	}
	adoptedAt := time.Now()
	if st, out := a.call("POST", "/api/v1/unknown-devices/"+eui+"/adopt", map[string]any{"name": "adopted-1", "model": simulate.Model}); st != http.StatusCreated {
		t.Fatalf("adopt through A: %d %v", st, out)
	}
	waitFor(t, 30*time.Second, "instance C answers after its restart", func() bool { st, _ := c.call("GET", "/readyz", nil); return st == 200 }, diag)
	for _, in := range all {
		waitFor(t, 30*time.Second, "instance "+in.name+" has the adopted device's model", func() bool {
			st, d := in.call("GET", "/api/v1/devices/"+eui, nil)
			return st == 200 && d["model"] == simulate.Model
		}, diag)
	}
	t.Logf("the adoption through A was in effect on all three instances after %s", time.Since(adoptedAt).Round(time.Millisecond))
	close(adopted)
	if err := <-published; err != nil {
		t.Fatalf("publish: %v\n%s", err, diag())
	}

	awaitUplinks(t, db, total, 2*time.Minute, diag)
	// Exactly the published set: every dev_eui+time once.
	want := expectSet{}
	want.add(stream...)
	after := stream[phase1].Time
	var wrongModel, adoptedAfter []string
	seen := map[string]int{}
	for _, r := range rowsOf(db.Query(t, `SELECT "payload", "dev_eui", "model" FROM "uplink"`)) {
		k := key(r.str("dev_eui"), r.time)
		seen[k]++
		if r.str("dev_eui") == eui && !r.time.Before(after) {
			adoptedAfter = append(adoptedAfter, k)
			if r.str("model") != simulate.Model {
				wrongModel = append(wrongModel, fmt.Sprintf("%s: model %q", k, r.str("model")))
			}
		}
	}
	var missing, extra, doubled []string
	for k := range want {
		if seen[k] == 0 {
			missing = append(missing, k)
		}
	}
	for k, n := range seen {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		} else if n > 1 {
			doubled = append(doubled, k)
		}
	}
	if len(missing)+len(extra)+len(doubled) > 0 {
		t.Fatalf("uplink points: %d missing %v, %d unexpected %v, %d doubled %v", len(missing), first(missing), len(extra), first(extra), len(doubled), first(doubled))
	}
	var strangerAfter int
	for _, m := range stream[phase1:] {
		if m.DevEUI == stranger.EUI {
			strangerAfter++
		}
	}
	if len(adoptedAfter) != strangerAfter || len(wrongModel) > 0 {
		t.Fatalf("adopted device after the adoption: %d points of %d published; %d without model %q: %v", len(adoptedAfter), strangerAfter, len(wrongModel), simulate.Model, first(wrongModel))
	}

	// Health counts every instance's uplinks: each instance reports, for
	// every device, all the uplinks published for it and no loss (the
	// fleet loses no frame). The adopted device's entry last saw it in
	// the second half, under its model.
	perDevice := map[string]int{}
	for _, m := range stream {
		perDevice[m.DevEUI.String()]++
	}
	for _, in := range all {
		var bad []string
		waitFor(t, time.Minute, "instance "+in.name+" reports every device's uplinks and 0 % loss", func() bool {
			st, list := in.call("GET", "/api/v1/device-health", nil)
			devs, _ := list["devices"].([]any)
			if st != 200 || len(devs) != len(perDevice) {
				bad = []string{fmt.Sprintf("status %d, %d devices of %d", st, len(devs), len(perDevice))}
				return false
			}
			bad = bad[:0]
			for _, d := range devs {
				h := d.(map[string]any)
				eui := fmt.Sprint(h["dev_eui"])
				if h["loss_pct"] != 0.0 || h["uplinks_24h"] != float64(perDevice[eui]) || h["lost_24h"] != 0.0 {
					bad = append(bad, fmt.Sprintf("%s: %v uplinks (want %d), %v lost, loss %v %%", eui, h["uplinks_24h"], perDevice[eui], h["lost_24h"], h["loss_pct"]))
				}
			}
			return len(bad) == 0
		}, func() string { return fmt.Sprintf("%d devices wrong, e.g. %v\n%s", len(bad), first(bad), diag()) })
		st, h := in.call("GET", "/api/v1/devices/"+eui+"/health", nil)
		last, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(h["last_seen"]))
		if st != 200 || last.Before(after) || h["model"] != simulate.Model {
			t.Errorf("instance %s: adopted device's health %d %v: want last_seen at or after %s with model %q", in.name, st, h, after.Format(time.RFC3339Nano), simulate.Model)
		}
		m := scrape(in.api)
		handled := m[fmt.Sprintf(`sensorgate_pipeline_events_total{event="uplinks",instance="failover-%s"}`, in.name)]
		if handled == 0 || handled >= total {
			t.Errorf("instance %s handled %v uplinks (its instance label missing?): want a share of %d", in.name, handled, total)
		}
		t.Logf("instance %s: %v uplinks handled; reports, for each of its %d devices, every uplink (%d in all) and 0 %% loss", in.name, handled, len(perDevice), total)
	}
	// Each instance lists all three, with version, heartbeat and source.
	for _, in := range all {
		waitFor(t, 30*time.Second, "instance "+in.name+" lists the three instances", func() bool {
			_, st := in.call("GET", "/api/v1/status", nil)
			list, _ := st["instances"].([]any)
			ids := map[string]bool{}
			for _, i := range list {
				i := i.(map[string]any)
				srcs, _ := i["sources"].([]any)
				if i["version"] == version && len(srcs) == 1 && srcs[0].(map[string]any)["connected"] == true {
					ids[fmt.Sprint(i["id"])] = true
				}
			}
			return st["instance"] == "failover-"+in.name && len(ids) == 3 && ids["failover-a"] && ids["failover-b"] && ids["failover-c"]
		}, diag)
	}
}
