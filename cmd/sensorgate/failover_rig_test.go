package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// failoverToken is the API token of the failover tests' instances.
const failoverToken = "failover-test-token-5c1e88"

// failoverRig is the arrangement of the failover tests: a real Mosquitto,
// one InfluxDB 1.8, a fresh PostgreSQL database for the shared registry,
// and sensorgate processes with one config but their own client_id,
// state_dir and API port.
type failoverRig struct {
	t   *testing.T
	dir string
	bin string
	mq  *testserver.Mosquitto
	db  *testserver.InfluxDB
	dsn string
	all []*failoverInstance
}

// failoverInstance is one sensorgate process of the group, with its own
// state directory, log, client id and API.
type failoverInstance struct {
	name string
	api  string
	proc *daemonProc
}

func newFailoverRig(t *testing.T) *failoverRig {
	return &failoverRig{t: t, dir: t.TempDir(), bin: sensorgateBinary(t),
		mq: testserver.StartMosquitto(t), db: testserver.StartInfluxDB(t), dsn: testserver.PostgresDB(t)}
}

// failoverSource is the one source every instance of a rig runs.
type failoverSource struct {
	// entry is the source's YAML flow mapping for the instance's client
	// id; the broker's URL is %[1]s in it and the client id %[2]s.
	entry string
	// subscriptions are the shared-subscription filters of the client
	// id's persistent session.
	subscriptions []string
}

// start writes instance name's config (registry in the rig's PostgreSQL
// database, devices imported from devicesFile), creates its persistent
// session and starts the process; the test's cleanup kills it if it still
// runs.
func (r *failoverRig) start(name string, src failoverSource, devicesFile string) *failoverInstance {
	t := r.t
	t.Helper()
	idir := filepath.Join(r.dir, name)
	if err := os.MkdirAll(idir, 0o755); err != nil {
		t.Fatal(err)
	}
	port := testserver.FreePort(t)
	clientID := "failover-" + name
	text := fmt.Sprintf(`log: {level: info, format: json}
state_dir: %[1]s/state
http: {listen: "127.0.0.1:%[2]d", token: %[3]q}
registry: {driver: postgres, dsn: %[4]q, health_sync_interval: 200ms}
sources:
  - %[5]s
influx: {url: %[6]q, bucket: sensors/autogen, flush_interval: 20ms}
devices: {import: %[7]s, tags: [district, site]}
`, idir, port, failoverToken, r.dsn, fmt.Sprintf(src.entry, r.mq.URL(), clientID), r.db.URL(), devicesFile)
	cfgPath := filepath.Join(idir, "sensorgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(cfgPath); err != nil {
		t.Fatalf("config: %v\n%s", err, text)
	}
	// The persistent session exists before the stream starts, as in a
	// running deployment: the group's share for this member is queued
	// even before its first connect.
	presubscribe(t, r.mq.URL(), clientID, src.subscriptions)
	p := &daemonProc{t: t, bin: r.bin, cfg: cfgPath, log: filepath.Join(idir, "sensorgate.log")}
	p.start()
	t.Cleanup(func() {
		if p.running() {
			p.kill()
		}
	})
	in := &failoverInstance{name: name, api: fmt.Sprintf("http://127.0.0.1:%d", port), proc: p}
	r.all = append(r.all, in)
	return in
}

// diag is the tail of every instance's log, for a failure message.
func (r *failoverRig) diag() string {
	var s string
	for _, in := range r.all {
		lg, _ := os.ReadFile(in.proc.log)
		if len(lg) > 3000 {
			lg = lg[len(lg)-3000:]
		}
		s += fmt.Sprintf("--- instance %s (running %v) log tail:\n%s\n", in.name, in.proc.running(), lg)
	}
	return s
}

// awaitReady waits until each instance answers /readyz.
func (r *failoverRig) awaitReady(timeout time.Duration, ins ...*failoverInstance) {
	r.t.Helper()
	for _, in := range ins {
		waitFor(r.t, timeout, "instance "+in.name+" answers", func() bool { st, _ := in.call("GET", "/readyz", nil); return st == 200 }, r.diag)
	}
}

// call sends an API request to the instance and decodes the JSON answer;
// status is 0 while the instance does not answer.
func (in *failoverInstance) call(method, path string, body any) (int, map[string]any) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, in.api+path, rd)
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Authorization", "Bearer "+failoverToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// mustJSON is v as JSON, for a substring check.
func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
