package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/deadletter"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// The fault-injection suite's rig: each case gets its own Mosquitto,
// InfluxDB, state directory and deterministic stream, runs sensorgate
// (in-process, or as a real process where it is killed), and ends by
// comparing what InfluxDB holds with the exact set of uplinks published.

// csTopic is the ChirpStack v4 uplink topic filter every case subscribes.
const csTopic = "application/+/device/+/event/up"

// faultRig is one case's servers, files and stream.
type faultRig struct {
	t     testing.TB
	mq    *testserver.Mosquitto
	db    *testserver.InfluxDB
	dir   string
	fleet *simulate.Fleet
	devs  []devices.Device
	// log is where the daemon logs (JSON lines), shown on failure.
	log string
}

// newFaultRig starts a broker and a database and a fleet of n simulated
// ChirpStack v4 devices from seed.
func newFaultRig(t *testing.T, seed uint64, n int) *faultRig {
	t.Helper()
	r := &faultRig{t: t, mq: testserver.StartMosquitto(t), db: testserver.StartInfluxDB(t), dir: t.TempDir()}
	var err error
	r.fleet, err = simulate.NewFleet(simulate.Options{Format: simulate.ChirpStackV4, Devices: n, Seed: seed,
		Start: time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC), Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r.devs = r.fleet.Devices()
	r.log = filepath.Join(r.dir, "sensorgate.log")
	return r
}

// stream returns the next n messages of the fleet.
func (r *faultRig) stream(n int) []simulate.Message {
	out := make([]simulate.Message, n)
	for i := range out {
		out[i] = r.fleet.Next()
	}
	return out
}

// rigConfig is what differs between the cases' configs.
type rigConfig struct {
	broker    string // default: the rig's Mosquitto
	influxURL string // default: the rig's InfluxDB
	influx    string // extra keys of the influx map, ", key: value"
	sources   string // extra source entries, YAML lines of the sources list
	extra     string // extra top-level YAML (spool section)
}

// writeConfig writes the devices file and sensorgate.yaml, creates the
// persistent sessions of its sources (as a running deployment has them,
// so nothing published before the daemon first connects is lost) and
// returns the config's path.
func (r *faultRig) writeConfig(c rigConfig) string {
	r.t.Helper()
	if c.broker == "" {
		c.broker = r.mq.URL()
	}
	if c.influxURL == "" {
		c.influxURL = r.db.URL()
	}
	writeYAML(r.t, filepath.Join(r.dir, "devices.yaml"), map[string]any{"devices": r.devs})
	text := fmt.Sprintf(`log: {level: info, format: json}
state_dir: %[1]s/state
http: {listen: "127.0.0.1:%[8]d"}
sources:
  - {name: cs4, type: mqtt, format: chirpstack-v4, broker: %[2]q, topics: [%[3]q], client_id: faults-cs4, reconnect_max: 500ms}
%[4]s
influx: {url: %[5]q, bucket: sensors/autogen, flush_interval: 20ms%[6]s}
devices: {import: %[1]s/devices.yaml, tags: [district, site]}
%[7]s`, r.dir, c.broker, csTopic, c.sources, c.influxURL, c.influx, c.extra, testserver.FreePort(r.t))
	path := filepath.Join(r.dir, "sensorgate.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		r.t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		r.t.Fatalf("config: %v\n%s", err, text)
	}
	for _, s := range cfg.Sources {
		if s.MQTT == nil {
			continue // an http or semtech-udp source has no session
		}
		// Through the rig's broker directly: a proxy in the config may be
		// cut at this moment.
		presubscribe(r.t, r.mq.URL(), s.MQTT.ClientID, s.MQTT.Topics)
	}
	return path
}

// deadLetters reads the daemon's dead-letter file (none yet: nil).
func (r *faultRig) deadLetters() []gateway.DeadLetter {
	r.t.Helper()
	path := filepath.Join(r.dir, "state", deadletter.FileName)
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil
	}
	dls, err := deadletter.ReadAll(path)
	if err != nil {
		r.t.Fatalf("dead letters: %v", err)
	}
	return dls
}

// logTail is the end of the daemon's log, for failure messages.
func (r *faultRig) logTail() string {
	b, _ := os.ReadFile(r.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 25 {
		lines = lines[len(lines)-25:]
	}
	return strings.Join(lines, "\n")
}

// logLines returns the daemon log's JSON lines whose message is msg.
func (r *faultRig) logLines(msg string) []map[string]any {
	f, err := os.Open(r.log)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["message"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// inProcess is the daemon running inside the test binary, where a case
// needs its counters and spool statistics.
type inProcess struct {
	*Daemon
	cancel context.CancelFunc
	done   chan error
	logf   *os.File
}

// runInProcess starts the daemon of cfgPath; the test's cleanup stops it
// if the case did not.
func (r *faultRig) runInProcess(cfgPath string) *inProcess {
	r.t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		r.t.Fatal(err)
	}
	logf, err := os.OpenFile(r.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	d, err := NewDaemon(cfg, zerolog.New(logf).Level(zerolog.InfoLevel).With().Timestamp().Logger())
	if err != nil {
		logf.Close()
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &inProcess{Daemon: d, cancel: cancel, done: make(chan error, 1), logf: logf}
	go func() { p.done <- d.Run(ctx) }()
	r.t.Cleanup(func() { p.stop(r.t) })
	return p
}

// daemonState describes d for a failed wait: its counters, its spool and
// the tail of the rig's log.
func (r *faultRig) daemonState(d *inProcess) func() string {
	return func() string {
		return fmt.Sprintf("counters %v, spool %+v\nlog:\n%s", d.Counters.Snapshot(), d.spool.Stats(), r.logTail())
	}
}

// stop shuts the daemon down as SIGTERM would and closes its files.
func (p *inProcess) stop(t testing.TB) {
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.cancel = nil
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("daemon Run: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Errorf("daemon did not stop within 60s of cancellation")
	}
	if err := p.Close(); err != nil {
		t.Errorf("daemon Close: %v", err)
	}
	p.logf.Close()
}

// counter reads one of the daemon's counters.
func (p *inProcess) counter(name string) uint64 { return p.Counters.Get(name) }

// sensorgateBin is the daemon built once per test binary for the cases
// that run it as a process (SIGKILL must hit a real process).
var (
	binOnce sync.Once
	binPath string
	binDir  string
	binErr  error
)

func sensorgateBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "sensorgate-faults-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "sensorgate")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("build sensorgate: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// daemonProc is sensorgate running as a child process, started and
// stopped by PID only.
type daemonProc struct {
	t    testing.TB
	bin  string
	cfg  string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result, once done is closed
}

// startProcess runs `sensorgate run -c cfgPath`, logging to the rig's log
// (appending across restarts).
func (r *faultRig) startProcess(cfgPath string) *daemonProc {
	r.t.Helper()
	p := &daemonProc{t: r.t, bin: sensorgateBinary(r.t), cfg: cfgPath, log: r.log}
	p.start()
	r.t.Cleanup(func() {
		if p.running() {
			p.kill()
		}
	})
	return p
}

func (p *daemonProc) start() {
	p.t.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	p.cmd = exec.Command(p.bin, "run", "-c", p.cfg)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		p.t.Fatalf("start sensorgate: %v", err)
	}
	p.done = make(chan struct{})
	cmd, done := p.cmd, p.done
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(done)
	}()
}

func (p *daemonProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL to the daemon's PID and waits until it is gone.
func (p *daemonProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// terminate sends SIGTERM and waits for a clean exit.
func (p *daemonProc) terminate() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(30 * time.Second):
		p.kill()
		return fmt.Errorf("sensorgate did not exit within 30s of SIGTERM")
	}
}

// publishReliably publishes msgs at QoS 1 from a persistent session and
// returns once the broker acknowledged every one. A publish that fails
// or is not acknowledged in time (the broker was restarted, the network
// was cut) is published again: at least once, as a network server does;
// a duplicate is the same message, which must not double anything.
// rate > 0 paces the stream (messages per second). onAcked is called with
// the number of messages acknowledged so far.
func publishReliably(ctx context.Context, broker, clientID string, msgs []simulate.Message, rate float64, onAcked func(int)) error {
	o := paho.NewClientOptions().AddBroker(broker).SetClientID(clientID).SetCleanSession(false).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond).
		SetMaxReconnectInterval(500 * time.Millisecond).SetConnectTimeout(5 * time.Second).
		SetWriteTimeout(5 * time.Second).SetOrderMatters(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		return fmt.Errorf("publisher: connect to %s: %v", broker, tok.Error())
	}
	defer c.Disconnect(250)
	const window = 200
	start := time.Now()
	acked := 0
	for lo := 0; lo < len(msgs); lo += window {
		todo := make([]int, 0, window)
		for i := lo; i < min(lo+window, len(msgs)); i++ {
			todo = append(todo, i)
		}
		for attempt := 0; len(todo) > 0; attempt++ {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("publisher: %d of %d acknowledged: %w", acked, len(msgs), err)
			}
			if attempt > 0 {
				time.Sleep(100 * time.Millisecond) // a reconnect is under way
			}
			toks := make([]paho.Token, len(todo))
			for k, i := range todo {
				if rate > 0 {
					if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
						time.Sleep(d)
					}
				}
				toks[k] = c.Publish(msgs[i].Topic, 1, false, msgs[i].Payload)
			}
			var failed []int
			for k, tok := range toks {
				if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					failed = append(failed, todo[k])
					continue
				}
				acked++
				if onAcked != nil {
					onAcked(acked)
				}
			}
			todo = failed
		}
	}
	return nil
}

// countOf returns count(field) over all series of a measurement.
func countOf(t testing.TB, db *testserver.InfluxDB, measurement, field string) int {
	t.Helper()
	return countWhere(t, db, measurement, field, "")
}

// countWhere is countOf of the points matching an InfluxQL condition
// ("" for all).
func countWhere(t testing.TB, db *testserver.InfluxDB, measurement, field, where string) int {
	t.Helper()
	q := fmt.Sprintf(`SELECT count(%s) FROM %s`, testserver.QuoteIdent(field), testserver.QuoteIdent(measurement))
	if where != "" {
		q += " WHERE " + where
	}
	for _, s := range db.Query(t, q) {
		for _, v := range s.Values {
			if n, ok := v[1].(json.Number); ok {
				i, _ := n.Int64()
				return int(i)
			}
		}
	}
	return 0
}

// uplinksIn is how many uplink points InfluxDB holds, by count(payload),
// the one field every uplink point has (feeds without radio data have no
// rssi).
func uplinksIn(t testing.TB, db *testserver.InfluxDB) int {
	return countOf(t, db, "uplink", "payload")
}

// awaitUplinks polls InfluxDB until it holds want uplink points, failing
// with diag's output if more appear or the deadline passes.
func awaitUplinks(t *testing.T, db *testserver.InfluxDB, want int, timeout time.Duration, diag func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := uplinksIn(t, db)
		if n == want {
			return
		}
		if n > want {
			t.Fatalf("InfluxDB holds %d uplinks, more than the %d expected\n%s", n, want, diag())
		}
		if time.Now().After(deadline) {
			t.Fatalf("InfluxDB holds %d of %d uplinks after %s\n%s", n, want, timeout, diag())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// expectSet is the exact set of uplinks a case must end with, keyed by
// dev_eui and time, with the temperature each one carries.
type expectSet map[string]float64

func (e expectSet) add(msgs ...simulate.Message) {
	for _, m := range msgs {
		e[key(m.DevEUI.String(), m.Time)] = m.Temperature
	}
}

// assertExactly checks that InfluxDB holds exactly the expected uplinks,
// each once, and for each its air temperature, each once: nothing
// missing, nothing extra, nothing doubled (a point written twice with
// other tags would be a second row for the same key).
func assertExactly(t *testing.T, db *testserver.InfluxDB, want expectSet) {
	t.Helper()
	assertPoints(t, db, want, want)
}

// assertPoints is assertExactly with different expectations for the
// uplink and the air measurement.
func assertPoints(t *testing.T, db *testserver.InfluxDB, uplinks, air expectSet) {
	t.Helper()
	check := func(what string, want expectSet, rows []row, value func(row) (float64, bool)) {
		t.Helper()
		seen := map[string]bool{}
		var extra, doubled, wrong []string
		for _, r := range rows {
			k := key(r.str("dev_eui"), r.time)
			temp, ok := want[k]
			switch {
			case !ok:
				extra = append(extra, k)
			case seen[k]:
				doubled = append(doubled, k)
			default:
				if v, check := value(r); check && v != temp {
					wrong = append(wrong, fmt.Sprintf("%s: %v, want %v", k, v, temp))
				}
			}
			seen[k] = true
		}
		var missing []string
		for k := range want {
			if !seen[k] {
				missing = append(missing, k)
			}
		}
		if len(extra)+len(doubled)+len(missing)+len(wrong) > 0 {
			t.Fatalf("%s points: %d rows for %d expected uplinks; %d missing %v; %d unexpected %v; %d doubled %v; %d wrong %v",
				what, len(rows), len(want), len(missing), first(missing), len(extra), first(extra), len(doubled), first(doubled), len(wrong), first(wrong))
		}
	}
	check("uplink", uplinks, rowsOf(db.Query(t, `SELECT "payload", "dev_eui" FROM "uplink"`)), func(row) (float64, bool) { return 0, false })
	check("air", air, rowsOf(db.Query(t, `SELECT "temperature", "dev_eui" FROM "air"`)), func(r row) (float64, bool) { return r.float("temperature"), true })
}

// first returns up to five sorted elements, for failure messages.
func first(s []string) []string {
	sort.Strings(s)
	return s[:min(5, len(s))]
}

// missingOf returns the positions in msgs of the uplinks InfluxDB lacks.
func missingOf(t *testing.T, db *testserver.InfluxDB, msgs []simulate.Message) []int {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range rowsOf(db.Query(t, `SELECT "payload", "dev_eui" FROM "uplink"`)) {
		seen[key(r.str("dev_eui"), r.time)] = true
	}
	var out []int
	for i, m := range msgs {
		if !seen[key(m.DevEUI.String(), m.Time)] {
			out = append(out, i)
		}
	}
	return out
}

// firstInts returns up to 20 elements, for failure messages.
func firstInts(s []int) []int { return s[:min(20, len(s))] }
