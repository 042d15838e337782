package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/deadletter"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// The outage: what a long InfluxDB outage costs and how it ends. Usage:
//
//	sensorgate-bench outage [-n 1000000] [-live-rate 100] [-devices 500] [-out BENCHMARKS.md] [-json outage.json]
//
// sensorgate runs against a fresh Mosquitto and InfluxDB; after a warm-up
// InfluxDB is stopped (its process ends), n uplinks are published as
// fast as the broker takes them, and once sensorgate has spooled them all
// the spool's bytes per uplink are read from its metrics. Then InfluxDB
// starts again and, while the backlog drains, live uplinks are published
// at -live-rate; one after the other, the newest is followed until
// InfluxDB holds it (its latency from the broker's acknowledgement). The
// drain ends when InfluxDB holds every backlog uplink; at the end the
// exact count of all uplinks is compared with what was published.

// outageResult is one outage run.
type outageResult struct {
	Started      time.Time `json:"started"`
	Machine      Machine   `json:"machine"`
	N            int       `json:"n"`
	Devices      int       `json:"devices"`
	Seed         uint64    `json:"seed"`
	MsgBytes     float64   `json:"msg_bytes"` // mean MQTT payload of the backlog
	Warm         int       `json:"warm"`
	SpoolSeconds float64   `json:"spool_s"` // from the first publish until all n were spooled
	SpoolBytes   int64     `json:"spool_bytes"`
	BytesPer     float64   `json:"spool_bytes_per_uplink"`
	DownSeconds  float64   `json:"influxdb_down_s"`
	// From InfluxDB's start: until the first backlog uplink is in (its
	// start and delivery's next retry), and until all are (the drain).
	FirstSeconds float64 `json:"first_s"`
	DrainSeconds float64 `json:"drain_s"`    // from the first backlog uplink in to the last
	DrainRate    float64 `json:"drain_rate"` // n ÷ DrainSeconds
	LiveRate     float64 `json:"live_rate"`
	Live         int     `json:"live"` // live uplinks published from InfluxDB's start until the drain ended
	Probes       int     `json:"probes"`
	LatencyMed   float64 `json:"latency_median_s"`
	LatencyMax   float64 `json:"latency_max_s"`
	PeakRSSMB    float64 `json:"peak_rss_mb"`
	CPUPerUplink float64 `json:"cpu_us_per_uplink"` // sensorgate, the whole run, per uplink
	Published    int     `json:"published"`
	Delivered    int     `json:"delivered"`
	Lost         int     `json:"lost"`
	DeadLetters  int     `json:"dead_letters"`
	Err          string  `json:"error,omitempty"`
}

func outageCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sensorgate-bench outage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	s := &settings{Format: simulate.ChirpStackV4, Registry: registrySQLite, log: stderr}
	fs.IntVar(&s.N, "n", 1000000, "uplinks published while InfluxDB is down")
	fs.IntVar(&s.Devices, "devices", 500, "simulated devices (the end-to-end benchmark's fleet)")
	fs.Uint64Var(&s.Seed, "seed", 99, "stream seed")
	liveRate := fs.Float64("live-rate", 100, "live uplinks per second while the backlog drains")
	fs.Int64Var(&s.SpoolMaxBytes, "spool-max-bytes", 16<<30, "spool.max_bytes: the backlog must fit")
	fs.StringVar(&s.Sensorgate, "sensorgate", "", "sensorgate binary (default: go build ./cmd/sensorgate into the work dir)")
	fs.StringVar(&s.WorkDir, "workdir", "", "where the run keeps broker, database and spool files (default: a new directory in $TMPDIR)")
	fs.BoolVar(&s.Keep, "keep", false, "keep the run's directory")
	fs.DurationVar(&s.Timeout, "timeout", time.Hour, "the whole run")
	out := fs.String("out", "", "append the results to this Markdown file")
	jsonOut := fs.String("json", "", "write the results as JSON here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if s.N <= 0 || s.Devices <= 0 || *liveRate <= 0 {
		return errors.New("-n, -devices and -live-rate must be positive")
	}
	cleanup, err := prepareWork(ctx, &s.WorkDir, &s.Sensorgate, s.Keep, "sensorgate-outage-", stderr)
	if err != nil {
		return err
	}
	defer cleanup()
	res := &outageResult{Started: time.Now().UTC(), Machine: describeMachine(s.Sensorgate, s.WorkDir),
		N: s.N, Devices: s.Devices, Seed: s.Seed, LiveRate: *liveRate, Warm: 1000}
	h, err := newHarness(filepath.Join(s.WorkDir, "outage"))
	if err != nil {
		return err
	}
	runErr := h.do(func() error { return s.outage(ctx, h, res) })
	if err := h.close(s.Keep); err != nil {
		fmt.Fprintln(stderr, "warning:", err)
	}
	if runErr != nil {
		res.Err = runErr.Error()
	}
	if *jsonOut != "" {
		if err := writeJSONFile(*jsonOut, res); err != nil {
			return err
		}
	}
	md := res.Markdown()
	fmt.Fprint(stdout, md)
	if *out != "" {
		if err := appendFile(*out, "\n"+md); err != nil {
			return err
		}
	}
	if runErr != nil {
		return runErr
	}
	if res.Lost > 0 {
		return fmt.Errorf("outage: %d of %d uplinks are not in InfluxDB", res.Lost, res.Published)
	}
	return nil
}

// outage is the run, on the harness's goroutine.
func (s *settings) outage(ctx context.Context, h *harness, res *outageResult) error {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	mq := testserver.StartMosquitto(h)
	db := testserver.StartInfluxDB(h)
	fleet, err := simulate.NewFleet(simulate.Options{Format: s.Format, Devices: s.Devices, Seed: s.Seed})
	if err != nil {
		return fmt.Errorf("outage: %w", err)
	}
	topic, clientID := topicFilter(s.Format), "bench-outage"
	if err := presubscribe(ctx, mq.URL(), clientID, topic); err != nil {
		return err
	}
	cfg, err := s.writeSensorgateConfig(h, s.Sensorgate, mq.URL(), db.URL(), db.Bucket(), clientID, topic, fleet)
	if err != nil {
		return err
	}
	p := newConsumerProc(exec.Command(s.Sensorgate, "run", "-c", cfg), filepath.Join(h.dir, "sensorgate.log"), false)
	if err := p.start(); err != nil {
		return err
	}
	h.Cleanup(p.stop)
	if err := waitConnected(ctx, mq.Port, p); err != nil {
		return err
	}
	metrics := "http://" + s.httpAddr + "/metrics"
	publish := func(stop <-chan struct{}, n int, rate float64, on func(simulate.Message)) error {
		return simulate.Publish(ctx, fleet, simulate.PublishOptions{Broker: mq.URL(), ClientID: "bench-outage-publisher",
			QoS: 1, Rate: rate, Count: n, OnPublished: on, Stop: stop})
	}
	every := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case <-p.exited:
			return fmt.Errorf("outage: sensorgate exited; see %s", p.logPath)
		case <-ctx.Done():
			return fmt.Errorf("outage: %w", ctx.Err())
		}
	}

	fmt.Fprintf(s.log, "warm-up: %d uplinks\n", res.Warm)
	if err := publish(nil, res.Warm, 0, nil); err != nil {
		return fmt.Errorf("outage: warm-up: %w", err)
	}
	for countUplinks(h, db) < res.Warm {
		if err := every(100 * time.Millisecond); err != nil {
			return err
		}
	}

	db.Stop()
	down := time.Now()
	fmt.Fprintf(s.log, "InfluxDB stopped; publishing %d uplinks\n", s.N)
	var first, last simulate.Message
	var payload int64
	err = publish(nil, s.N, 0, func(m simulate.Message) {
		if payload == 0 {
			first = m
		}
		last = m
		payload += int64(len(m.Payload))
	})
	if err != nil {
		return fmt.Errorf("outage: backlog: %w", err)
	}
	res.MsgBytes = float64(payload) / float64(s.N)
	for {
		m, err := scrapeMetrics(ctx, metrics)
		if err != nil {
			return err
		}
		if int(m["sensorgate_spool_pending_records"]) >= s.N {
			res.SpoolSeconds = time.Since(down).Seconds()
			res.SpoolBytes = int64(m["sensorgate_spool_bytes"])
			res.BytesPer = float64(res.SpoolBytes) / float64(s.N)
			if d := m["sensorgate_spool_dropped_records_total"]; d > 0 {
				return fmt.Errorf("outage: the spool dropped %.0f records: raise -spool-max-bytes", d)
			}
			break
		}
		if err := every(time.Second); err != nil {
			return err
		}
	}
	fmt.Fprintf(s.log, "  spooled in %.1f s: %d bytes, %.0f per uplink\n", res.SpoolSeconds, res.SpoolBytes, res.BytesPer)

	db.Start()
	back := time.Now()
	res.DownSeconds = back.Sub(down).Seconds()
	fmt.Fprintf(s.log, "InfluxDB started after %.0f s; live uplinks at %.0f/s while the backlog drains\n", res.DownSeconds, res.LiveRate)
	type arrival struct {
		m  simulate.Message
		at time.Time
	}
	var (
		mu     sync.Mutex
		newest arrival // the live uplink acknowledged last
		live   int
	)
	stopLive := make(chan struct{})
	liveDone := make(chan error, 1)
	go func() {
		liveDone <- publish(stopLive, 1<<30, res.LiveRate, func(m simulate.Message) {
			mu.Lock()
			newest = arrival{m, time.Now()}
			live++
			mu.Unlock()
		})
	}()
	present := func(m simulate.Message) bool {
		return sumCounts(db.Query(h, fmt.Sprintf(`SELECT count("f_cnt") FROM "uplink" WHERE "dev_eui" = '%s' AND time = %d`,
			m.DevEUI, gateway.PointTime(m.Time).UnixNano()))) > 0
	}
	// The drain begins when the first backlog uplink is in; live uplinks
	// are probed from then on.
	for !present(first) {
		if err := every(100 * time.Millisecond); err != nil {
			return err
		}
	}
	draining := time.Now()
	res.FirstSeconds = draining.Sub(back).Seconds()
	var (
		latencies []float64
		probe     *arrival
		drained   bool
	)
	for !drained {
		if err := every(100 * time.Millisecond); err != nil {
			return err
		}
		if probe == nil {
			mu.Lock()
			if newest.at.After(draining) {
				a := newest
				probe = &a
			}
			mu.Unlock()
		}
		if probe != nil && present(probe.m) {
			latencies = append(latencies, time.Since(probe.at).Seconds())
			probe = nil
		}
		if present(last) && countWhere(h, db, fmt.Sprintf("time <= %d", last.Time.UnixNano())) >= res.Warm+s.N {
			drained = true
		}
	}
	res.DrainSeconds = time.Since(draining).Seconds()
	res.DrainRate = float64(s.N) / res.DrainSeconds
	close(stopLive) // and wait for the acknowledgements of those sent
	if err := <-liveDone; err != nil {
		return fmt.Errorf("outage: live publisher: %w", err)
	}
	mu.Lock()
	res.Live = live
	mu.Unlock()
	res.Probes = len(latencies)
	if len(latencies) > 0 {
		slices.Sort(latencies)
		res.LatencyMed, res.LatencyMax = latencies[len(latencies)/2], latencies[len(latencies)-1]
	}
	fmt.Fprintf(s.log, "  drained in %.1f s (%.0f uplinks/s); %d live uplinks, %d probed: median %.2f s, max %.2f s\n",
		res.DrainSeconds, res.DrainRate, res.Live, res.Probes, res.LatencyMed, res.LatencyMax)

	// Every uplink in, exactly once.
	res.Published = res.Warm + s.N + res.Live
	deadline := time.Now().Add(2 * time.Minute)
	for countUplinks(h, db) < res.Published && time.Now().Before(deadline) {
		if err := every(time.Second); err != nil {
			return err
		}
	}
	cpu, err := treeCPUSeconds(p.pid())
	if err != nil {
		return err
	}
	res.CPUPerUplink = cpu / float64(res.Published) * 1e6
	rss, err := peakRSSKiB(p.pid())
	if err != nil {
		return err
	}
	res.PeakRSSMB = mib(rss)
	p.stop()
	res.Delivered = countUplinks(h, db)
	res.Lost = max(0, res.Published-res.Delivered)
	dls, _ := deadletter.ReadAll(filepath.Join(h.dir, "state", deadletter.FileName))
	res.DeadLetters = len(dls)
	return nil
}

// countWhere counts the uplink points matching an InfluxQL condition.
func countWhere(h *harness, db *testserver.InfluxDB, cond string) int {
	return sumCounts(db.Query(h, `SELECT count("f_cnt") FROM "uplink" WHERE `+cond))
}

// Markdown is the run's section for BENCHMARKS.md.
func (res *outageResult) Markdown() string {
	var b strings.Builder
	m := res.Machine
	fmt.Fprintf(&b, "## %s — InfluxDB outage, N=%d\n\n", res.Started.Format("2006-01-02 15:04 UTC"), res.N)
	fmt.Fprintf(&b, "- Machine: %s\n", m.line())
	fmt.Fprintf(&b, "- Servers: Mosquitto %s, InfluxDB %s, on the same machine; files and spool on %s\n", m.Mosquitto, m.InfluxDB, m.WorkFS)
	fmt.Fprintf(&b, "- sensorgate %s, %s; spool fsync=always; the end-to-end benchmark's fleet: ChirpStack v4, %d devices, seed %d, %.0f B per uplink, every uplink decoded (cayenne-lpp) into 5 points\n",
		m.Sensorgate, m.GoVersion, res.Devices, res.Seed, res.MsgBytes)
	fmt.Fprintf(&b, "- After %d warm-up uplinks, influxd was stopped (its process ended) and %d uplinks published as fast as the broker took them; it was started again %.0f s later, and %.0f live uplinks/s were published while the backlog drained\n\n",
		res.Warm, res.N, res.DownSeconds, res.LiveRate)
	if res.Err != "" {
		fmt.Fprintf(&b, "**The run failed:** %s\n\n", res.Err)
	}
	fmt.Fprintf(&b, "| measure | value |\n|---|---:|\n")
	fmt.Fprintf(&b, "| spooled while InfluxDB was down | %d uplinks in %.1f s (%.0f/s) |\n", res.N, res.SpoolSeconds, float64(res.N)/max(res.SpoolSeconds, 1e-9))
	fmt.Fprintf(&b, "| spool on disk | %.1f MiB, **%.0f bytes per uplink** |\n", float64(res.SpoolBytes)/(1<<20), res.BytesPer)
	fmt.Fprintf(&b, "| InfluxDB start to first backlog uplink in | %.1f s |\n", res.FirstSeconds)
	fmt.Fprintf(&b, "| drain (first to last backlog uplink in) | %.1f s, **%.0f uplinks/s** |\n", res.DrainSeconds, res.DrainRate)
	fmt.Fprintf(&b, "| live uplinks during the drain | %d, %d probed one after the other: median %.2f s, max %.2f s from arrival to InfluxDB |\n",
		res.Live, res.Probes, res.LatencyMed, res.LatencyMax)
	fmt.Fprintf(&b, "| sensorgate peak RSS, CPU per uplink (whole run) | %.1f MB, %.0f µs |\n", res.PeakRSSMB, res.CPUPerUplink)
	fmt.Fprintf(&b, "| published / in InfluxDB / lost / dead letters | %d / %d / **%d** / %d |\n", res.Published, res.Delivered, res.Lost, res.DeadLetters)
	if res.BytesPer > 0 && res.DrainRate > 0 {
		fmt.Fprintf(&b, "\nSizing from these measurements (spool disk = rate × duration × %.0f B; drain = backlog ÷ (%.0f − rate) uplinks/s, what delivery carried during the drain, backlog and live, less the live stream at that rate):\n\n",
			res.BytesPer, res.DrainRate+res.LiveRate)
		b.WriteString(sizingTable(res.BytesPer, res.DrainRate+res.LiveRate))
	}
	return b.String()
}

// Outage sizing: the rates and durations of the table.
var (
	sizingRates = []float64{17, 100, 1000}
	sizingHours = []float64{1, 6, 24}
)

// sizingTable is the spool's disk and the drain's time for an outage of
// each duration at each rate: a backlog of rate × duration uplinks of
// bytesPer bytes each, drained at throughput (uplinks/s delivery
// carried, backlog and live together) less the live stream, which keeps
// arriving at the same rate.
func sizingTable(bytesPer, throughput float64) string {
	var b strings.Builder
	b.WriteString("| uplinks/s | outage | backlog | spool disk | drain |\n|---:|---:|---:|---:|---:|\n")
	for _, r := range sizingRates {
		for _, hrs := range sizingHours {
			n := r * hrs * 3600
			drain := "never (delivery cannot keep up)"
			if throughput > r {
				drain = roundDuration(time.Duration(n / (throughput - r) * float64(time.Second)))
			}
			fmt.Fprintf(&b, "| %.0f | %.0f h | %s | %s | %s |\n", r, hrs, humanCount(n), humanBytes(n*bytesPer), drain)
		}
	}
	return b.String()
}

func humanCount(n float64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.1f M", n/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0f k", n/1e3)
	}
	return fmt.Sprintf("%.0f", n)
}

func humanBytes(n float64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", n/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", n/(1<<20))
	}
	return fmt.Sprintf("%.0f KiB", n/(1<<10))
}

// roundDuration prints d to the second under a minute, else to the minute.
func roundDuration(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.0f s", d.Seconds())
	}
	d = d.Round(time.Minute)
	if d < time.Hour {
		return fmt.Sprintf("%d min", int(d.Minutes()))
	}
	return fmt.Sprintf("%d h %02d min", int(d.Hours()), int(d.Minutes())%60)
}
