package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// readyRig is a daemon with its API on a free port, probing InfluxDB
// every 50 ms so each case settles in well under a second.
type readyRig struct {
	t    *testing.T
	d    *Daemon
	base string
	dir  string
}

// startReadyRig runs a daemon with one MQTT source on mq and influxYAML
// as its influx section.
func startReadyRig(t *testing.T, mq *testserver.Mosquitto, influxYAML string) *readyRig {
	t.Helper()
	return startReadyRigEvery(t, mq, influxYAML, 50*time.Millisecond)
}

// startReadyRigEvery is startReadyRig probing InfluxDB every probe.
func startReadyRigEvery(t *testing.T, mq *testserver.Mosquitto, influxYAML string, probe time.Duration) *readyRig {
	t.Helper()
	dir := t.TempDir()
	port := testserver.FreePort(t)
	cfgText := fmt.Sprintf(`
log: {level: warn, format: json}
http: {listen: "127.0.0.1:%[3]d", token: "t0ken"}
state_dir: %[1]s/state
sources:
  - {name: cs4, type: mqtt, format: chirpstack-v4, broker: %[2]q, topics: ["application/+/device/+/event/up"], client_id: %[4]q}
influx: %[5]s
`, dir, mq.URL(), port, "readyz-"+filepath.Base(dir), influxYAML)
	cfgPath := filepath.Join(dir, "sensorgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemonWith(t, cfg, zerolog.WarnLevel, func(d *Daemon) { d.probeEvery = probe })
	return &readyRig{t: t, d: d, base: fmt.Sprintf("http://127.0.0.1:%d", port), dir: dir}
}

// await waits until /readyz answers status with the check's entry
// containing every want, and returns the entry.
func (r *readyRig) await(status int, check string, want ...string) string {
	r.t.Helper()
	var last readiness
	waitFor(r.t, 20*time.Second, fmt.Sprintf("/readyz %d with %s containing %q", status, check, want), func() bool {
		var err error
		if last, err = fetchReadiness(r.base + "/readyz"); err != nil || last.status != status {
			return false
		}
		for _, w := range want {
			if !strings.Contains(last.checks[check], w) {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("last answer %d %v", last.status, last.checks) })
	return last.checks[check]
}

// stats describes the InfluxDB client's and the spool's state, for a failure.
func (r *readyRig) stats() string {
	return fmt.Sprintf("sink %+v; spool %+v", r.d.influx.Stats(), r.d.spool.Stats())
}

// fetchReadiness reads /readyz's answer; getJSON is it failing the test.
func fetchReadiness(url string) (readiness, error) {
	resp, err := http.Get(url)
	if err != nil {
		return readiness{}, err
	}
	defer resp.Body.Close()
	var body struct {
		Checks map[string]string `json:"checks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return readiness{}, fmt.Errorf("%s: %w", url, err)
	}
	return readiness{resp.StatusCode, body.Checks}, nil
}

// write hands points to the daemon's sink (the spool, then InfluxDB),
// as the pipeline does.
func (r *readyRig) write(measurement string, n int) {
	r.t.Helper()
	pts := make([]gateway.Point, n)
	now := time.Now()
	for i := range pts {
		pts[i] = gateway.Point{Measurement: measurement, Tags: []gateway.Tag{{Key: "i", Value: fmt.Sprint(i)}},
			Fields: []gateway.Field{gateway.FloatField("v", float64(i))}, Time: now}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.d.writer.Write(ctx, pts); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// countIn counts the points of measurement in database's autogen.
func countIn(t *testing.T, db *testserver.InfluxDB, database, measurement string) int {
	t.Helper()
	n := 0
	for _, s := range db.Query(t, fmt.Sprintf(`SELECT * FROM %q.autogen.%q`, database, measurement)) {
		n += len(s.Values)
	}
	return n
}

// TestReadyzInflux: /readyz's influx entry tells the truth for each way
// InfluxDB can fail, and never says ok while it is not.
func TestReadyzInflux(t *testing.T) {
	mq := testserver.StartMosquitto(t)
	db := testserver.StartInfluxDB(t)

	t.Run("database missing, create_database false", func(t *testing.T) {
		r := startReadyRig(t, mq, fmt.Sprintf(`{url: %q, bucket: absent/autogen, create_database: false, flush_interval: 20ms}`, db.URL()))
		entry := r.await(503, "influx", `bucket "absent/autogen" does not exist`, "database not found", `CREATE DATABASE "absent"`)
		t.Logf("influx: %s", entry)
	})

	t.Run("database missing, created", func(t *testing.T) {
		r := startReadyRig(t, mq, fmt.Sprintf(`{url: %q, bucket: created/autogen, flush_interval: 20ms}`, db.URL()))
		r.await(200, "influx", "ok")
		r.write("landed", 3)
		waitFor(t, 20*time.Second, "the points in the created database", func() bool { return countIn(t, db, "created", "landed") == 3 }, r.stats)
	})

	// Between two probes a write's 404 is the fresher evidence: with the
	// next probe an hour away, the database dropped under the daemon
	// shows at the first refused write.
	t.Run("database dropped between probes", func(t *testing.T) {
		r := startReadyRigEvery(t, mq, fmt.Sprintf(`{url: %q, bucket: dropped/autogen, flush_interval: 20ms}`, db.URL()), time.Hour)
		r.await(200, "influx", "ok")
		// The daemon's schema point, spooled at start, is delivered first,
		// so that the refused write below is the one record left.
		waitFor(t, 20*time.Second, "the schema point delivered", func() bool { return countIn(t, db, "dropped", gateway.SchemaMeasurement) == 1 }, r.stats)
		db.Exec(t, "DROP DATABASE dropped")
		r.write("lost", 1)
		entry := r.await(503, "influx", "InfluxDB refused a write at", "HTTP 404", "1 record in the spool")
		t.Logf("influx: %s", entry)
		// Recreated, the record goes out at the next retry (cut short
		// here as the monitor's next good probe would).
		db.Exec(t, "CREATE DATABASE dropped")
		r.d.influx.RetryNow()
		waitFor(t, 20*time.Second, "the held point delivered", func() bool { return countIn(t, db, "dropped", "lost") == 1 }, r.stats)
	})

	t.Run("nothing listening", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + ln.Addr().String()
		ln.Close()
		r := startReadyRig(t, mq, fmt.Sprintf(`{url: %q, bucket: x/autogen, flush_interval: 20ms}`, url))
		// The one record is the daemon's schema point, spooled at start.
		entry := r.await(200, "influx", "degraded: InfluxDB unreachable since", "1 record spooled", "connection refused")
		t.Logf("influx: %s", entry)
	})

	t.Run("stopped with records pending, then back", func(t *testing.T) {
		own := testserver.StartInfluxDB(t)
		r := startReadyRig(t, mq, fmt.Sprintf(`{url: %q, bucket: %s, flush_interval: 20ms}`, own.URL(), own.Bucket()))
		r.await(200, "influx", "ok")
		own.Stop()
		for range 3 {
			r.write("pending", 5)
		}
		entry := r.await(200, "influx", "degraded: InfluxDB unreachable since", "3 records spooled")
		t.Logf("influx: %s", entry)
		own.Start()
		r.await(200, "influx", "ok")
		waitFor(t, 20*time.Second, "the spooled points delivered", func() bool { return countIn(t, own, own.DB, "pending") == 15 }, r.stats)
	})

	t.Run("wrong credentials", func(t *testing.T) {
		authed := testserver.StartInfluxDB(t, testserver.Auth("admin", "adm-pw"))
		r := startReadyRig(t, mq, fmt.Sprintf(`{url: %q, bucket: %s, token: "admin:wrong", flush_interval: 20ms}`, authed.URL(), authed.Bucket()))
		entry := r.await(503, "influx", "HTTP 401", "influx.token")
		t.Logf("influx: %s", entry)
	})
}

// TestReadyzSpoolAndRegistry: the spool's directory gone, and the
// registry's database closed, each make the daemon not ready with the
// reason under their names.
func TestReadyzSpoolAndRegistry(t *testing.T) {
	mq := testserver.StartMosquitto(t)
	db := testserver.StartInfluxDB(t)
	influxYAML := fmt.Sprintf(`{url: %q, bucket: %s, flush_interval: 20ms}`, db.URL(), db.Bucket())

	t.Run("spool directory gone", func(t *testing.T) {
		r := startReadyRig(t, mq, influxYAML)
		r.await(200, "spool", "ok")
		if err := os.RemoveAll(filepath.Join(r.dir, "state", "spool")); err != nil {
			t.Fatal(err)
		}
		r.await(503, "spool", "does not take new files", "no such file or directory")
	})

	t.Run("registry closed", func(t *testing.T) {
		r := startReadyRig(t, mq, influxYAML)
		r.await(200, "registry", "ok")
		if err := r.d.ops.store.Close(); err != nil {
			t.Fatal(err)
		}
		r.await(503, "registry", "registry database", "closed")
	})
}
