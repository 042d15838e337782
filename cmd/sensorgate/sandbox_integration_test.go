package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/gateway"
)

// hostileModels are the codecs of testdata/codecs/hostile that must cost
// their uplinks dead letters (regex-plain.js, the control, decodes).
var hostileModels = []string{
	"regex-lookahead", "regex-backref", "array-fill", "repeat",
	"recursion", "try-finally-loop", "huge-output", "getter-loop",
}

// TestHostileCodecsDaemon (issue 15, point 2): sensorgate as a process,
// with real Mosquitto and InfluxDB, where eight devices decode with the
// hostile codecs while six others, decoded by a JavaScript Cayenne LPP
// codec through the same workers, keep publishing. Every hostile uplink
// becomes a decode_error dead letter; the other devices' points keep
// coming (their messages carry no time, so each point's time is when the
// daemon took it, and a stall would be a gap); the daemon's process tree
// stays under 150 MB resident; /readyz stays ready and reports the
// trouble; SIGTERM stops the daemon within its drain timeout; and after a
// restart, with the unacknowledged and newly queued hostile messages
// redelivered, all of it holds again.
func TestHostileCodecsDaemon(t *testing.T) {
	const (
		good     = 6
		tick     = 50 * time.Millisecond // a good message every other tick, a hostile one every fourth
		phase    = 5 * time.Second
		maxGap   = 2 * time.Second
		maxRSS   = 150 << 20
		drainMax = 10 * time.Second // Run's drain deadline
	)
	r := newFaultRig(t, 1505, good+len(hostileModels))
	scripts := filepath.Join(r.dir, "codecs")
	if err := os.MkdirAll(scripts, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join("..", "..", "testdata", "codecs", "bench", "cayenne-lpp.js"), filepath.Join(scripts, "cayenne-lpp.js"))
	hostile := map[string]string{} // dev_eui → model
	for i, m := range hostileModels {
		copyFile(t, filepath.Join("..", "..", "testdata", "codecs", "hostile", m+".js"), filepath.Join(scripts, m+".js"))
		r.devs[good+i].Model = m
		hostile[r.devs[good+i].EUI.String()] = m
	}
	cfgPath := r.writeConfig(rigConfig{extra: fmt.Sprintf("decoders: {scripts: %q, workers: 2}", scripts)})
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + cfg.HTTP.Listen

	// One template message per device, from the simulated fleet.
	tmpl := map[string]map[string]any{}
	for len(tmpl) < len(r.devs) {
		m := r.fleet.Next()
		var msg map[string]any
		if err := json.Unmarshal(m.Payload, &msg); err != nil {
			t.Fatal(err)
		}
		tmpl[m.DevEUI.String()] = msg
	}
	var goodEUIs, hostileEUIs []string
	for _, d := range r.devs {
		if _, ok := hostile[d.EUI.String()]; ok {
			hostileEUIs = append(hostileEUIs, d.EUI.String())
		} else {
			goodEUIs = append(goodEUIs, d.EUI.String())
		}
	}
	pub := newStampedPublisher(t, r.mq.URL(), tmpl)

	var procTree rssSampler
	d := r.startProcess(cfgPath)
	procTree.start(d.cmd.Process.Pid)
	defer procTree.stop()
	awaitReady(t, base, r.logTail)

	// Phase 1: both kinds flow for a while.
	start := time.Now()
	pub.run(t, goodEUIs, hostileEUIs, tick, phase)
	end1 := time.Now()
	readyz := getJSON(t, base+"/readyz")
	metricsText := getText(t, base+"/metrics")
	awaitGoodUplinks(t, r, goodEUIs, pub.goodSent(), r.logTail)

	stopAt := time.Now()
	if err := d.terminate(); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, r.logTail())
	}
	if took := time.Since(stopAt); took > drainMax {
		t.Errorf("SIGTERM to exit took %v, more than the drain timeout %v", took, drainMax)
	} else {
		t.Logf("SIGTERM to exit: %v", took)
	}
	procTree.pause()

	if readyz.status != http.StatusOK || !strings.HasPrefix(readyz.checks["codec_limits"], "degraded:") {
		t.Errorf("/readyz answered %d %v, want 200 with codec_limits degraded", readyz.status, readyz.checks)
	}
	for _, reason := range []string{"timeout", "memory"} {
		if v := metricValue(metricsText, fmt.Sprintf(`sensorgate_codec_workers_killed_total{reason=%q}`, reason)); v < 1 {
			t.Errorf("sensorgate_codec_workers_killed_total{reason=%q} = %v, want kills; kills logged: %v", reason, v, r.logLines("codec worker killed; a new one takes its place"))
		}
	}
	checkGaps(t, r, pub, goodEUIs, start, end1, tick, maxGap)

	// While it is down, more hostile messages queue in its session.
	pub.run(t, nil, hostileEUIs, tick, time.Second)

	// Phase 2: restarted, the broker redelivers them; good devices go on.
	d.start()
	procTree.resume(d.cmd.Process.Pid)
	awaitReady(t, base, r.logTail)
	start2 := time.Now()
	pub.run(t, goodEUIs, hostileEUIs, tick, phase)
	end2 := time.Now()
	awaitGoodUplinks(t, r, goodEUIs, pub.goodSent(), func() string {
		var bad []string
		for _, dl := range r.deadLetters() {
			if hostile[dl.DevEUI] == "" {
				bad = append(bad, dl.DevEUI+": "+dl.Detail)
			}
		}
		return fmt.Sprintf("good devices' dead letters: %d %v\n%s", len(bad), first(bad), r.logTail())
	})
	awaitHostileLetters(t, r, pub.hostileSent(), hostile)
	if !d.running() {
		t.Fatalf("the daemon exited during phase 2\n%s", r.logTail())
	}
	stopAt = time.Now()
	if err := d.terminate(); err != nil {
		t.Fatalf("second SIGTERM: %v\n%s", err, r.logTail())
	}
	if took := time.Since(stopAt); took > drainMax {
		t.Errorf("second SIGTERM to exit took %v, more than the drain timeout %v", took, drainMax)
	} else {
		t.Logf("second SIGTERM to exit: %v", took)
	}
	procTree.stop()
	checkGaps(t, r, pub, goodEUIs, start2, end2, tick, maxGap)

	if peak := procTree.peak(); peak >= maxRSS {
		t.Errorf("the daemon's process tree peaked at %d MB resident (PSS; %s), want under %d MB", peak>>20, procTree.peakParts(), maxRSS>>20)
	} else {
		t.Logf("process tree peak %d MB resident (PSS; %s; %d samples)", peak>>20, procTree.peakParts(), procTree.samples())
	}
	// Until a codec has shown what it does (two killed workers), its
	// first uplinks queue for workers like any codec's; after that each
	// of its uplinks is an error within twice worker_timeout.
	const warmup = 2 * time.Second
	latencies, worst := hostileLatencies(t, r, hostile, [][2]time.Time{{start.Add(warmup), end1}, {start2.Add(warmup), end2}})
	t.Logf("hostile uplink to dead letter, after the first %v: %s", warmup, latencies)
	if worst > time.Second {
		t.Errorf("a hostile uplink published while the daemon ran took %v to become a dead letter, want at most 1s", worst)
	}
	all, worstAll := hostileLatencies(t, r, hostile, [][2]time.Time{{start, end1}, {start2, end2}})
	t.Logf("hostile uplink to dead letter, all: %s", all)
	if worstAll > maxGap {
		t.Errorf("a hostile uplink published while the daemon ran took %v to become a dead letter, want under %v even while codecs are found out", worstAll, maxGap)
	}
}

// copyFile copies a test codec into place.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// stampedPublisher publishes each device's template message again and
// again: good devices' without any time, so the daemon stamps each with
// the time it takes it; hostile devices' with the wall time of
// publishing, so a dead letter's delay can be measured.
type stampedPublisher struct {
	c       paho.Client
	tmpl    map[string]map[string]any
	fcnt    int
	mu      sync.Mutex
	good    int
	hostile map[string]time.Time // "eui@fcnt" → published at
	goodAt  map[int]time.Time    // fcnt → published at
}

func newStampedPublisher(t *testing.T, broker string, tmpl map[string]map[string]any) *stampedPublisher {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(broker).SetClientID("hostile-publisher").SetCleanSession(false).
		SetConnectTimeout(5 * time.Second).SetWriteTimeout(5 * time.Second).SetOrderMatters(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher: connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return &stampedPublisher{c: c, tmpl: tmpl, hostile: map[string]time.Time{}, goodAt: map[int]time.Time{}}
}

// run publishes for d: on even ticks the next good device's message, on
// every fourth tick the next hostile device's (each hostile device every
// 1.6 s at 50 ms ticks); either list may be empty.
func (p *stampedPublisher) run(t *testing.T, good, hostile []string, tick, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	var toks []paho.Token
	gi, hi := 0, 0
	for i := 0; time.Now().Before(deadline); i++ {
		if i%2 == 0 && len(good) > 0 {
			toks = append(toks, p.publish(t, good[gi%len(good)], false))
			gi++
		} else if i%4 == 1 && len(hostile) > 0 {
			toks = append(toks, p.publish(t, hostile[hi%len(hostile)], true))
			hi++
		}
		time.Sleep(tick)
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish not acknowledged: %v", tok.Error())
		}
	}
}

func (p *stampedPublisher) publish(t *testing.T, eui string, stamped bool) paho.Token {
	t.Helper()
	msg := map[string]any{}
	for k, v := range p.tmpl[eui] {
		msg[k] = v
	}
	p.fcnt++
	msg["fCnt"] = p.fcnt
	delete(msg, "rxInfo") // gateways' times would stand in for the uplink's
	delete(msg, "time")
	now := time.Now().UTC()
	if stamped {
		msg["time"] = now.Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	info := msg["deviceInfo"].(map[string]any)
	p.mu.Lock()
	if stamped {
		p.hostile[eui+"@"+strconv.Itoa(p.fcnt)] = now
	} else {
		p.good++
		p.goodAt[p.fcnt] = now
	}
	p.mu.Unlock()
	topic := fmt.Sprintf("application/%s/device/%s/event/up", info["applicationId"], eui)
	return p.c.Publish(topic, 1, false, b)
}

func (p *stampedPublisher) goodSent() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.good
}

func (p *stampedPublisher) goodPublished(fcnt int) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.goodAt[fcnt]
	return t, ok
}

func (p *stampedPublisher) hostileSent() map[string]time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]time.Time, len(p.hostile))
	for k, v := range p.hostile {
		out[k] = v
	}
	return out
}

// goodPoint is a good device's uplink point: when the daemon took it,
// and its frame counter (which names the message published).
type goodPoint struct {
	at   time.Time
	fcnt int
}

// goodUplinks are the good devices' uplink points, in time order.
func goodUplinks(t *testing.T, r *faultRig, euis []string) []goodPoint {
	t.Helper()
	want := map[string]bool{}
	for _, e := range euis {
		want[e] = true
	}
	var out []goodPoint
	for _, row := range rowsOf(r.db.Query(t, `SELECT "f_cnt", "dev_eui" FROM "uplink"`)) {
		if want[row.str("dev_eui")] {
			out = append(out, goodPoint{row.time, int(row.float("f_cnt"))})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

// awaitGoodUplinks waits until InfluxDB holds at least n good uplinks
// (each good message is one point: its time is when the daemon took it).
func awaitGoodUplinks(t *testing.T, r *faultRig, euis []string, n int, diag func() string) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("%d good uplinks in InfluxDB", n), func() bool {
		return len(goodUplinks(t, r, euis)) >= n
	}, diag)
}

// checkGaps fails when the good devices' points of messages published
// between from and to leave a gap over max that the daemon caused: a gap
// between two points counts less the time between the two messages'
// publications beyond one tick, since a publisher that stalls (the test
// process shares the cores) leaves the daemon nothing to write. A message
// the daemon takes late shows as a gap before its point.
func checkGaps(t *testing.T, r *faultRig, pub *stampedPublisher, euis []string, from, to time.Time, tick, limit time.Duration) {
	t.Helper()
	var in []goodPoint
	var pubs []time.Time
	for _, gp := range goodUplinks(t, r, euis) {
		at, ok := pub.goodPublished(gp.fcnt)
		if ok && !at.Before(from) && !at.After(to) {
			in = append(in, gp)
			pubs = append(pubs, at)
		}
	}
	if len(in) < 2 {
		t.Fatalf("%d good points of messages published between %v and %v", len(in), from, to)
	}
	var worst, raw time.Duration
	var at time.Time
	for i := 1; i < len(in); i++ {
		gap := in[i].at.Sub(in[i-1].at)
		idle := max(0, pubs[i].Sub(pubs[i-1])-tick) // the publisher's own pause
		raw = max(raw, gap)
		if g := gap - idle; g > worst {
			worst, at = g, in[i-1].at
		}
	}
	if worst > limit {
		t.Errorf("good devices' points stopped for %v (the daemon's share) after %v, in the phase %v–%v; want gaps under %v", worst, at.Format(time.RFC3339Nano), from.Format(time.TimeOnly), to.Format(time.TimeOnly), limit)
	} else {
		t.Logf("good points %d, longest gap %v (%v with the publisher's own pauses)", len(in), worst, raw)
	}
}

// awaitHostileLetters waits until every hostile message published is a
// decode_error dead letter, and checks that nothing else is.
func awaitHostileLetters(t *testing.T, r *faultRig, sent map[string]time.Time, hostile map[string]string) {
	t.Helper()
	var dls []gateway.DeadLetter
	waitFor(t, 30*time.Second, fmt.Sprintf("%d hostile uplinks dead-lettered", len(sent)), func() bool {
		dls = r.deadLetters()
		return len(letterKeys(t, dls)) >= len(sent)
	}, r.logTail)
	keys := letterKeys(t, dls)
	for k := range sent {
		if _, ok := keys[k]; !ok {
			t.Errorf("hostile uplink %s is not a dead letter", k)
		}
	}
	for _, dl := range dls {
		if dl.Reason != gateway.ReasonDecode || hostile[dl.DevEUI] == "" {
			t.Errorf("dead letter %s of device %s (model %q): %s", dl.Reason, dl.DevEUI, hostile[dl.DevEUI], dl.Detail)
		}
	}
}

// letterKeys maps each dead letter's "eui@fcnt" to the letter.
func letterKeys(t *testing.T, dls []gateway.DeadLetter) map[string]gateway.DeadLetter {
	t.Helper()
	out := map[string]gateway.DeadLetter{}
	for _, dl := range dls {
		var m struct {
			FCnt int `json:"fCnt"`
		}
		if err := json.Unmarshal(dl.Raw, &m); err != nil {
			t.Fatalf("dead letter raw: %v", err)
		}
		out[dl.DevEUI+"@"+strconv.Itoa(m.FCnt)] = dl
	}
	return out
}

// hostileLatencies summarises, per hostile model, the time from a
// message's publication to its dead letter, for uplinks published while
// the daemon ran (windows; not those queued while it was down), and
// returns the longest.
func hostileLatencies(t *testing.T, r *faultRig, hostile map[string]string, windows [][2]time.Time) (string, time.Duration) {
	t.Helper()
	per := map[string][]time.Duration{}
	var worst time.Duration
	for _, dl := range r.deadLetters() {
		var m struct {
			Time time.Time `json:"time"`
		}
		if json.Unmarshal(dl.Raw, &m) != nil || m.Time.IsZero() {
			continue
		}
		in := false
		for _, w := range windows {
			in = in || (!m.Time.Before(w[0]) && !m.Time.After(w[1]))
		}
		if in {
			d := dl.Time.Sub(m.Time)
			if d > time.Second {
				t.Logf("slow: %s published %s dead-lettered %s: %s", hostile[dl.DevEUI], m.Time.Format("15:04:05.000"), dl.Time.Format("15:04:05.000"), dl.Detail)
			}
			per[hostile[dl.DevEUI]] = append(per[hostile[dl.DevEUI]], d)
			worst = max(worst, d)
		}
	}
	var parts []string
	for _, model := range hostileModels {
		ds := per[model]
		if len(ds) == 0 {
			continue
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		parts = append(parts, fmt.Sprintf("%s n=%d median %v max %v", model, len(ds), ds[len(ds)/2].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond)))
	}
	return strings.Join(parts, "; "), worst
}

// awaitReady waits until the daemon answers /readyz with 200 (its broker
// connected), so a phase measures the daemon running, not starting.
func awaitReady(t *testing.T, base string, diag func() string) {
	t.Helper()
	waitFor(t, 30*time.Second, "daemon ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, diag)
}

type readiness struct {
	status int
	checks map[string]string
}

func getJSON(t *testing.T, url string) readiness {
	t.Helper()
	r, err := fetchReadiness(url) // readyz_test.go
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func getText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// metricValue reads one sample of the Prometheus text format (-1: none).
func metricValue(text, series string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// rssSampler samples the resident memory of a process and its children
// (the codec workers) from /proc every 20 ms, and keeps the peak.
// rssSampler follows the resident memory of a process tree: the daemon
// and its codec workers. What the tree costs the machine is the sum of
// the processes' proportional set sizes (PSS): the workers run the
// daemon's binary, and summing their VmRSS would count its shared text
// pages once per process. The VmRSS sum is kept for the log.
type rssSampler struct {
	mu     sync.Mutex
	pid    int
	max    int64     // the largest PSS sum seen
	parts  []procMem // at that peak: the daemon first, then each descendant
	maxRSS int64     // the largest VmRSS sum seen
	n      int
	cancel context.CancelFunc
	done   chan struct{}
}

// procMem is one process's resident memory, in bytes.
type procMem struct{ rss, pss int64 }

func (s *rssSampler) start(pid int) {
	ctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	s.pid, s.cancel, s.done = pid, cancel, make(chan struct{})
	done := s.done
	s.mu.Unlock()
	go func() {
		defer close(done)
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			parts := treeMem(pid, nil)
			var pss, rss int64
			for _, p := range parts {
				pss, rss = pss+p.pss, rss+p.rss
			}
			s.mu.Lock()
			if pss > s.max {
				s.max, s.parts = pss, parts
			}
			s.maxRSS = max(s.maxRSS, rss)
			s.n++
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
		}
	}()
}

func (s *rssSampler) pause() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel = nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (s *rssSampler) resume(pid int) { s.start(pid) }
func (s *rssSampler) stop()          { s.pause() }

// peak is the largest PSS sum of the tree.
func (s *rssSampler) peak() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max
}

// peakParts describes the peak, so a failure says which process grew:
// each process's PSS (VmRSS) in MB, the daemon first, and the largest
// VmRSS sum seen.
func (s *rssSampler) peakParts() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := make([]string, len(s.parts))
	for i, p := range s.parts {
		mb[i] = fmt.Sprintf("%d (%d)", p.pss>>20, p.rss>>20)
	}
	return fmt.Sprintf("PSS (RSS) of each process: %s MB; VmRSS sum at most %d MB", strings.Join(mb, " + "), s.maxRSS>>20)
}

func (s *rssSampler) samples() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// treeMem appends to parts the memory of pid and of its descendants.
func treeMem(pid int, parts []procMem) []procMem {
	parts = append(parts, readProcMem(pid))
	for _, c := range childrenOf(pid) {
		parts = treeMem(c, parts)
	}
	return parts
}

func childrenOf(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// readProcMem reads Rss and Pss from /proc/PID/smaps_rollup; a process
// that is gone, or a zombie, has none.
func readProcMem(pid int) procMem {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return procMem{}
	}
	var m procMem
	for _, line := range strings.Split(string(b), "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "Rss":
			m.rss = kb << 10
		case "Pss":
			m.pss = kb << 10
		}
	}
	return m
}
