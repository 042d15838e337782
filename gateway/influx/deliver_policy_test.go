package influx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// fastTiming keeps the retry tests short; the policy is the same.
var fastTiming = timing{minBackoff: 10 * time.Millisecond, maxBackoff: 200 * time.Millisecond, maxRetryAfter: 5 * time.Second, authRetry: 50 * time.Millisecond}

// logBuffer collects a Sink's log for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proxy is testserver's fault-injecting proxy in front of the real
// InfluxDB, with the shorthand these tests use.
type proxy struct{ *testserver.InfluxProxy }

// newProxy injects, for write request n (from 0) with lines lines, the
// status inject returns, or forwards on 0; nil forwards everything.
func newProxy(t *testing.T, target string, inject func(n, lines int) (int, http.Header)) proxy {
	var f func(testserver.WriteRequest) (int, http.Header)
	if inject != nil {
		f = func(r testserver.WriteRequest) (int, http.Header) { return inject(r.N, r.Lines) }
	}
	return proxy{testserver.StartInfluxProxy(t, target, f)}
}

// record returns the status and line count of each write request so far.
func (p proxy) record() (statuses, lines []int) {
	for _, r := range p.Requests() {
		statuses, lines = append(statuses, r.Status), append(lines, r.Lines)
	}
	return statuses, lines
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func cfgFor(url, bucket string) Config {
	return Config{URL: url, Org: "city", Bucket: bucket, Token: "secret-token-42"}
}

func point(device string, i int, v float64) gateway.Point {
	return gateway.Point{
		Measurement: "air",
		Tags:        []gateway.Tag{{Key: "dev_eui", Value: fmt.Sprintf("%016x", i)}, {Key: "device", Value: device}, {Key: "site", Value: "school 3"}},
		Fields:      []gateway.Field{gateway.FloatField("temperature", v), gateway.IntField("count", int64(i)), gateway.BoolField("ok", i%2 == 0)},
		Time:        time.Unix(1700000000, int64(i)),
	}
}

// TestSinkConcurrentWrites: 50 writers, each Write returns only when its
// points are stored, and they share requests (group commit).
func TestSinkConcurrentWrites(t *testing.T) {
	t.Parallel()
	db := testserver.StartInfluxDB(t)
	px := newProxy(t, db.URL(), nil)
	s, _ := startSink(t, cfgFor(px.URL, db.Bucket()), fastTiming)

	const writers, writes, perWrite = 50, 10, 3
	var wg sync.WaitGroup
	errs := make(chan error, writers*writes)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dev := "dev-" + strconv.Itoa(w)
			for i := 0; i < writes; i++ {
				var pts []gateway.Point
				for k := 0; k < perWrite; k++ {
					n := i*perWrite + k
					pts = append(pts, point(dev, n, float64(w)+float64(n)/10))
				}
				errs <- s.Write(context.Background(), pts)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	// Acked means stored: no waiting for InfluxDB to catch up.
	if n := db.Count(t, "air"); n != writers*writes*perWrite {
		t.Fatalf("InfluxDB holds %d points, want %d", n, writers*writes*perWrite)
	}
	statuses, _ := px.record()
	if len(statuses) >= writers*writes/2 {
		t.Errorf("%d requests for %d writes: writes are not gathered", len(statuses), writers*writes)
	}

	// Exact values, types and timestamps of one point.
	got := db.Query(t, `SELECT "count", "ok", "temperature" FROM "air" WHERE "device" = 'dev-7' AND "dev_eui" = '0000000000000005'`)
	if len(got) != 1 || len(got[0].Values) != 1 {
		t.Fatalf("got %+v", got)
	}
	row := got[0].Values[0]
	want := []any{json.Number(strconv.FormatInt(time.Unix(1700000000, 5).UnixNano(), 10)), json.Number("5"), false, json.Number("7.5")}
	for i := range want {
		if row[i] != want[i] {
			t.Errorf("column %s = %#v, want %#v", got[0].Columns[i], row[i], want[i])
		}
	}
	types := map[string]string{}
	for _, r := range db.Query(t, `SHOW FIELD KEYS FROM "air"`)[0].Values {
		types[r[0].(string)] = r[1].(string)
	}
	if types["temperature"] != "float" || types["count"] != "integer" || types["ok"] != "boolean" {
		t.Errorf("field types %v", types)
	}
}

// TestSinkIdempotent: the same points written twice, in one batch and
// again later, are stored once.
func TestSinkIdempotent(t *testing.T) {
	t.Parallel()
	db := testserver.StartInfluxDB(t)
	s, _ := startSink(t, Config{URL: db.URL(), Bucket: db.Bucket()}, fastTiming)
	pts := []gateway.Point{point("d1", 1, 20.5), point("d1", 2, 21.5)}
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Write(context.Background(), pts); err != nil {
				t.Errorf("Write: %v", err)
			}
		}()
	}
	wg.Wait()
	// Reordered tags encode to the same series.
	again := []gateway.Point{point("d1", 1, 20.5), point("d1", 2, 21.5)}
	again[0].Tags[0], again[0].Tags[2] = again[0].Tags[2], again[0].Tags[0]
	if err := s.Write(context.Background(), again); err != nil {
		t.Fatal(err)
	}
	if n := db.Count(t, "air"); n != 2 {
		t.Fatalf("InfluxDB holds %d points, want 2", n)
	}
}

// TestSinkRejectsOnlyTheBadWrite: a field type conflict in one Write of a
// batch makes that Write fail with ErrRejected; the others land.
func TestSinkRejectsOnlyTheBadWrite(t *testing.T) {
	t.Parallel()
	db := testserver.StartInfluxDB(t)
	// The first write after the warm-up goes out alone (the link is idle);
	// the proxy holds it until every other write has joined the next
	// batch, so the bad one always shares a request with good ones.
	inFlight, release := make(chan struct{}), make(chan struct{})
	px := testserver.StartInfluxProxy(t, db.URL(), func(r testserver.WriteRequest) (int, http.Header) {
		if r.N == 1 {
			close(inFlight)
			<-release
		}
		return 0, nil
	})
	cfg := cfgFor(px.URL, db.Bucket())
	cfg.FlushInterval = 500 * time.Millisecond // room for all writes to join one batch
	s, _ := startSink(t, cfg, fastTiming)

	ctx := context.Background()
	// "level" is a float field from now on.
	if err := s.Write(ctx, []gateway.Point{{Measurement: "water", Fields: []gateway.Field{gateway.FloatField("level", 1.5)}, Time: time.Unix(1, 0)}}); err != nil {
		t.Fatal(err)
	}
	const writers, bad = 9, 4
	errs := make([]error, writers)
	var wg sync.WaitGroup
	write := func(w int) {
		defer wg.Done()
		f := gateway.FloatField("level", float64(w))
		if w == bad {
			f = gateway.IntField("level", int64(w)) // type conflict
		}
		errs[w] = s.Write(ctx, []gateway.Point{{Measurement: "water", Tags: []gateway.Tag{{Key: "device", Value: "d" + strconv.Itoa(w)}}, Fields: []gateway.Field{f}, Time: time.Unix(2, 0)}})
	}
	wg.Add(writers)
	go write(0)
	<-inFlight
	for w := 1; w < writers; w++ {
		go write(w)
	}
	waitFor(t, "every write in the spool", 10*time.Second, func() bool { return s.pending() == writers })
	close(release)
	wg.Wait()
	for w, err := range errs {
		if w == bad {
			if !errors.Is(err, ErrRejected) || !errors.Is(err, gateway.ErrRejected) || !strings.Contains(err.Error(), "conflict") {
				t.Errorf("bad write: err = %v, want ErrRejected with InfluxDB's message", err)
			}
		} else if err != nil {
			t.Errorf("write %d: %v", w, err)
		}
	}
	if n := db.Count(t, "water"); n != 1+writers-1 {
		t.Errorf("InfluxDB holds %d points, want %d", n, writers)
	}
	// The batch holding the bad write was refused whole, then split.
	var statuses, lines []int
	for _, r := range px.Requests() {
		statuses, lines = append(statuses, r.Status), append(lines, r.Lines)
	}
	batchedReject := false
	for i := range statuses {
		if statuses[i] == http.StatusBadRequest && lines[i] > 1 {
			batchedReject = true
		}
	}
	if !batchedReject {
		t.Errorf("want a batch of several writes rejected together, then apart; requests: statuses %v, lines %v", statuses, lines)
	}
}

// TestSinkEncodingErrors: points the encoder refuses are reported as
// ErrRejected; the rest of the Write is stored.
func TestSinkEncodingErrors(t *testing.T) {
	t.Parallel()
	db := testserver.StartInfluxDB(t)
	s, _ := startSink(t, Config{URL: db.URL(), Bucket: db.Bucket()}, fastTiming)
	nan := point("d1", 1, 0)
	nan.Fields[0].F = nan.Fields[0].F / nan.Fields[0].F // NaN without a constant
	err := s.Write(context.Background(), []gateway.Point{nan, point("d1", 2, 1), {Measurement: "air"}})
	if !errors.Is(err, ErrRejected) || !errors.Is(err, ErrInvalidPoint) {
		t.Fatalf("err = %v", err)
	}
	if n := db.Count(t, "air"); n != 2 {
		t.Fatalf("InfluxDB holds %d points, want 2 (one without its NaN field)", n)
	}
	if err := s.Write(context.Background(), []gateway.Point{{Measurement: "air"}}); !errors.Is(err, ErrRejected) {
		t.Fatalf("nothing valid: err = %v", err)
	}
}

// TestSinkWaitsForInfluxDB: while InfluxDB is down, Write blocks; when it
// is back, Write returns nil and the points are there.
func TestSinkWaitsForInfluxDB(t *testing.T) {
	t.Parallel()
	db := testserver.StartInfluxDB(t)
	s, logs := startSink(t, Config{URL: db.URL(), Bucket: db.Bucket()}, fastTiming)
	db.Stop()
	done := make(chan error, 1)
	go func() { done <- s.Write(context.Background(), []gateway.Point{point("d1", 1, 1)}) }()
	waitFor(t, "a failed attempt", 10*time.Second, func() bool { return strings.Contains(logs.String(), "retrying") })
	select {
	case err := <-done:
		t.Fatalf("Write returned %v while InfluxDB is down", err)
	default:
	}
	db.Start()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Write did not return after InfluxDB came back")
	}
	if n := db.Count(t, "air"); n != 1 {
		t.Fatalf("InfluxDB holds %d points, want 1", n)
	}
}

// TestSinkStatusPolicy drives each retry branch through the proxy with a
// real InfluxDB behind it.
func TestSinkStatusPolicy(t *testing.T) {
	t.Parallel()
	db := testserver.StartInfluxDB(t)
	first := func(k, status int, hdr http.Header) func(n, lines int) (int, http.Header) {
		return func(n, _ int) (int, http.Header) {
			if n < k {
				return status, hdr
			}
			return 0, nil
		}
	}
	tests := []struct {
		name    string
		inject  func(n, lines int) (int, http.Header)
		log     string        // expected in the log
		atLeast time.Duration // Retry-After honoured
	}{
		{name: "500", inject: first(3, 500, nil), log: "retrying"},
		{name: "503", inject: first(2, 503, nil), log: "retrying"},
		{name: "429 Retry-After", inject: first(1, 429, http.Header{"Retry-After": {"1"}}), log: "retrying", atLeast: time.Second},
		{name: "401", inject: first(2, 401, nil), log: "fix influx.token"},
		{name: "403", inject: first(1, 403, nil), log: "fix influx.token"},
		{name: "404", inject: first(1, 404, nil), log: "create it or fix influx.bucket"},
		{name: "413 splits", inject: func(_, lines int) (int, http.Header) {
			if lines > 3 {
				return 413, nil
			}
			return 0, nil
		}, log: "splitting"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			px := newProxy(t, db.URL(), tt.inject)
			s, logs := startSink(t, cfgFor(px.URL, db.Bucket()), fastTiming)
			m := "policy" + strconv.Itoa(i)
			var pts []gateway.Point
			for k := 0; k < 10; k++ {
				pts = append(pts, gateway.Point{Measurement: m, Fields: []gateway.Field{gateway.FloatField("v", float64(k))}, Time: time.Unix(int64(k), 0)})
			}
			start := time.Now()
			if err := s.Write(context.Background(), pts); err != nil {
				t.Fatalf("Write: %v", err)
			}
			if el := time.Since(start); el < tt.atLeast {
				t.Errorf("returned after %s, before Retry-After %s", el, tt.atLeast)
			}
			if n := db.Count(t, m); n != len(pts) {
				t.Errorf("InfluxDB holds %d points, want %d", n, len(pts))
			}
			if l := logs.String(); !strings.Contains(l, tt.log) || strings.Contains(l, "secret-token-42") {
				t.Errorf("log lacks %q or shows the token:\n%s", tt.log, l)
			}
		})
	}

	t.Run("413 single point", func(t *testing.T) {
		px := newProxy(t, db.URL(), func(int, int) (int, http.Header) { return 413, nil })
		s, _ := startSink(t, cfgFor(px.URL, db.Bucket()), fastTiming)
		err := s.Write(context.Background(), []gateway.Point{point("d1", 1, 1)})
		if !errors.Is(err, ErrRejected) {
			t.Fatalf("err = %v, want ErrRejected", err)
		}
	})
}

// TestSinkMissingDatabase: against a real InfluxDB without the database,
// Write keeps the points and retries until an operator creates it.
func TestSinkMissingDatabase(t *testing.T) {
	t.Parallel()
	db := testserver.StartInfluxDB(t)
	s, logs := startSink(t, Config{URL: db.URL(), Bucket: "later/autogen", Gzip: GzipNever}, fastTiming)
	done := make(chan error, 1)
	go func() { done <- s.Write(context.Background(), []gateway.Point{point("d1", 1, 1)}) }()
	waitFor(t, "the bucket error in the log", 10*time.Second, func() bool {
		return strings.Contains(logs.String(), "create it or fix influx.bucket")
	})
	db.Exec(t, "CREATE DATABASE later")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDeliveryStop is the shutdown drain: stop delivers what the spool
// holds at once (without waiting out flush_interval); a drain that runs
// out of time while InfluxDB fails says so, stops without waiting for
// InfluxDB, and leaves the record in the spool; Run ends cleanly when its
// ctx ends.
func TestDeliveryStop(t *testing.T) {
	t.Parallel()
	db := testserver.StartInfluxDB(t)
	point1 := []gateway.Point{{Measurement: "closing", Fields: []gateway.Field{gateway.FloatField("v", 1)}, Time: time.Unix(1, 0)}}
	point2 := []gateway.Point{{Measurement: "closing", Fields: []gateway.Field{gateway.FloatField("v", 2)}, Time: time.Unix(2, 0)}}
	start := func(t *testing.T, cfg Config) (*syncSink, func(context.Context) (error, error)) {
		c, err := newClient(cfg, zerolog.Nop(), fastTiming)
		if err != nil {
			t.Fatal(err)
		}
		sp := openQuickSpool(t, t.TempDir())
		t.Cleanup(func() { sp.Close() })
		s := &syncSink{w: NewWriter(sp), sp: sp, dl: &memDL{}, waits: map[string][]chan error{}}
		s.d = NewDeliverer(c, sp, s.dl, zerolog.Nop())
		s.d.settled = s.settled
		return s, s.d.Start()
	}

	t.Run("flushes", func(t *testing.T) {
		s, stop := start(t, Config{URL: db.URL(), Bucket: db.Bucket(), FlushInterval: time.Hour})
		if err := s.Write(context.Background(), point1); err != nil {
			t.Fatal(err)
		}
		// Delivery lingers an hour before its next read; the drain does not.
		if err := s.w.Write(context.Background(), point2); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if notDrained, err := stop(ctx); notDrained != nil || err != nil {
			t.Fatalf("stop: %v, %v", notDrained, err)
		}
		if n := db.Count(t, "closing"); n != 2 {
			t.Fatalf("InfluxDB holds %d points, want 2", n)
		}
	})

	t.Run("gives up", func(t *testing.T) {
		px := newProxy(t, db.URL(), func(int, int) (int, http.Header) { return 503, nil })
		s, stop := start(t, Config{URL: px.URL, Bucket: db.Bucket()})
		if err := s.w.Write(context.Background(), point1); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a refused attempt", 10*time.Second, func() bool { return len(px.Requests()) > 0 })
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		notDrained, err := stop(ctx)
		if !errors.Is(notDrained, context.DeadlineExceeded) || !strings.Contains(notDrained.Error(), "1 spooled records not yet in InfluxDB") {
			t.Fatalf("stop: %v", notDrained)
		}
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if p := s.pending(); p != 1 {
			t.Fatalf("%d records in the spool after the stop, want 1", p)
		}
	})

	t.Run("run ctx cancelled", func(t *testing.T) {
		px := newProxy(t, db.URL(), func(int, int) (int, http.Header) { return 503, nil })
		s, _ := start(t, Config{URL: px.URL, Bucket: db.Bucket()})
		// A second Deliverer's Run, cancelled while InfluxDB fails.
		c, _ := newClient(Config{URL: px.URL, Bucket: db.Bucket()}, zerolog.Nop(), fastTiming)
		d := NewDeliverer(c, s.sp, &memDL{}, zerolog.Nop())
		ctx, cancel := context.WithCancel(context.Background())
		runErr := make(chan error, 1)
		go func() { runErr <- d.Run(ctx) }()
		if err := s.w.Write(context.Background(), point1); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a refused attempt", 10*time.Second, func() bool { return len(px.Requests()) > 0 })
		cancel()
		if err := <-runErr; err != nil {
			t.Fatalf("Run: %v", err)
		}
		if p := s.pending(); p != 1 {
			t.Fatalf("%d records in the spool after Run ended, want 1", p)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string // "" = valid
	}{
		{Config{URL: "http://127.0.0.1:8086", Bucket: "sensors/autogen"}, ""},
		{Config{Bucket: "b"}, "influx: url is empty: set influx.url"},
		{Config{URL: "127.0.0.1:8086", Bucket: "b"}, "not an http(s) URL"},
		{Config{URL: "http://u:p@h:8086", Bucket: "b"}, "influx.token"},
		{Config{URL: "http://h"}, "set influx.bucket"},
		{Config{URL: "http://h", Bucket: "b", BatchSize: -1, FlushInterval: -1, Timeout: -1, MaxInFlight: -1}, "max_in_flight"},
		{Config{URL: "http://h", Bucket: "b", BatchBytes: 1000}, "influx: batch_bytes 1000 is outside 65536 to 16777216"},
		{Config{URL: "http://h", Bucket: "b", BatchBytes: 32 << 20}, "batch_bytes 33554432 is outside"},
		{Config{URL: "http://h", Bucket: "b", BatchBytes: 2 << 20}, ""},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: err = %v, want %q", tt.cfg, err, tt.want)
		}
		if _, nerr := New(tt.cfg, zerolog.Nop()); (nerr == nil) != (tt.want == "") {
			t.Errorf("New(%+v) = %v", tt.cfg, nerr)
		}
	}
	c := Config{}.withDefaults()
	if c.BatchSize != 5000 || c.BatchBytes != 512<<10 || c.FlushInterval != 100*time.Millisecond || c.Timeout != 10*time.Second || c.Gzip != GzipAuto || c.MaxInFlight != 2 {
		t.Errorf("defaults: %+v", c)
	}
}

// BenchmarkSinkWrite measures messages of five points written by 256
// concurrent callers (the MQTT source's in-flight limit) into a real
// InfluxDB through the spool, each call waiting for its 2xx. The daemon's
// callers do not wait for InfluxDB; these do, so without a backlog their
// rate is bounded by one spool read per flush interval.
func BenchmarkSinkWrite(b *testing.B) {
	db := testserver.StartInfluxDB(b)
	for _, flush := range []time.Duration{100 * time.Millisecond, 10 * time.Millisecond} {
		b.Run("flush="+flush.String(), func(b *testing.B) {
			s, _ := startSink(b, Config{URL: db.URL(), Bucket: db.Bucket(), FlushInterval: flush}, defaultTiming)
			var seq sync.Mutex
			n := 0
			b.ReportAllocs()
			b.SetParallelism(256 / max(1, runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					seq.Lock()
					n++
					i := n
					seq.Unlock()
					pts := make([]gateway.Point, 5)
					for k := range pts {
						pts[k] = point("bench-"+strconv.Itoa(i%1000), i%1000, float64(k))
						pts[k].Time = time.Unix(1700000000, int64(i*5+k))
					}
					if err := s.Write(context.Background(), pts); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// TestSinkRefusedBatchSettledAtOnce: when InfluxDB refuses part of a
// batch of Writes and its refusal names the points (a field type
// conflict), the suspect points are sent alone: one request settles
// every Write holding one, and the others are delivered. Without that,
// halving would take a request or two per refused Write.
func TestSinkRefusedBatchSettledAtOnce(t *testing.T) {
	t.Parallel()
	db := testserver.StartInfluxDB(t)
	inFlight, release := make(chan struct{}), make(chan struct{})
	px := testserver.StartInfluxProxy(t, db.URL(), func(r testserver.WriteRequest) (int, http.Header) {
		if r.N == 1 {
			close(inFlight)
			<-release
		}
		return 0, nil
	})
	cfg := cfgFor(px.URL, db.Bucket())
	cfg.FlushInterval = 500 * time.Millisecond
	s, _ := startSink(t, cfg, fastTiming)
	ctx := context.Background()
	if err := s.Write(ctx, []gateway.Point{{Measurement: "water", Fields: []gateway.Field{gateway.FloatField("level", 1.5)}, Time: time.Unix(1, 0)}}); err != nil {
		t.Fatal(err)
	}
	const writers = 40
	errs := make([]error, writers)
	var wg sync.WaitGroup
	write := func(w int) {
		defer wg.Done()
		// Every Write: a good point, and in every other one a level of
		// the wrong type.
		pts := []gateway.Point{{Measurement: "flow", Tags: []gateway.Tag{{Key: "device", Value: "d" + strconv.Itoa(w)}}, Fields: []gateway.Field{gateway.FloatField("rate", 1)}, Time: time.Unix(2, 0)}}
		f := gateway.FloatField("level", float64(w))
		if w%2 == 1 {
			f = gateway.IntField("level", int64(w))
		}
		pts = append(pts, gateway.Point{Measurement: "water", Tags: []gateway.Tag{{Key: "device", Value: "d" + strconv.Itoa(w)}}, Fields: []gateway.Field{f}, Time: time.Unix(2, 0)})
		errs[w] = s.Write(ctx, pts)
	}
	wg.Add(writers)
	go write(0)
	<-inFlight
	for w := 1; w < writers; w++ {
		go write(w)
	}
	waitFor(t, "every write in the spool", 10*time.Second, func() bool { return s.pending() == writers })
	close(release)
	wg.Wait()
	for w, err := range errs {
		if bad := w%2 == 1; bad != errors.Is(err, ErrRejected) || (!bad && err != nil) {
			t.Errorf("write %d: err = %v, want rejected: %v", w, err, bad)
		}
	}
	if n := db.Count(t, "water"); n != 1+writers/2 {
		t.Errorf("InfluxDB holds %d water points, want %d", n, 1+writers/2)
	}
	if n := db.Count(t, "flow"); n != writers {
		t.Errorf("InfluxDB holds %d flow points, want %d (a refused Write's other points are taken)", n, writers)
	}
	// The warm-up, write 0 (held), the batch of the others, its suspect
	// points alone, the rest again.
	statuses, lines := proxy{px}.record()
	if want := []int{204, 204, 400, 400, 204}; fmt.Sprint(statuses) != fmt.Sprint(want) || lines[3] != writers/2 {
		t.Errorf("requests: statuses %v, lines %v; want statuses %v, the fourth the %d suspect points", statuses, lines, want, writers/2)
	}
}
