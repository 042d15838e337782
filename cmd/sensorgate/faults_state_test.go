package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// The bounded-state cases: a flood of made-up dev_euis against a daemon
// running as a process (its memory read from /proc), with a real
// Mosquitto and a real InfluxDB 1.8 refusing new tag values past
// max-values-per-tag, as production servers do past 100,000.

// stateToken is the API token of these cases' daemons.
const stateToken = "bounded-state-test-token-7f3a9c"

// newStateRig is newFaultRig with options for its InfluxDB.
func newStateRig(t testing.TB, seed uint64, n int, opts ...testserver.InfluxOption) *faultRig {
	t.Helper()
	r := &faultRig{t: t, mq: testserver.StartMosquitto(t), db: testserver.StartInfluxDB(t, opts...), dir: t.TempDir()}
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

// stateConfig writes the devices file and a config whose devices section
// holds devicesKeys (", key: value" pairs), with an API token, and
// returns its path and the API's base URL. stateDir and spoolDir default
// to the rig's directory.
func (r *faultRig) stateConfig(devicesKeys, stateDir string) (path, api string) {
	r.t.Helper()
	if stateDir == "" {
		stateDir = filepath.Join(r.dir, "state")
	}
	writeYAML(r.t, filepath.Join(r.dir, "devices.yaml"), map[string]any{"devices": r.devs})
	port := testserver.FreePort(r.t)
	text := fmt.Sprintf(`log: {level: info, format: json}
state_dir: %[1]s
spool: {dir: %[2]s/spool}
http: {listen: "127.0.0.1:%[3]d", token: %[4]q}
sources:
  - {name: cs4, type: mqtt, format: chirpstack-v4, broker: %[5]q, topics: [%[6]q], client_id: state-cs4, reconnect_max: 500ms}
influx: {url: %[7]q, bucket: sensors/autogen, flush_interval: 20ms}
devices: {import: %[2]s/devices.yaml%[8]s}
`, stateDir, r.dir, port, stateToken, r.mq.URL(), csTopic, r.db.URL(), devicesKeys)
	path = filepath.Join(r.dir, "sensorgate.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		r.t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		r.t.Fatalf("config: %v\n%s", err, text)
	}
	for _, s := range cfg.Sources {
		presubscribe(r.t, r.mq.URL(), s.MQTT.ClientID, s.MQTT.Topics)
	}
	return path, fmt.Sprintf("http://127.0.0.1:%d", port)
}

// flood makes uplinks of devices no registry holds, each with its own
// dev_eui (and name), from one of the fleet's messages; message i is
// built when asked for, so a million of them need no memory.
type flood struct {
	tmpl, topic []byte
	placeholder []byte
}

func newFlood(t testing.TB, m simulate.Message) *flood {
	t.Helper()
	const ph = "eeeeeeeeeeeeeeee"
	var v map[string]any
	if err := json.Unmarshal(m.Payload, &v); err != nil {
		t.Fatal(err)
	}
	info := v["deviceInfo"].(map[string]any)
	info["devEui"], info["deviceName"] = ph, "flood-"+ph
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return &flood{tmpl: b, topic: []byte(strings.ReplaceAll(m.Topic, m.DevEUI.String(), ph)), placeholder: []byte(ph)}
}

// eui is the dev_eui of flood message i.
func (f *flood) eui(i int) devices.EUI {
	return devices.EUI{0xf1, 0x00, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 0x01}
}

func (f *flood) message(i int) simulate.Message {
	e := []byte(f.eui(i).String())
	return simulate.Message{Topic: string(bytes.ReplaceAll(f.topic, f.placeholder, e)), Payload: bytes.ReplaceAll(f.tmpl, f.placeholder, e), DevEUI: f.eui(i)}
}

func (f *flood) messages(from, n int) []simulate.Message {
	out := make([]simulate.Message, n)
	for i := range out {
		out[i] = f.message(from + i)
	}
	return out
}

// publishQoS0 publishes n messages at QoS 0 as fast as the client writes
// them (no acknowledgements to wait for), ending with one QoS 1 publish
// so that everything before it reached the broker.
func publishQoS0(ctx context.Context, broker, clientID string, n int, msg func(int) simulate.Message) error {
	o := paho.NewClientOptions().AddBroker(broker).SetClientID(clientID).SetCleanSession(true).
		SetConnectTimeout(5 * time.Second).SetWriteTimeout(10 * time.Second).SetOrderMatters(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		return fmt.Errorf("flood publisher: connect to %s: %v", broker, tok.Error())
	}
	defer c.Disconnect(250)
	var last paho.Token
	for i := range n {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if last != nil && !last.WaitTimeout(30*time.Second) {
				return fmt.Errorf("flood publisher: publish %d not written in 30s", i)
			}
		}
		m := msg(i)
		last = c.Publish(m.Topic, 0, false, m.Payload)
	}
	if last != nil && !last.WaitTimeout(30*time.Second) {
		return fmt.Errorf("flood publisher: the last publish was not written in 30s")
	}
	return nil
}

// apiGet decodes the JSON of an authenticated GET.
func apiGet(t testing.TB, base, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Header.Set("Authorization", "Bearer "+stateToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// scrape reads the daemon's /metrics as "name{labels}" → value; nil while
// the daemon does not answer.
func scrape(base string) map[string]float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// memory reads a process's resident set now and at its peak, in bytes.
func memory(t testing.TB, pid int) (rss, peak int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read the daemon's memory: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return rss, peak
}

// awaitHandled waits until the daemon's pipeline has taken n uplinks (its
// uplinks counter), sampling its memory meanwhile; it returns the largest
// resident set seen.
func awaitHandled(t testing.TB, p *daemonProc, api string, n int, timeout time.Duration, diag func() string) int64 {
	t.Helper()
	var most int64
	deadline := time.Now().Add(timeout)
	for {
		rss, _ := memory(t, p.cmd.Process.Pid)
		most = max(most, rss)
		got := scrape(api)[`sensorgate_pipeline_events_total{event="uplinks"}`]
		if int(got) >= n {
			return most
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon took %v of %d uplinks in %s\n%s", got, n, timeout, diag())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type healthList struct {
	Devices []devices.DeviceHealth `json:"devices"`
	Count   int                    `json:"count"`
}

type unknownList struct {
	Devices []devices.UnknownDevice `json:"devices"`
	Count   int                     `json:"count"`
	Dropped uint64                  `json:"dropped"`
}

// TestFaultUnknownDeviceFlood: 5,000 uplinks of distinct made-up
// dev_euis, mixed with 500 uplinks of 50 registered devices, on a
// network-server feed that accepts unknown devices, into an InfluxDB that
// takes at most 1,000 values per tag. The guard writes 800 unknown devices
// (devices.unknown_max_series) and dead-letters the rest
// (unknown_device_limit), so every registered uplink lands; health tracks
// the 50 registered devices and 300 unknown ones (devices.max_unknown),
// the unknown-device list 300, the evictions counted in /metrics; the
// daemon's memory stays under 200 MB. After SIGTERM and a restart, the
// unknown-device list (at its cap), health and the guard's admitted set
// are back: a new unknown device is still refused.
func TestFaultUnknownDeviceFlood(t *testing.T) {
	t.Parallel()
	const (
		registered = 50
		regMsgs    = 500
		n          = 5000
		maxUnknown = 300
		maxSeries  = 800
	)
	r := newStateRig(t, 1616, registered, testserver.MaxValuesPerTag(1000))
	cfgPath, api := r.stateConfig(fmt.Sprintf(", max_unknown: %d, unknown_max_series: %d, unknown_series_per_minute: 100000, state_save_interval: 1s", maxUnknown, maxSeries), "")
	p := r.startProcess(cfgPath)
	diag := func() string { return "log:\n" + r.logTail() }
	waitFor(t, time.Minute, "the API answers", func() bool { return scrape(api) != nil }, diag)

	regStream := r.stream(regMsgs)
	fl := newFlood(t, r.fleet.Next())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- publishReliably(ctx, r.mq.URL(), "state-registered", regStream, 0, nil) }()
	if err := publishReliably(ctx, r.mq.URL(), "state-flood", fl.messages(0, n), 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	most := awaitHandled(t, p, api, regMsgs+n, 3*time.Minute, diag)
	awaitUplinks(t, r.db, regMsgs+maxSeries, 2*time.Minute, diag)
	if missing := missingOf(t, r.db, regStream); len(missing) > 0 {
		t.Fatalf("%d of %d registered uplinks missing from InfluxDB, e.g. %v\n%s", len(missing), regMsgs, firstInts(missing), diag())
	}
	reasons := map[gateway.Reason]int{}
	waitFor(t, time.Minute, "every refused uplink dead-lettered", func() bool { return len(r.deadLetters()) >= n-maxSeries }, diag)
	for _, dl := range r.deadLetters() {
		reasons[dl.Reason]++
	}
	if reasons[gateway.ReasonUnknownDeviceLimit] != n-maxSeries || len(reasons) != 1 {
		t.Fatalf("dead letters by reason %v, want %d of %s only", reasons, n-maxSeries, gateway.ReasonUnknownDeviceLimit)
	}

	m := scrape(api)
	for k, want := range map[string]float64{
		`sensorgate_state_entries{table="health"}`:                                  registered + maxUnknown,
		`sensorgate_state_evictions_total{table="health"}`:                          maxSeries - maxUnknown,
		`sensorgate_state_entries{table="unknown_devices"}`:                         maxUnknown,
		`sensorgate_state_evictions_total{table="unknown_devices"}`:                 n - maxUnknown,
		`sensorgate_state_entries{table="unknown_series"}`:                          maxSeries,
		`sensorgate_devices{state="unknown"}`:                                       maxUnknown,
		`sensorgate_dead_letters_total{reason="unknown_device_limit",source="cs4"}`: n - maxSeries,
	} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	_, peak := memory(t, p.cmd.Process.Pid)
	if peak > 200<<20 {
		t.Errorf("the daemon's resident set peaked at %d MB, over 200 MB", peak>>20)
	}

	var before healthList
	apiGet(t, api, "/api/v1/device-health", &before)
	if before.Count != registered+maxUnknown {
		t.Fatalf("device-health lists %d devices, want %d", before.Count, registered+maxUnknown)
	}
	if err := p.terminate(); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, diag())
	}
	for _, msg := range []string{"device health not saved completely", "unknown devices not saved completely", "admitted unregistered devices not saved completely"} {
		if lines := r.logLines(msg); len(lines) > 0 {
			t.Errorf("at shutdown: %s: %v", msg, lines[0])
		}
	}

	p.start()
	waitFor(t, time.Minute, "the API answers after the restart", func() bool { return scrape(api) != nil }, diag)
	var unknown unknownList
	apiGet(t, api, "/api/v1/unknown-devices", &unknown)
	if unknown.Count != maxUnknown {
		t.Errorf("after the restart %d unknown devices are listed, want %d", unknown.Count, maxUnknown)
	}
	var after healthList
	apiGet(t, api, "/api/v1/device-health", &after)
	was := map[devices.EUI]devices.DeviceHealth{}
	for _, h := range before.Devices {
		was[h.DevEUI] = h
	}
	kept := 0
	for _, h := range after.Devices {
		if b, ok := was[h.DevEUI]; ok && b.LastSeen.Equal(h.LastSeen) && b.Uplinks24h == h.Uplinks24h && b.Interval == h.Interval {
			kept++
		}
	}
	if after.Count != before.Count || kept != before.Count {
		t.Errorf("after the restart health holds %d devices, %d of them as before; want all %d", after.Count, kept, before.Count)
	}
	// The guard's admitted set came back too: a new unknown device is
	// refused, one admitted before is still written.
	late := []simulate.Message{fl.message(n + 1)}
	if err := publishReliably(ctx, r.mq.URL(), "state-flood", late, 0, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the new unknown device dead-lettered", func() bool { return len(r.deadLetters()) == n-maxSeries+1 }, diag)
	if dls := r.deadLetters(); dls[len(dls)-1].Reason != gateway.ReasonUnknownDeviceLimit || dls[len(dls)-1].DevEUI != fl.eui(n+1).String() {
		t.Errorf("the new unknown device after the restart: %+v", dls[len(dls)-1])
	}
	t.Logf("%d unknown devices flooded: %d written, %d dead letters; health %d devices, unknown list %d; resident set peak %d MB (sampled max %d MB)",
		n, maxSeries, reasons[gateway.ReasonUnknownDeviceLimit], after.Count, unknown.Count, peak>>20, most>>20)
}

// BenchmarkFloodMillion measures the daemon's memory under a flood of
// 1,000,000 uplinks with distinct dev_euis, published at QoS 0 through a
// real Mosquitto, with the default limits (run with -benchtime=1x; it
// takes about a minute). The state directory is on /dev/shm: each of
// the ~999,000 refused uplinks is a dead letter, fsynced one at a time,
// and on a disk that alone takes minutes. The spool stays on disk.
// Reported: peak resident set (MB), uplinks the daemon took, seconds.
func BenchmarkFloodMillion(b *testing.B) {
	const n = 1000000
	for range b.N {
		r := newStateRig(b, 1717, 50)
		shm, err := os.MkdirTemp("/dev/shm", "sensorgate-flood-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(shm) })
		cfgPath, api := r.stateConfig("", filepath.Join(shm, "state"))
		p := r.startProcess(cfgPath)
		diag := func() string { return "log:\n" + r.logTail() }
		deadline := time.Now().Add(time.Minute)
		for scrape(api) == nil {
			if time.Now().After(deadline) {
				b.Fatalf("the API did not answer\n%s", diag())
			}
			time.Sleep(50 * time.Millisecond)
		}
		fl := newFlood(b, r.fleet.Next())
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		if err := publishQoS0(ctx, r.mq.URL(), "flood-million", n, fl.message); err != nil {
			b.Fatal(err)
		}
		published := time.Since(start)
		// QoS 0: the broker may drop what a slow subscriber does not
		// take, so the count settles below n.
		var most int64
		var took float64
		stable := time.Now()
		for time.Since(stable) < 3*time.Second && took < n {
			rss, _ := memory(b, p.cmd.Process.Pid)
			most = max(most, rss)
			if got := scrape(api)[`sensorgate_pipeline_events_total{event="uplinks"}`]; got != took {
				took, stable = got, time.Now()
			}
			time.Sleep(100 * time.Millisecond)
		}
		elapsed := time.Since(start)
		cancel()
		_, peak := memory(b, p.cmd.Process.Pid)
		m := scrape(api)
		b.ReportMetric(float64(peak>>20), "peak-MB")
		b.ReportMetric(float64(most>>20), "sampled-MB")
		b.ReportMetric(took, "uplinks")
		b.ReportMetric(elapsed.Seconds(), "s")
		b.Logf("published %d in %s; daemon took %.0f in %s; peak RSS %d MB; health %v (evicted %v), unknown list %v (evicted %v), dead letters unknown_device_limit %v",
			n, published.Round(time.Millisecond), took, elapsed.Round(time.Millisecond), peak>>20,
			m[`sensorgate_state_entries{table="health"}`], m[`sensorgate_state_evictions_total{table="health"}`],
			m[`sensorgate_state_entries{table="unknown_devices"}`], m[`sensorgate_state_evictions_total{table="unknown_devices"}`],
			m[`sensorgate_dead_letters_total{reason="unknown_device_limit",source="cs4"}`])
		if err := p.terminate(); err != nil {
			b.Fatalf("SIGTERM: %v\n%s", err, diag())
		}
	}
}

// floodN is how many uplinks BenchmarkFloodMillionDirect hands over
// (fewer for a quick profile).
var floodN = flag.Int("flood-n", 1000000, "uplinks of BenchmarkFloodMillionDirect")

// BenchmarkFloodMillionDirect is BenchmarkFloodMillion with the broker
// left out: 1,000,000 ChirpStack messages of distinct dev_euis are parsed
// by the source's parser and handed to the running daemon's pipeline by
// four workers, as the MQTT source's workers do. Through Mosquitto on two
// shared cores the publisher alone needs minutes, and at QoS 0 the broker
// drops what the subscriber does not take in time; this feeds every one.
// The daemon runs in the benchmark's process, so the resident set is the
// process's (run it alone, -run '^$', -benchtime=1x). Reported: peak
// resident set (MB), uplinks handled, seconds.
func BenchmarkFloodMillionDirect(b *testing.B) {
	const workers = 4
	n := *floodN
	for range b.N {
		r := newStateRig(b, 1818, 50)
		shm, err := os.MkdirTemp("/dev/shm", "sensorgate-flood-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(shm) })
		cfgPath, api := r.stateConfig("", filepath.Join(shm, "state"))
		d := r.runInProcess(cfgPath)
		cfg, err := config.Load(cfgPath)
		if err != nil {
			b.Fatal(err)
		}
		parser, err := mqtt.NewParser(*cfg.Sources[0].MQTT, time.Now)
		if err != nil {
			b.Fatal(err)
		}
		fl := newFlood(b, r.fleet.Next())
		ctx := context.Background()
		start := time.Now()
		var wg sync.WaitGroup
		var most atomic.Int64
		done := make(chan struct{})
		go func() {
			for {
				select {
				case <-done:
					return
				case <-time.After(100 * time.Millisecond):
					rss, _ := memory(b, os.Getpid())
					if rss > most.Load() {
						most.Store(rss)
					}
				}
			}
		}()
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += workers {
					m := fl.message(i)
					up, err := parser.Parse(m.Topic, m.Payload)
					if err == nil {
						err = d.pipeline.Handle(ctx, up)
					}
					if err != nil {
						errs <- fmt.Errorf("uplink %d: %w", i, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(done)
		elapsed := time.Since(start)
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		_, peak := memory(b, os.Getpid())
		m := scrape(api)
		b.ReportMetric(float64(peak>>20), "peak-MB")
		b.ReportMetric(float64(most.Load()>>20), "sampled-MB")
		b.ReportMetric(float64(n), "uplinks")
		b.ReportMetric(elapsed.Seconds(), "s")
		b.Logf("%d uplinks of distinct dev_euis handled in %s; peak RSS %d MB (sampled %d MB); health %v (evicted %v), unknown list %v (evicted %v), unknown series %v, dead letters unknown_device_limit %v",
			n, elapsed.Round(time.Millisecond), peak>>20, most.Load()>>20,
			m[`sensorgate_state_entries{table="health"}`], m[`sensorgate_state_evictions_total{table="health"}`],
			m[`sensorgate_state_entries{table="unknown_devices"}`], m[`sensorgate_state_evictions_total{table="unknown_devices"}`],
			m[`sensorgate_state_entries{table="unknown_series"}`],
			m[`sensorgate_dead_letters_total{reason="unknown_device_limit",source="cs4"}`])
	}
}
