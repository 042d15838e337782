package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/decoders/sandbox"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/simulate"
)

// The fault-injection suite (issue 4): sensorgate against a real
// Mosquitto and a real InfluxDB while things go wrong — InfluxDB down for
// a long stretch, the daemon killed with SIGKILL, the broker restarted or
// cut off, InfluxDB answering errors, the spool over its cap, malformed
// input. Every case ends by comparing what InfluxDB holds with the exact
// set of uplinks published: nothing lost, nothing doubled.

func TestMain(m *testing.M) {
	if sandbox.IsWorker() {
		// The in-process daemon's codec workers are this test binary.
		os.Exit(sandbox.ServeWorker())
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// waitFor polls cond until it holds, failing with diag's output after
// timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool, diag func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s\n%s", what, timeout, diag())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFaultInfluxDBOutage (a): InfluxDB is stopped while 20,000 uplinks
// arrive. The daemon keeps acknowledging them, because each is durable in
// the spool; when InfluxDB returns every one lands, once. Live uplinks
// published while the backlog drains are not starved by it: they land
// before the backlog has, and each within a minute of its arrival
// (issue 22; the million-uplink run is `sensorgate-bench outage`).
func TestFaultInfluxDBOutage(t *testing.T) {
	// Not parallel: the 20,000 uplinks go through the race-instrumented
	// pipeline, and with the CPU shared the outage, and so the sink's
	// backoff when InfluxDB returns, grows to most of a minute.
	const warm, outage, live, liveRate = 500, 20000, 300, 30
	r := newFaultRig(t, 101, 300)
	// Requests of 50 points (an uplink is 5), one at a time: a drain of
	// some seconds rather than one, so that live uplinks arrive during it.
	d := r.runInProcess(r.writeConfig(rigConfig{influx: ", batch_size: 50, max_in_flight: 1"}))
	diag := r.daemonState(d)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	want := expectSet{}
	msgs := r.stream(warm)
	want.add(msgs...)
	if err := publishReliably(ctx, r.mq.URL(), "faults-publisher", msgs, 0, nil); err != nil {
		t.Fatal(err)
	}
	awaitUplinks(t, r.db, warm, time.Minute, diag)

	r.db.Stop()
	msgs = r.stream(outage)
	want.add(msgs...)
	began := time.Now()
	if err := publishReliably(ctx, r.mq.URL(), "faults-publisher", msgs, 0, nil); err != nil {
		t.Fatal(err)
	}
	// Every uplink is acknowledged to the broker while InfluxDB is down:
	// all of them are in the spool, none delivered.
	waitFor(t, 2*time.Minute, "all uplinks spooled", func() bool {
		return d.counter("uplinks_written") == warm+outage && d.spool.Stats().Pending == outage
	}, diag)
	spooledIn := time.Since(began)
	if st := d.spool.Stats(); st.DroppedRecords != 0 || st.OldestAge <= 0 {
		t.Fatalf("spool during the outage: %+v", st)
	}

	lastBacklog := msgs[len(msgs)-1].Time

	r.db.Start()
	back := time.Now()
	if n := uplinksIn(t, r.db); n != warm {
		t.Fatalf("InfluxDB holds %d uplinks right after its restart, want the %d from before the outage", n, warm)
	}
	// The drain begins once delivery's next retry finds InfluxDB back; at
	// its first read of the backlog a live reader takes over what arrives
	// from then on (the few uplinks arriving before that read are the
	// backlog's end).
	const liveStarted = "delivering a backlog; uplinks arriving meanwhile are sent alongside it"
	waitFor(t, time.Minute, "the drain begins", func() bool { return len(r.logLines(liveStarted)) > 0 }, diag)
	// Live uplinks during the drain, paced; each one's arrival is when
	// the broker acknowledged it to the publisher.
	// simulate.Publish hears each acknowledgement as it comes (the
	// broker's PUBACK follows the PUBLISH by a round trip on loopback).
	type arrival struct {
		m  simulate.Message
		at time.Time
	}
	arrivals := make(chan arrival, live)
	livePublished := make(chan error, 1)
	go func() {
		livePublished <- simulate.Publish(ctx, r.fleet, simulate.PublishOptions{Broker: r.mq.URL(), ClientID: "faults-live",
			QoS: 1, Rate: liveRate, Count: live, OnPublished: func(m simulate.Message) { arrivals <- arrival{m, time.Now()} }})
	}()
	// Probes, one after the other: the newest live uplink arrived when
	// the previous probe was done, until InfluxDB holds it.
	var (
		worst   time.Duration
		probes  int
		arrived []arrival
	)
	for probe := 0; probe < live; {
		if len(arrived) <= probe {
			select {
			case a := <-arrivals:
				arrived = append(arrived, a)
			case err := <-livePublished:
				if err != nil {
					t.Fatalf("live publisher ended with %d of %d acknowledged: %v", len(arrived), live, err)
				}
				livePublished <- nil // for the wait below; every arrival is queued
				arrived = append(arrived, <-arrivals)
			}
		}
		for more := true; more; {
			select {
			case a := <-arrivals:
				arrived = append(arrived, a)
			default:
				more = false
			}
		}
		k := len(arrived) - 1
		m, at := arrived[k].m, arrived[k].at
		cond := fmt.Sprintf(`"dev_eui" = '%s' AND time = %d`, m.DevEUI, gateway.PointTime(m.Time).UnixNano())
		waitFor(t, 90*time.Second, fmt.Sprintf("live uplink %d in InfluxDB", k), func() bool {
			return countWhere(t, r.db, "uplink", "payload", cond) == 1
		}, diag)
		took := time.Since(at)
		if probes == 0 {
			// Landed ahead of the backlog: with one queue it would
			// come after all of it.
			old := countWhere(t, r.db, "uplink", "payload", fmt.Sprintf("time <= %d", lastBacklog.UnixNano()))
			if old >= warm+outage {
				t.Errorf("the first live uplink landed only after the whole backlog (%d uplinks)", old)
			}
			t.Logf("first live uplink in InfluxDB %s after its arrival, with %d of %d backlog uplinks in", took.Round(time.Millisecond), old-warm, outage)
		}
		if took > time.Minute {
			t.Errorf("live uplink %d took %s from arrival to InfluxDB during the drain, more than a minute", k, took)
		}
		worst = max(worst, took)
		probes++
		probe = k + 1
	}
	if err := <-livePublished; err != nil {
		t.Fatal(err)
	}
	if len(arrived) != live {
		t.Fatalf("%d live uplinks acknowledged, want %d", len(arrived), live)
	}
	for _, a := range arrived {
		want.add(a.m)
	}
	awaitUplinks(t, r.db, warm+outage+live, 2*time.Minute, diag)
	t.Logf("%d uplinks spooled in %s while InfluxDB was down; all in InfluxDB %s after it came back; %d live uplinks from the drain's start, %d probed, the slowest in %s",
		outage, spooledIn.Round(time.Millisecond), time.Since(back).Round(time.Millisecond), live, probes, worst.Round(time.Millisecond))
	assertExactly(t, r.db, want)
	waitFor(t, 30*time.Second, "spool empty", func() bool { return d.spool.Stats().Pending == 0 }, diag)
	if n := d.counter("uplinks"); n != warm+outage+live {
		t.Errorf("the pipeline handled %d uplinks, want %d (no redelivery was needed)", n, warm+outage+live)
	}
	if dls := r.deadLetters(); len(dls) != 0 {
		t.Errorf("%d dead letters, want none: first %+v", len(dls), dls[0])
	}
}

// TestFaultKill (b): sensorgate, a real process, is killed with SIGKILL
// six times at seeded random points of a stream and restarted each time
// with the same config and state_dir. The spool reopens (cutting off a
// torn tail), the persistent session resumes, and records in flight at
// the kill are sent again, overwriting: every uplink lands exactly once.
func TestFaultKill(t *testing.T) {
	t.Parallel()
	const n, kills = 10000, 6
	r := newFaultRig(t, 202, 200)
	p := r.startProcess(r.writeConfig(rigConfig{}))
	diag := func() string { return "log:\n" + r.logTail() }
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	want := expectSet{}
	msgs := r.stream(n)
	want.add(msgs...)
	// Kill points are counts of uplinks in InfluxDB, one in each eighth
	// of the stream from the second to the seventh, seeded: the daemon is
	// somewhere between appending, acknowledging and delivering.
	rng := rand.New(rand.NewPCG(202, 4))
	points := make([]int, kills)
	for i := range points {
		points[i] = n*(i+1)/(kills+2) + rng.IntN(n/(kills+2))
	}
	published := make(chan error, 1)
	go func() { published <- publishReliably(ctx, r.mq.URL(), "faults-publisher", msgs, 2500, nil) }()
	var at []int
	for i, point := range points {
		waitFor(t, 2*time.Minute, fmt.Sprintf("kill %d at %d uplinks", i+1, point),
			func() bool { return uplinksIn(t, r.db) >= point }, diag)
		p.kill()
		at = append(at, uplinksIn(t, r.db))
		p.start()
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	awaitUplinks(t, r.db, n, 2*time.Minute, diag)
	assertExactly(t, r.db, want)
	if err := p.terminate(); err != nil {
		t.Fatalf("sensorgate after SIGTERM: %v\n%s", err, diag())
	}
	if dls := r.deadLetters(); len(dls) != 0 {
		t.Errorf("%d dead letters, want none: first %+v", len(dls), dls[0])
	}
	t.Logf("killed at %v uplinks in InfluxDB (points %v); %d torn spool tails cut off at restart",
		at, points, len(r.logLines("spool: cut off a torn or corrupt tail (a crash interrupted a write; that record was never acknowledged unless the disk is damaged)")))
}

// TestFaultBrokerRestart (c): Mosquitto, with persistence, is restarted
// twice at seeded random points of a stream. The daemon reconnects and
// resumes its session; the publisher re-sends what the broker did not
// acknowledge; messages the broker kept are delivered again where the
// daemon's acknowledgement was lost. Every uplink lands exactly once.
func TestFaultBrokerRestart(t *testing.T) {
	t.Parallel()
	const n = 6000
	r := newFaultRig(t, 303, 200)
	p := r.startProcess(r.writeConfig(rigConfig{}))
	diag := func() string { return "log:\n" + r.logTail() + "\nmosquitto:\n" + r.mq.Log() }
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	want := expectSet{}
	msgs := r.stream(n)
	want.add(msgs...)
	rng := rand.New(rand.NewPCG(303, 4))
	points := []int{n/5 + rng.IntN(n/5), 3*n/5 + rng.IntN(n/5)}
	restart := make(chan struct{})
	var next int
	onAcked := func(acked int) {
		if next < len(points) && acked == points[next] {
			next++
			restart <- struct{}{} // the publisher waits while the broker restarts
			<-restart
		}
	}
	published := make(chan error, 1)
	go func() { published <- publishReliably(ctx, r.mq.URL(), "faults-publisher", msgs, 2000, onAcked) }()
	for range points {
		select {
		case <-restart:
		case err := <-published:
			t.Fatalf("publisher ended before the restart: %v", err)
		}
		r.mq.Restart()
		restart <- struct{}{}
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	awaitUplinks(t, r.db, n, 2*time.Minute, func() string {
		return fmt.Sprintf("missing stream positions %v (restarts at %v)\n%s", firstInts(missingOf(t, r.db, msgs)), points, diag())
	})
	assertExactly(t, r.db, want)
	if err := p.terminate(); err != nil {
		t.Fatalf("sensorgate after SIGTERM: %v\n%s", err, diag())
	}
	if dls := r.deadLetters(); len(dls) != 0 {
		t.Errorf("%d dead letters, want none: first %+v", len(dls), dls[0])
	}
	t.Logf("broker restarted at %v acknowledged publishes; the daemon lost its connection %d times",
		points, len(r.logLines("connection to MQTT broker lost; reconnecting")))
}

// TestFaultNetworkCut (c, network): the connection between sensorgate and
// the broker is cut three times at seeded points of a stream (every TCP
// connection closed, new ones refused) and restored after a seeded number
// of further publishes. The broker queues for the persistent session in
// between; sensorgate reconnects with capped backoff and resubscribes.
func TestFaultNetworkCut(t *testing.T) {
	t.Parallel()
	const n, cuts = 6000, 3
	r := newFaultRig(t, 404, 200)
	px := startTCPProxy(t, r.mq.URL()[len("tcp://"):])
	p := r.startProcess(r.writeConfig(rigConfig{broker: px.URL()}))
	diag := func() string { return "log:\n" + r.logTail() }
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	want := expectSet{}
	msgs := r.stream(n)
	want.add(msgs...)
	rng := rand.New(rand.NewPCG(404, 4))
	type event struct {
		at  int
		cut bool
	}
	var plan []event
	for i := 0; i < cuts; i++ {
		at := n*(2*i+1)/(2*cuts+1) + rng.IntN(n/(2*cuts+1))
		plan = append(plan, event{at, true}, event{at + 200 + rng.IntN(600), false})
	}
	var restoreErr error
	next, done := 0, 0
	onAcked := func(acked int) {
		for next < len(plan) && acked == plan[next].at {
			if plan[next].cut {
				// Cut a connection, not a reconnection attempt: wait (the
				// publisher pausing) until the daemon is subscribed again.
				deadline := time.Now().Add(time.Minute)
				for len(r.logLines("connected to MQTT broker and subscribed")) <= done && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				px.cut()
				done++
			} else if err := px.restore(); err != nil && restoreErr == nil {
				restoreErr = err
			}
			next++
		}
	}
	if err := publishReliably(ctx, r.mq.URL(), "faults-publisher", msgs, 2000, onAcked); err != nil {
		t.Fatal(err)
	}
	if restoreErr != nil {
		t.Fatalf("restore the network: %v", restoreErr)
	}
	awaitUplinks(t, r.db, n, 2*time.Minute, func() string {
		return fmt.Sprintf("missing stream positions %v (plan %v)\n%s", firstInts(missingOf(t, r.db, msgs)), plan, diag())
	})
	assertExactly(t, r.db, want)
	if err := p.terminate(); err != nil {
		t.Fatalf("sensorgate after SIGTERM: %v\n%s", err, diag())
	}
	if lost := len(r.logLines("connection to MQTT broker lost; reconnecting")); lost < cuts {
		t.Errorf("the daemon noticed %d lost connections, want at least %d\n%s", lost, cuts, diag())
	}
	t.Logf("network cut and restored at %v acknowledged publishes", plan)
}

// withJSON returns m with its ChirpStack JSON changed by edit.
func withJSON(t *testing.T, m simulate.Message, edit func(map[string]any)) simulate.Message {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(m.Payload, &v); err != nil {
		t.Fatal(err)
	}
	edit(v)
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	m.Payload = b
	return m
}

// TestFaultInfluxErrors (d): InfluxDB, behind a proxy, answers 500, 503,
// 429 with Retry-After, 413 for requests over 1,000 lines, and a real 400
// for one uplink whose air point conflicts with a field type already in
// its shard. Everything lands except that one point, which is a dead
// letter (rejected_by_influx) holding its lines.
func TestFaultInfluxErrors(t *testing.T) {
	t.Parallel()
	const n = 3000
	r := newFaultRig(t, 505, 200)
	plan := map[int]httpFault{
		0: {status: http.StatusInternalServerError},
		1: {status: http.StatusServiceUnavailable},
		2: {status: http.StatusTooManyRequests, retryAfter: "1"},
		5: {status: http.StatusServiceUnavailable},
		8: {status: http.StatusTooManyRequests, retryAfter: "1"},
	}
	px := startInfluxProxy(t, r.db.URL(), plan, 1000)
	d := r.runInProcess(r.writeConfig(rigConfig{influxURL: px.URL}))
	diag := r.daemonState(d)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	uplinks, air := expectSet{}, expectSet{}
	msgs := r.stream(n)
	// The poisoned uplink: a reading from 2020, whose shard already holds
	// air.temperature as an integer (written past sensorgate), so InfluxDB
	// refuses its air point with 400 and keeps its other points.
	pos := rand.New(rand.NewPCG(505, 4)).IntN(n)
	poisonTime := time.Date(2020, 6, 1, 12, 0, 0, 123456000, time.UTC) // ChirpStack v4 times are whole microseconds
	msgs[pos] = withJSON(t, msgs[pos], func(v map[string]any) { v["time"] = poisonTime.Format(time.RFC3339Nano) })
	msgs[pos].Time = poisonTime
	uplinks.add(msgs...)
	air.add(msgs[:pos]...)
	air.add(msgs[pos+1:]...)
	resp, err := http.Post(r.db.URL()+"/write?db=sensors&precision=ns", "text/plain",
		strings.NewReader(fmt.Sprintf("air temperature=20i %d\n", poisonTime.Add(-time.Hour).UnixNano())))
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("pre-write the conflicting point: %v %v", err, resp)
	}
	resp.Body.Close()
	air[key("", poisonTime.Add(-time.Hour))] = 20

	if err := publishReliably(ctx, r.mq.URL(), "faults-publisher", msgs, 0, nil); err != nil {
		t.Fatal(err)
	}
	awaitUplinks(t, r.db, n, 2*time.Minute, diag)
	waitFor(t, time.Minute, "spool delivered", func() bool { return d.spool.Stats().Pending == 0 }, diag)
	assertPoints(t, r.db, uplinks, air)

	dls := r.deadLetters()
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1 (the poisoned point): %+v\n%s", len(dls), dls, diag())
	}
	dl := dls[0]
	wantLine := fmt.Sprintf(" %d\n", gateway.PointTime(poisonTime).UnixNano())
	if dl.Reason != gateway.ReasonRejected || dl.DevEUI != msgs[pos].DevEUI.String() || dl.Source != "cs4" ||
		!bytes.Contains(dl.Raw, []byte("air,")) || !bytes.Contains(dl.Raw, []byte(wantLine)) || !strings.Contains(dl.Detail, "field type conflict") {
		t.Fatalf("dead letter %+v (raw %q), want reason %s for %s with its air line at %s", dl, dl.Raw, gateway.ReasonRejected, msgs[pos].DevEUI, poisonTime)
	}
	if n := d.counter("uplinks_written"); n != uint64(len(msgs)) {
		t.Errorf("%d uplinks acknowledged as written, want %d", n, len(msgs))
	}

	// The proxy saw every fault, and the retry after a 429 waited for
	// its Retry-After.
	reqs := px.Requests()
	statuses := map[int]int{}
	for i, q := range reqs {
		statuses[q.Status]++
		if q.Status != http.StatusTooManyRequests {
			continue
		}
		for _, later := range reqs[i+1:] {
			if later.Body == q.Body {
				if gap := later.At.Sub(q.At); gap < 950*time.Millisecond {
					t.Errorf("request %d retried %s after a 429 with Retry-After: 1", i, gap)
				}
				break
			}
		}
	}
	for _, s := range []int{500, 503, 429, 413, 400, 204} {
		if statuses[s] == 0 {
			t.Errorf("the proxy never answered %d: %v", s, statuses)
		}
	}
	t.Logf("%d write requests through the proxy, by status %v", len(reqs), statuses)
}

// TestFaultSpoolFull (e): InfluxDB is down and the spool is capped at eight
// segments of 64 KiB. The daemon keeps acknowledging every message; the
// spool drops its oldest segments, logging and counting the records; when
// InfluxDB returns, the records the spool kept land, and no others.
//
// What "exactly" means with drops by segment: of the P uplinks published
// during the outage the spool reports D dropped and P−D pending, and those
// land. Two things blur "the newest P−D" at the edges, and the case pins
// both down:
//   - The delivery loop holds the records of its current read in memory
//     while InfluxDB is down; if their segment is dropped they are
//     counted as dropped and still delivered when InfluxDB returns. The
//     first outage uplink is published alone and the case waits until
//     the loop tried to deliver it, so the loop holds exactly that one.
//   - Messages are handled concurrently, so the spool's order can differ
//     from the publish order among messages in flight together, at most
//     Mosquitto's max_inflight_messages (100) apart in practice. Within
//     200 of the drop boundary membership is checked by count only.
func TestFaultSpoolFull(t *testing.T) {
	t.Parallel()
	const warm, outage, inflight = 200, 3000, 200
	r := newFaultRig(t, 606, 100)
	d := r.runInProcess(r.writeConfig(rigConfig{extra: "spool: {max_bytes: 524288, segment_bytes: 65536}\n"}))
	diag := r.daemonState(d)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	want := expectSet{}
	msgs := r.stream(warm)
	want.add(msgs...)
	if err := publishReliably(ctx, r.mq.URL(), "faults-publisher", msgs, 0, nil); err != nil {
		t.Fatal(err)
	}
	awaitUplinks(t, r.db, warm, time.Minute, diag)
	waitFor(t, 30*time.Second, "warm-up acknowledged to the spool", func() bool { return d.spool.Stats().Pending == 0 }, diag)

	r.db.Stop()
	msgs = r.stream(outage)
	if err := publishReliably(ctx, r.mq.URL(), "faults-publisher", msgs[:1], 0, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the delivery loop holding the first outage uplink", func() bool {
		return len(r.logLines("InfluxDB write failed; retrying")) > 0
	}, diag)
	if err := publishReliably(ctx, r.mq.URL(), "faults-publisher", msgs[1:], 0, nil); err != nil {
		t.Fatal(err)
	}
	// The daemon keeps taking everything: the cap never fails an append.
	waitFor(t, 2*time.Minute, "every uplink acknowledged", func() bool { return d.counter("uplinks_written") == warm+outage }, diag)
	st := d.spool.Stats()
	dropped := int(st.DroppedRecords)
	if dropped <= inflight || dropped >= outage-inflight || int(st.Pending) != outage-dropped || st.Bytes > 524288 {
		t.Fatalf("spool after %d uplinks with InfluxDB down: %+v; want records dropped, the rest pending, under the cap", outage, st)
	}
	select {
	case err := <-d.done:
		t.Fatalf("the daemon stopped: %v", err)
	default:
	}
	// Each drop is logged, never silent: the last log says the total.
	drops := r.logLines("spool: full; dropped the oldest undelivered records (InfluxDB unreachable for too long? raise spool.max_bytes to keep more)")
	if len(drops) == 0 || drops[len(drops)-1]["dropped_records_total"] != float64(dropped) {
		t.Fatalf("spool drop logs %v, want the last to total %d", drops, dropped)
	}

	r.db.Start()
	kept := outage - dropped
	awaitUplinks(t, r.db, warm+1+kept, 2*time.Minute, diag)
	waitFor(t, time.Minute, "spool delivered", func() bool { return d.spool.Stats().Pending == 0 }, diag)
	if n := uplinksIn(t, r.db); n != warm+1+kept {
		t.Fatalf("InfluxDB holds %d uplinks, want %d: the warm-up, the one the delivery loop held and the %d the spool kept", n, warm+1+kept, kept)
	}
	// Far from the drop boundary, membership is exact: the warm-up, the
	// held one and the newest land, the older ones do not; of the 2×200
	// around the boundary, 200 do.
	want.add(msgs[0])
	want.add(msgs[dropped+inflight:]...)
	edge := expectSet{}
	edge.add(msgs[dropped-inflight : dropped+inflight]...)
	landedEdge := 0
	for _, row := range rowsOf(r.db.Query(t, `SELECT "payload", "dev_eui" FROM "uplink"`)) {
		k := key(row.str("dev_eui"), row.time)
		if _, ok := edge[k]; ok {
			landedEdge++
			continue
		}
		if _, ok := want[k]; !ok {
			t.Fatalf("uplink %s landed: not published, or dropped by the spool far from the boundary\n%s", k, diag())
		}
		delete(want, k)
	}
	if len(want) > 0 {
		t.Fatalf("%d uplinks the spool kept are missing, e.g. %v\n%s", len(want), first(keysOf(want)), diag())
	}
	if landedEdge != inflight {
		t.Fatalf("%d of the %d uplinks around the drop boundary landed, want %d", landedEdge, 2*inflight, inflight)
	}
	t.Logf("%d uplinks during the outage: %d dropped in %d logged drops (%d bytes), the %d kept delivered, plus the one the delivery loop held",
		outage, dropped, len(drops), st.DroppedBytes, kept)
	if dls := r.deadLetters(); len(dls) != 0 {
		t.Errorf("%d dead letters, want none: first %+v", len(dls), dls[0])
	}
}

func keysOf(e expectSet) []string {
	var out []string
	for k := range e {
		out = append(out, k)
	}
	return out
}
