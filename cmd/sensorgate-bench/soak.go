package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sensorgate/sensorgate/gateway/deadletter"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// The soak: a steady stream for a long time, from a fleet of which a part
// is decoded by a JavaScript codec, sampled at a fixed interval, to show
// that nothing grows (RSS, goroutines), costs drift (CPU per uplink) or
// lags (the spool's oldest record) and nothing is lost. Usage:
//
//	sensorgate-bench soak [-rate 1000] [-duration 1h] [-devices 10000] [-js-every 4]
//	    [-sample 10s] [-warmup 10m] [-json soak.json] [-out BENCHMARKS.md] [-plot soak.png]

// soakJSModel is the model id the JavaScript quarter of the fleet gets:
// the Cayenne LPP codec copied under that name, so that the other devices
// keep the built-in cayenne-lpp decoder.
const soakJSModel = "cayenne-lpp-js"

// soakEpoch is the time of the soak stream's first uplink; uplink i is at
// soakEpoch + i/rate (plus under a millisecond), so the stream's windows
// of message time are windows of uplinks published.
var soakEpoch = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// soakSettings are one soak's parameters.
type soakSettings struct {
	Rate       float64       // uplinks per second
	Duration   time.Duration // of publishing
	Devices    int
	JSEvery    int    // every JSEvery-th device decoded in JavaScript; 0 for none
	Codec      string // the JavaScript codec file
	CodecTime  time.Duration
	Sample     time.Duration
	Warmup     time.Duration // left out of the growth figures
	Seed       uint64
	JSON       string // the time series, rewritten after every sample
	Sensorgate string
	WorkDir    string
	Keep       bool
	DrainMax   time.Duration // after publishing: how long to wait for InfluxDB to hold everything
	// Profiles, when set, is a directory for CPU profiles of the daemon
	// (ProfileFor long, every ProfileEvery), to compare early and late.
	Profiles     string
	ProfileEvery time.Duration
	ProfileFor   time.Duration
	CommitDelay  string // spool.commit_delay; "" for the daemon's default
}

// soakSample is one point of the time series.
type soakSample struct {
	T          float64 `json:"t_s"`       // since publishing began
	Published  int64   `json:"published"` // uplinks the broker acknowledged so far
	RSSMB      float64 `json:"rss_mb"`    // the daemon's VmRSS
	WorkersMB  float64 `json:"workers_rss_mb"`
	Goroutines int     `json:"goroutines"`
	// CPUPerUplinkUs is the CPU time of the daemon and its codec workers
	// over the last interval per uplink published in it, in µs.
	CPUPerUplinkUs float64 `json:"cpu_us_per_uplink"`
	// DaemonCPUPerUplinkUs is the daemon's share, without the workers.
	DaemonCPUPerUplinkUs float64 `json:"daemon_cpu_us_per_uplink"`
	// OthersCores is the CPU everything else on the machine used over
	// the interval (servers, publisher, other users), in cores: on a
	// shared machine it tells a drift of CPU per uplink caused by
	// contention from one of the daemon's own.
	OthersCores float64 `json:"others_cores"`
	CPUSeconds  float64 `json:"cpu_s"` // since publishing began
	// DrainLagS is the age of the spool's oldest undelivered record: how
	// far delivery to InfluxDB lags behind.
	DrainLagS float64 `json:"drain_lag_s"`
	Pending   int64   `json:"spool_pending"`
	// Lost is the uplinks of the windows checked so far (published at
	// least one interval ago) that InfluxDB does not hold.
	Lost int64 `json:"lost"`

	// What tells a cost that grows with time from one that follows how
	// the daemon's work is batched, over the interval: the daemon's CPU
	// in user and kernel mode, the uplinks per spool fsync (group
	// commit) and per InfluxDB write request, how often its threads were
	// put on a CPU and how long they waited runnable, per uplink, and
	// its garbage collections.
	DaemonUserUs      float64 `json:"daemon_user_us_per_uplink"`
	DaemonSysUs       float64 `json:"daemon_sys_us_per_uplink"`
	UplinksPerSync    float64 `json:"uplinks_per_fsync"`
	UplinksPerRequest float64 `json:"uplinks_per_request"`
	SlicesPerUplink   float64 `json:"slices_per_uplink"`
	RunqWaitUs        float64 `json:"runq_wait_us_per_uplink"`
	GCs               int     `json:"gc_cycles"`
}

// SoakResult is a soak's JSON file: settings, machine, series, outcome.
type SoakResult struct {
	Started     time.Time    `json:"started"`
	Machine     Machine      `json:"machine"`
	Rate        float64      `json:"rate"`
	DurationS   float64      `json:"duration_s"`
	Devices     int          `json:"devices"`
	JSEvery     int          `json:"js_every,omitempty"`
	SampleS     float64      `json:"sample_s"`
	WarmupS     float64      `json:"warmup_s"`
	Samples     []soakSample `json:"samples"`
	Published   int64        `json:"published"`
	Delivered   int          `json:"delivered"` // exact count of uplink points in InfluxDB at the end
	Lost        int          `json:"lost"`
	DeadLetters int          `json:"dead_letters"`
	Summary     *soakSummary `json:"summary,omitempty"`
	Err         string       `json:"error,omitempty"`
}

func soakCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sensorgate-bench soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ss := &soakSettings{}
	fs.Float64Var(&ss.Rate, "rate", 1000, "uplinks per second, paced")
	fs.DurationVar(&ss.Duration, "duration", time.Hour, "how long to publish")
	fs.IntVar(&ss.Devices, "devices", 10000, "simulated devices, imported into the registry")
	fs.IntVar(&ss.JSEvery, "js-every", 4, "every N-th device is decoded by the JavaScript codec (-codec); 0 for none")
	fs.StringVar(&ss.Codec, "codec", "testdata/codecs/bench/cayenne-lpp.js", "the JavaScript codec for those devices (Cayenne LPP, as the fleet sends)")
	fs.DurationVar(&ss.CodecTime, "codec-timeout", time.Second, "decoders.timeout: on a shared machine the default 100ms turns stalls into dead letters")
	fs.DurationVar(&ss.Sample, "sample", 10*time.Second, "sampling interval")
	fs.DurationVar(&ss.Warmup, "warmup", 10*time.Minute, "left out of the growth figures")
	fs.Uint64Var(&ss.Seed, "seed", 99, "stream seed")
	fs.StringVar(&ss.JSON, "json", "soak.json", "the time series (JSON), rewritten after every sample")
	out := fs.String("out", "", "append the summary to this Markdown file")
	plot := fs.String("plot", "", "also draw the series into this PNG (as the plot subcommand does)")
	fs.StringVar(&ss.Sensorgate, "sensorgate", "", "sensorgate binary (default: go build ./cmd/sensorgate into the work dir)")
	fs.StringVar(&ss.WorkDir, "workdir", "", "where the run keeps broker, database and spool files (default: a new directory in $TMPDIR)")
	fs.BoolVar(&ss.Keep, "keep", false, "keep the run's directory")
	fs.DurationVar(&ss.DrainMax, "drain-timeout", 5*time.Minute, "after publishing, the longest wait for InfluxDB to hold every uplink")
	fs.StringVar(&ss.CommitDelay, "commit-delay", "", "spool.commit_delay for the daemon (default: the daemon's)")
	fs.StringVar(&ss.Profiles, "profiles", "", "write CPU profiles of the daemon into this directory (SENSORGATE_PPROF)")
	fs.DurationVar(&ss.ProfileEvery, "profile-every", 5*time.Minute, "with -profiles: start a profile this often")
	fs.DurationVar(&ss.ProfileFor, "profile-for", 30*time.Second, "with -profiles: each profile's length")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if ss.Rate <= 0 || ss.Duration <= 0 || ss.Devices <= 0 || ss.Sample <= 0 || ss.JSEvery < 0 {
		return errors.New("-rate, -duration, -devices and -sample must be positive, -js-every not negative")
	}
	if ss.JSEvery > 0 {
		if _, err := os.Stat(ss.Codec); err != nil {
			return fmt.Errorf("-codec: %w (run from the repository's root, or give its path)", err)
		}
	}
	cleanup, err := prepareWork(ctx, &ss.WorkDir, &ss.Sensorgate, ss.Keep, "sensorgate-soak-", stderr)
	if err != nil {
		return err
	}
	defer cleanup()
	res := &SoakResult{Started: time.Now().UTC(), Machine: describeMachine(ss.Sensorgate, ss.WorkDir),
		Rate: ss.Rate, DurationS: ss.Duration.Seconds(), Devices: ss.Devices, JSEvery: ss.JSEvery,
		SampleS: ss.Sample.Seconds(), WarmupS: ss.Warmup.Seconds()}
	h, err := newHarness(filepath.Join(ss.WorkDir, "soak"))
	if err != nil {
		return err
	}
	runErr := h.do(func() error { return ss.run(ctx, h, res, stderr) })
	if err := h.close(ss.Keep); err != nil {
		fmt.Fprintln(stderr, "warning:", err)
	}
	if runErr != nil {
		res.Err = runErr.Error()
	}
	res.Summary = summarize(res.Samples, ss.Warmup.Seconds())
	if err := writeJSONFile(ss.JSON, res); err != nil {
		return err
	}
	md := res.Markdown()
	fmt.Fprint(stdout, md)
	if *out != "" {
		if err := appendFile(*out, "\n"+md); err != nil {
			return err
		}
	}
	if *plot != "" {
		if err := plotFile(res, *plot); err != nil {
			return err
		}
	}
	if runErr != nil {
		return runErr
	}
	if res.Lost > 0 {
		return fmt.Errorf("soak: %d of %d uplinks are not in InfluxDB", res.Lost, res.Published)
	}
	return nil
}

// run is the soak: servers, fleet, daemon, paced stream, samples, final
// count. It runs on the harness's goroutine (queries fail through it).
func (ss *soakSettings) run(ctx context.Context, h *harness, res *SoakResult, log io.Writer) error {
	mq := testserver.StartMosquitto(h)
	db := testserver.StartInfluxDB(h)
	fleet, err := simulate.NewFleet(simulate.Options{Format: simulate.ChirpStackV4, Devices: ss.Devices, Seed: ss.Seed,
		Start: soakEpoch, Interval: time.Duration(float64(time.Second) / ss.Rate)})
	if err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	topic, clientID := topicFilter(simulate.ChirpStackV4), "bench-soak"
	if err := presubscribe(ctx, mq.URL(), clientID, topic); err != nil {
		return err
	}
	s := &settings{Format: simulate.ChirpStackV4, Registry: registrySQLite, Sensorgate: ss.Sensorgate, CommitDelay: ss.CommitDelay}
	if ss.JSEvery > 0 {
		s.Scripts = filepath.Join(h.dir, "codecs")
		s.JSEvery, s.JSModel, s.CodecTime = ss.JSEvery, soakJSModel, ss.CodecTime
		code, err := os.ReadFile(ss.Codec)
		if err != nil {
			return fmt.Errorf("soak: codec: %w", err)
		}
		if err := os.MkdirAll(s.Scripts, 0o755); err != nil {
			return fmt.Errorf("soak: codec: %w", err)
		}
		if err := os.WriteFile(filepath.Join(s.Scripts, soakJSModel+".js"), code, 0o644); err != nil {
			return fmt.Errorf("soak: codec: %w", err)
		}
	}
	cfg, err := s.writeSensorgateConfig(h, s.Sensorgate, mq.URL(), db.URL(), db.Bucket(), clientID, topic, fleet)
	if err != nil {
		return err
	}
	cmd := exec.Command(ss.Sensorgate, "run", "-c", cfg)
	var pprofAddr string
	if ss.Profiles != "" {
		if err := os.MkdirAll(ss.Profiles, 0o755); err != nil {
			return fmt.Errorf("soak: -profiles: %w", err)
		}
		pprofAddr = "127.0.0.1:" + strconv.Itoa(testserver.FreePort(h))
		cmd.Env = append(os.Environ(), "SENSORGATE_PPROF="+pprofAddr)
	}
	p := newConsumerProc(cmd, filepath.Join(h.dir, "sensorgate.log"), false)
	if err := p.start(); err != nil {
		return err
	}
	h.Cleanup(p.stop)
	if err := waitConnected(ctx, mq.Port, p); err != nil {
		return err
	}

	total := int(math.Round(ss.Rate * ss.Duration.Seconds()))
	w := newSoakWindows(ss.Sample)
	pubDone := make(chan error, 1)
	go func() {
		pubDone <- simulate.Publish(ctx, fleet, simulate.PublishOptions{
			Broker: mq.URL(), ClientID: "bench-soak-publisher", QoS: 1, Rate: ss.Rate, Count: total,
			OnPublished: w.published,
		})
	}()
	fmt.Fprintf(log, "soak: %d uplinks at %.0f/s from %d devices (every %d-th in JavaScript), sampled every %s; series in %s\n",
		total, ss.Rate, ss.Devices, ss.JSEvery, ss.Sample, ss.JSON)

	began := time.Now()
	if pprofAddr != "" {
		profCtx, stopProf := context.WithCancel(ctx)
		defer stopProf()
		go ss.profileLoop(profCtx, pprofAddr, began, log)
	}
	cpu0, err := treeCPUSeconds(p.pid())
	if err != nil {
		return err
	}
	lastOwn, err := cpuSeconds(p.pid())
	if err != nil {
		return err
	}
	lastUser, lastSys, lastSched, lastM, err := daemonCounters(ctx, p.pid(), "http://"+s.httpAddr+"/metrics")
	if err != nil {
		return err
	}
	lastCPU, lastPub := cpu0, int64(0)
	lastBusy, err := machineBusySeconds()
	if err != nil {
		return err
	}
	lastAt := time.Now()
	tick := time.NewTicker(ss.Sample)
	defer tick.Stop()
	metricsURL := "http://" + s.httpAddr + "/metrics"
	for publishing := true; publishing; {
		select {
		case err := <-pubDone:
			if err != nil {
				return fmt.Errorf("soak: publish: %w", err)
			}
			publishing = false
			continue // the stub of an interval since the last sample says nothing
		case <-tick.C:
		case <-p.exited:
			return fmt.Errorf("soak: sensorgate exited; see %s", p.logPath)
		case <-ctx.Done():
			return fmt.Errorf("soak: interrupted: %w", ctx.Err())
		}
		cpu, err := treeCPUSeconds(p.pid())
		if err != nil {
			return err
		}
		own, err := cpuSeconds(p.pid())
		if err != nil {
			return err
		}
		busy, err := machineBusySeconds()
		if err != nil {
			return err
		}
		now := time.Now()
		rss, err := rssKiB(p.pid())
		if err != nil {
			return err
		}
		user, sys, sched, m, err := daemonCounters(ctx, p.pid(), metricsURL)
		if err != nil {
			return err
		}
		pub := w.count()
		sm := soakSample{T: time.Since(began).Seconds(), Published: pub, RSSMB: mib(rss), WorkersMB: mib(childrenRSSKiB(p.pid())),
			Goroutines: int(m["go_goroutines"]), CPUSeconds: cpu - cpu0, DrainLagS: m["sensorgate_spool_oldest_age_seconds"],
			Pending: int64(m["sensorgate_spool_pending_records"]), Lost: w.check(h, db, false)}
		if pub > lastPub {
			sm.CPUPerUplinkUs = (cpu - lastCPU) / float64(pub-lastPub) * 1e6
			sm.DaemonCPUPerUplinkUs = (own - lastOwn) / float64(pub-lastPub) * 1e6
		}
		sm.OthersCores = max(0, (busy-lastBusy)-(cpu-lastCPU)) / now.Sub(lastAt).Seconds()
		sm.batching(pub-lastPub, user-lastUser, sys-lastSys, sched, lastSched, m, lastM)
		lastCPU, lastOwn, lastPub, lastBusy, lastAt = cpu, own, pub, busy, now
		lastUser, lastSys, lastSched, lastM = user, sys, sched, m
		res.Samples = append(res.Samples, sm)
		if err := writeJSONFile(ss.JSON, res); err != nil {
			return err
		}
		fmt.Fprintf(log, "  %6.0f s: %d published, RSS %.1f MB (+%.1f MB workers), %d goroutines, %.1f µs CPU/uplink (daemon %.0f user + %.0f sys), %.1f uplinks/fsync, %.0f/request, others %.2f cores, lag %.2f s, lost %d\n",
			sm.T, sm.Published, sm.RSSMB, sm.WorkersMB, sm.Goroutines, sm.CPUPerUplinkUs, sm.DaemonUserUs, sm.DaemonSysUs,
			sm.UplinksPerSync, sm.UplinksPerRequest, sm.OthersCores, sm.DrainLagS, sm.Lost)
	}
	res.Published = w.count()

	// Every window checked, until none lacks an uplink or the wait ends.
	deadline := time.Now().Add(ss.DrainMax)
	for w.check(h, db, true) > 0 && time.Now().Before(deadline) {
		select {
		case <-time.After(time.Second):
		case <-p.exited:
			return fmt.Errorf("soak: sensorgate exited; see %s", p.logPath)
		case <-ctx.Done():
			return fmt.Errorf("soak: interrupted: %w", ctx.Err())
		}
	}
	p.stop()
	res.Delivered = countUplinks(h, db)
	res.Lost = max(0, int(res.Published)-res.Delivered)
	dls, _ := deadletter.ReadAll(filepath.Join(h.dir, "state", deadletter.FileName))
	res.DeadLetters = len(dls)
	return nil
}

// soakWindows counts the uplinks published per window of message time
// (one sampling interval each) and which of them InfluxDB lacks.
type soakWindows struct {
	every time.Duration
	mu    sync.Mutex
	pub   map[int]int // window → uplinks published in it
	// newest is the newest message time published: a window whose end
	// it has passed is complete.
	newest  time.Time
	n       atomic.Int64
	ready   int         // windows below it were complete at the previous check
	checked int         // windows below it were checked at least once
	missing map[int]int // checked windows lacking uplinks → how many
}

func newSoakWindows(every time.Duration) *soakWindows {
	return &soakWindows{every: every, pub: map[int]int{}, missing: map[int]int{}}
}

func (w *soakWindows) window(t time.Time) int { return int(t.Sub(soakEpoch) / w.every) }

// published is the publisher's OnPublished.
func (w *soakWindows) published(m simulate.Message) {
	w.mu.Lock()
	w.pub[w.window(m.Time)]++
	if m.Time.After(w.newest) {
		w.newest = m.Time
	}
	w.mu.Unlock()
	w.n.Add(1)
}

func (w *soakWindows) count() int64 { return w.n.Load() }

// check asks InfluxDB for the windows complete at the previous check
// (so each had a whole interval to be delivered), and again for those
// lacking uplinks; all checks every complete window at once (the end).
// It returns how many uplinks the checked windows lack.
func (w *soakWindows) check(h *harness, db *testserver.InfluxDB, all bool) int64 {
	w.mu.Lock()
	complete := 0
	if !w.newest.IsZero() {
		complete = w.window(w.newest) // windows below it are complete
	}
	if all {
		complete++ // the last one too: publishing has ended
		w.ready = complete
	}
	want := make(map[int]int, len(w.pub))
	for k, v := range w.pub {
		want[k] = v
	}
	w.mu.Unlock()
	var todo []int
	for k := w.checked; k < w.ready; k++ {
		todo = append(todo, k)
	}
	for k := range w.missing {
		todo = append(todo, k)
	}
	for _, k := range todo {
		if want[k] == 0 {
			delete(w.missing, k)
			continue
		}
		from := soakEpoch.Add(time.Duration(k) * w.every)
		got := sumCounts(db.Query(h, fmt.Sprintf(`SELECT count("f_cnt") FROM "uplink" WHERE time >= %d AND time < %d`,
			from.UnixNano(), from.Add(w.every).UnixNano())))
		if got < want[k] {
			w.missing[k] = want[k] - got
		} else {
			delete(w.missing, k)
		}
	}
	w.checked = max(w.checked, w.ready)
	w.ready = complete
	var lost int64
	for _, v := range w.missing {
		lost += int64(v)
	}
	return lost
}

// soakKeep are the labelled series of /metrics the soak reads.
var soakKeep = []string{`sensorgate_influx_write_requests_total{class="2xx"}`}

// daemonCounters reads the daemon's cumulative counters: user and system
// CPU seconds (the daemon alone, not its codec workers), scheduler
// counters and /metrics.
func daemonCounters(ctx context.Context, pid int, metricsURL string) (user, sys float64, sched schedStat, m map[string]float64, err error) {
	u, err := statTicks(pid, 11)
	if err != nil {
		return
	}
	k, err := statTicks(pid, 12)
	if err != nil {
		return
	}
	if sched, err = readSchedStat(pid); err != nil {
		return
	}
	m, err = scrapeMetrics(ctx, metricsURL)
	return float64(u) / userHZ, float64(k) / userHZ, sched, m, err
}

// batching fills the sample's per-interval figures from the counters'
// differences over it; n is the uplinks published in it.
func (sm *soakSample) batching(n int64, user, sys float64, sched, lastSched schedStat, m, lastM map[string]float64) {
	const requests = `sensorgate_influx_write_requests_total{class="2xx"}`
	sm.GCs = int(m["go_gc_duration_seconds_count"] - lastM["go_gc_duration_seconds_count"])
	if n <= 0 {
		return
	}
	per := func(v float64) float64 { return v / float64(n) }
	sm.DaemonUserUs, sm.DaemonSysUs = per(user)*1e6, per(sys)*1e6
	if d := m["sensorgate_spool_syncs_total"] - lastM["sensorgate_spool_syncs_total"]; d > 0 {
		sm.UplinksPerSync = float64(n) / d
	}
	if d := m[requests] - lastM[requests]; d > 0 {
		sm.UplinksPerRequest = float64(n) / d
	}
	sm.SlicesPerUplink = per(float64(sched.Slices - lastSched.Slices))
	sm.RunqWaitUs = per(float64(sched.WaitNs-lastSched.WaitNs)) / 1e3
}

// profileLoop records a CPU profile of the daemon every ProfileEvery,
// named by its start in seconds since publishing began, until ctx ends.
func (ss *soakSettings) profileLoop(ctx context.Context, addr string, began time.Time, log io.Writer) {
	for next := began; ; next = next.Add(ss.ProfileEvery) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		file := filepath.Join(ss.Profiles, fmt.Sprintf("cpu-%05.0f.pprof", time.Since(began).Seconds()))
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(ss.ProfileFor.Seconds()))
		if err := fetch(ctx, url, file, ss.ProfileFor+time.Minute); err != nil && ctx.Err() == nil {
			fmt.Fprintln(log, "soak: profile:", err)
		}
	}
}

// scrapeMetrics reads the unlabelled samples of the daemon's /metrics,
// and the labelled ones of soakKeep.
func scrapeMetrics(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("soak: metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("soak: metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body, soakKeep...)
}

// parseMetrics reads "name value" lines of the Prometheus text format;
// comments and labelled samples are skipped, but for those named in keep
// exactly as they appear (name{labels}).
func parseMetrics(r io.Reader, keep ...string) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.IndexByte(line, '}')
			if j < i || !slices.Contains(keep, line[:j+1]) {
				continue
			}
			if f := strings.Fields(line[j+1:]); len(f) > 0 { // value [timestamp]
				if v, err := strconv.ParseFloat(f[0], 64); err == nil {
					out[line[:j+1]] = v
				}
			}
			continue
		}
		f := strings.Fields(line) // name value [timestamp]
		if len(f) < 2 {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			out[f[0]] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("soak: metrics: %w", err)
	}
	return out, nil
}

// soakSummary is what the series says about growth and drift after the
// warm-up: medians of its first and last windows (ten minutes each, or a
// third of what follows the warm-up when that is shorter).
type soakSummary struct {
	Samples          int     `json:"samples"` // after the warm-up
	WindowS          float64 `json:"window_s"`
	RSSFirstMB       float64 `json:"rss_first_mb"`
	RSSLastMB        float64 `json:"rss_last_mb"`
	RSSPeakMB        float64 `json:"rss_peak_mb"`
	RSSGrowth        float64 `json:"rss_growth"` // last ÷ first − 1
	WorkersFirstMB   float64 `json:"workers_first_mb"`
	WorkersLastMB    float64 `json:"workers_last_mb"`
	WorkersGrowth    float64 `json:"workers_growth"`
	GoroutinesFirst  float64 `json:"goroutines_first"`
	GoroutinesLast   float64 `json:"goroutines_last"`
	GoroutinesGrowth float64 `json:"goroutines_growth"`
	CPUFirstUs       float64 `json:"cpu_first_us"`
	CPULastUs        float64 `json:"cpu_last_us"`
	CPURatio         float64 `json:"cpu_ratio"` // last ÷ first
	OthersFirst      float64 `json:"others_first_cores"`
	OthersLast       float64 `json:"others_last_cores"`
	// The batching figures of the same windows (0 in a series recorded
	// before they were).
	FsyncFirst  float64 `json:"uplinks_per_fsync_first,omitempty"`
	FsyncLast   float64 `json:"uplinks_per_fsync_last,omitempty"`
	SysFirstUs  float64 `json:"daemon_sys_us_first,omitempty"`
	SysLastUs   float64 `json:"daemon_sys_us_last,omitempty"`
	UserFirstUs float64 `json:"daemon_user_us_first,omitempty"`
	UserLastUs  float64 `json:"daemon_user_us_last,omitempty"`
	LagMedianS  float64 `json:"lag_median_s"`
	LagMaxS     float64 `json:"lag_max_s"`
}

// summarize returns nil when fewer than three samples follow the warm-up.
func summarize(samples []soakSample, warmup float64) *soakSummary {
	var after []soakSample
	for _, s := range samples {
		if s.T >= warmup {
			after = append(after, s)
		}
	}
	if len(after) < 3 {
		return nil
	}
	win := min(600, (after[len(after)-1].T-after[0].T)/3)
	var first, last []soakSample
	for _, s := range after {
		if s.T < after[0].T+win || len(first) == 0 {
			first = append(first, s)
		}
		if s.T > after[len(after)-1].T-win {
			last = append(last, s)
		}
	}
	med := func(ss []soakSample, f func(soakSample) float64) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		slices.Sort(v)
		if n := len(v); n%2 == 0 {
			return (v[n/2-1] + v[n/2]) / 2
		}
		return v[len(v)/2]
	}
	growth := func(a, b float64) float64 {
		if a == 0 {
			return 0
		}
		return b/a - 1
	}
	rss := func(s soakSample) float64 { return s.RSSMB }
	wk := func(s soakSample) float64 { return s.WorkersMB }
	gr := func(s soakSample) float64 { return float64(s.Goroutines) }
	cpu := func(s soakSample) float64 { return s.CPUPerUplinkUs }
	lag := func(s soakSample) float64 { return s.DrainLagS }
	sum := &soakSummary{Samples: len(after), WindowS: win,
		RSSFirstMB: med(first, rss), RSSLastMB: med(last, rss),
		WorkersFirstMB: med(first, wk), WorkersLastMB: med(last, wk),
		GoroutinesFirst: med(first, gr), GoroutinesLast: med(last, gr),
		CPUFirstUs: med(first, cpu), CPULastUs: med(last, cpu), LagMedianS: med(after, lag),
		OthersFirst: med(first, func(s soakSample) float64 { return s.OthersCores }),
		OthersLast:  med(last, func(s soakSample) float64 { return s.OthersCores })}
	fsync := func(s soakSample) float64 { return s.UplinksPerSync }
	sys := func(s soakSample) float64 { return s.DaemonSysUs }
	user := func(s soakSample) float64 { return s.DaemonUserUs }
	sum.FsyncFirst, sum.FsyncLast = med(first, fsync), med(last, fsync)
	sum.SysFirstUs, sum.SysLastUs = med(first, sys), med(last, sys)
	sum.UserFirstUs, sum.UserLastUs = med(first, user), med(last, user)
	sum.RSSGrowth = growth(sum.RSSFirstMB, sum.RSSLastMB)
	sum.WorkersGrowth = growth(sum.WorkersFirstMB, sum.WorkersLastMB)
	sum.GoroutinesGrowth = growth(sum.GoroutinesFirst, sum.GoroutinesLast)
	if sum.CPUFirstUs > 0 {
		sum.CPURatio = sum.CPULastUs / sum.CPUFirstUs
	}
	for _, s := range after {
		sum.RSSPeakMB = max(sum.RSSPeakMB, s.RSSMB)
		sum.LagMaxS = max(sum.LagMaxS, s.DrainLagS)
	}
	return sum
}

// Markdown is the soak's section for BENCHMARKS.md.
func (res *SoakResult) Markdown() string {
	var b strings.Builder
	m := res.Machine
	fmt.Fprintf(&b, "## %s — soak, %.0f uplinks/s for %s, %d devices\n\n", res.Started.Format("2006-01-02 15:04 UTC"),
		res.Rate, time.Duration(res.DurationS*float64(time.Second)), res.Devices)
	fmt.Fprintf(&b, "- Machine: %s\n", m.line())
	fmt.Fprintf(&b, "- Servers: Mosquitto %s, InfluxDB %s; files and spool on %s\n", m.Mosquitto, m.InfluxDB, m.WorkFS)
	fmt.Fprintf(&b, "- sensorgate %s, %s; spool fsync=always; ChirpStack v4 stream, seed-deterministic", m.Sensorgate, m.GoVersion)
	if res.JSEvery > 0 {
		fmt.Fprintf(&b, "; every %d-th device (%d of %d) decoded by the JavaScript codec `%s` (testdata/codecs/bench/cayenne-lpp.js), the others by the built-in cayenne-lpp",
			res.JSEvery, (res.Devices+res.JSEvery-1)/res.JSEvery, res.Devices, soakJSModel)
	}
	fmt.Fprintf(&b, "\n- Sampled every %.0f s (%d samples); growth compares the medians of the first and the last window after a warm-up of %s\n\n",
		res.SampleS, len(res.Samples), time.Duration(res.WarmupS*float64(time.Second)))
	if res.Err != "" {
		fmt.Fprintf(&b, "**The soak failed:** %s\n\n", res.Err)
	}
	fmt.Fprintf(&b, "Published %d, in InfluxDB %d, **lost %d**, dead letters %d.\n\n", res.Published, res.Delivered, res.Lost, res.DeadLetters)
	s := res.Summary
	if s == nil {
		b.WriteString("Too short for growth figures (fewer than three samples after the warm-up).\n")
		return b.String()
	}
	pct := func(g float64) string { return fmt.Sprintf("%+.1f %%", 100*g) }
	fmt.Fprintf(&b, "| after warm-up (%d samples, windows of %.0f s) | first window | last window | growth |\n|---|---:|---:|---:|\n", s.Samples, s.WindowS)
	fmt.Fprintf(&b, "| daemon RSS MB (peak %.1f) | %.1f | %.1f | %s |\n", s.RSSPeakMB, s.RSSFirstMB, s.RSSLastMB, pct(s.RSSGrowth))
	if res.JSEvery > 0 {
		fmt.Fprintf(&b, "| codec workers' RSS MB | %.1f | %.1f | %s |\n", s.WorkersFirstMB, s.WorkersLastMB, pct(s.WorkersGrowth))
	}
	fmt.Fprintf(&b, "| goroutines | %.0f | %.0f | %s |\n", s.GoroutinesFirst, s.GoroutinesLast, pct(s.GoroutinesGrowth))
	fmt.Fprintf(&b, "| CPU µs per uplink (daemon + workers) | %.1f | %.1f | ×%.2f |\n", s.CPUFirstUs, s.CPULastUs, s.CPURatio)
	if s.UserFirstUs > 0 || s.UserLastUs > 0 {
		fmt.Fprintf(&b, "| daemon alone, user / system CPU µs per uplink | %.0f / %.0f | %.0f / %.0f | |\n", s.UserFirstUs, s.SysFirstUs, s.UserLastUs, s.SysLastUs)
	}
	if s.FsyncFirst > 0 || s.FsyncLast > 0 {
		fmt.Fprintf(&b, "| uplinks per spool fsync (group commit) | %.1f | %.1f | |\n", s.FsyncFirst, s.FsyncLast)
	}
	if s.OthersFirst > 0 || s.OthersLast > 0 {
		fmt.Fprintf(&b, "| everything else on the machine, cores busy | %.2f | %.2f | |\n", s.OthersFirst, s.OthersLast)
	}
	fmt.Fprintf(&b, "\nDrain lag (age of the spool's oldest undelivered record): median %.2f s, max %.2f s.\n", s.LagMedianS, s.LagMaxS)
	return b.String()
}

// writeJSONFile replaces path with v as indented JSON, through a
// temporary file, so a reader never sees half a file.
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("soak: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("soak: write %s: %w", path, err)
	}
	return nil
}

// appendFile appends text to path, creating it.
func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("append to %s: %w", path, err)
	}
	if _, err := io.WriteString(f, text); err != nil {
		f.Close()
		return fmt.Errorf("append to %s: %w", path, err)
	}
	return f.Close()
}
