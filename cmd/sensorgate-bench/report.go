package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"
)

// The targets sensorgate is held to, as medians of interleaved pairs:
// throughput as a fraction of the no-op subscriber's (a backlog drained,
// a live stream kept up with), CPU per 100,000 uplinks and peak RSS.
const (
	targetRatioBacklog = 0.90
	targetRatioLive    = 0.95
	targetCPUPer100k   = 4.5 // CPU seconds
	targetPeakRSSMB    = 40
)

// Results are one invocation: the machine, the runs, the medians.
type Results struct {
	Started time.Time `json:"started"`
	Mode    string    `json:"mode"`
	N       int       `json:"n"`
	Pairs   int       `json:"pairs"`
	Format  string    `json:"format"`
	Devices int       `json:"devices"`
	// Warm: each sensorgate run heard every device once before it was
	// measured (-warm).
	Warm bool   `json:"warm,omitempty"`
	Seed uint64 `json:"seed"`
	Note string `json:"note,omitempty"`
	// InfluxURL is the InfluxDB elsewhere the runs wrote to (-influx);
	// empty when each run had its own on this machine.
	InfluxURL string  `json:"influxdb_url,omitempty"`
	Machine   Machine `json:"machine"`
	Runs      []Run   `json:"runs"`
	Profiled  *Run    `json:"profiled,omitempty"` // the profiling run, outside the medians
}

// computeRatios sets each sensorgate run's throughput and CPU ratios to
// the no-op run of its pair; a pair with a failed run has none.
func (res *Results) computeRatios() {
	for i := range res.Runs {
		r := &res.Runs[i]
		if r.Consumer != consumerSensorgate || r.Err != "" {
			continue
		}
		for _, o := range res.Runs {
			if o.Pair != r.Pair || o.Consumer != consumerNoop || o.Err != "" {
				continue
			}
			if o.MsgsPerS > 0 {
				r.Ratio = r.MsgsPerS / o.MsgsPerS
			}
			if o.CPUPer100k > 0 {
				r.CPURatio = r.CPUPer100k / o.CPUPer100k
			}
			r.RatioBound = ratioBound(*r, o, res.Machine.CPUs)
		}
	}
}

// ratioBound is the highest ratio to the no-op run o that any consumer
// could reach in sensorgate's run r on a machine with cpus CPUs, if that
// consumer cost no CPU at all and everything else cost what it did in r
// (InfluxDB storing the same points, Mosquitto, the publisher in live
// mode). Everything else then still needs OthersCPUPer100k per 100k
// messages, which the CPUs deliver at best in parallel, and single-
// threaded Mosquitto at best on one CPU. Costs that fall with throughput
// (bigger InfluxDB batches) make it a little higher in fact; the
// benchmark's polling of InfluxDB, in the others, a little lower. 0 when
// a figure is missing.
func ratioBound(r, o Run, cpus int) float64 {
	if r.OthersCPUPer100k <= 0 || o.MsgsPerS <= 0 || cpus <= 0 {
		return 0
	}
	rate := float64(cpus) / r.OthersCPUPer100k * 100000
	if r.BrokerCPUPer100k > 0 {
		rate = min(rate, 100000/r.BrokerCPUPer100k)
	}
	return rate / o.MsgsPerS
}

// median of f over the consumer's successful runs.
func (res *Results) median(consumer string, f func(Run) float64) (float64, bool) {
	return res.medianOf(consumer, f, false)
}

// medianRatio is the median of f, a ratio to the pair's no-op, over the
// sensorgate runs that have one (not those whose no-op failed).
func (res *Results) medianRatio(f func(Run) float64) (float64, bool) {
	return res.medianOf(consumerSensorgate, f, true)
}

func (res *Results) medianOf(consumer string, f func(Run) float64, positive bool) (float64, bool) {
	var v []float64
	for _, r := range res.Runs {
		if x := f(r); r.Consumer == consumer && r.Err == "" && (x > 0 || !positive) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return 0, false
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2], true
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2, true
}

func (res *Results) failed() bool {
	for _, r := range res.Runs {
		if r.Err != "" || r.Lost > 0 {
			return true
		}
	}
	return res.Profiled != nil && res.Profiled.Err != ""
}

// summary is a run's progress line.
func (r Run) summary() string {
	if r.Err != "" {
		return fmt.Sprintf("%s FAILED: %s", r.Consumer, r.Err)
	}
	s := fmt.Sprintf("%s: %.2f s, %.0f msgs/s, %.2f CPU-s/100k, peak RSS %.1f MB, delivered %d, lost %d",
		r.Consumer, r.Seconds, r.MsgsPerS, r.CPUPer100k, r.PeakRSSMB, r.Delivered, r.Lost)
	if r.Ratio > 0 {
		s += fmt.Sprintf(", ratio %.2f", r.Ratio)
	}
	if r.Delivered > 0 {
		s += fmt.Sprintf(", %.2f read + %.2f write syscalls per msg",
			float64(r.ReadCalls)/float64(r.Delivered), float64(r.WriteCalls)/float64(r.Delivered))
	}
	return s
}

// Markdown renders the invocation as a dated section of the results file.
func (res *Results) Markdown() string {
	var b strings.Builder
	m := res.Machine
	title := map[string]string{modeBacklog: "backlog drain", modeLive: "live"}[res.Mode]
	fmt.Fprintf(&b, "\n## %s — %s, N=%d, %d pairs\n\n", res.Started.Format("2006-01-02 15:04 MST"), title, res.N, res.Pairs)
	if res.Note != "" {
		fmt.Fprintf(&b, "%s\n\n", res.Note)
	}
	fmt.Fprintf(&b, "- Machine: %d CPUs, %s, %s RAM, %s; load average at start %s (shared machine: expect noise)\n",
		m.CPUs, m.CPUModel, m.MemTotal, m.Kernel, m.LoadAvg)
	persisted := "persistence on, autosave every 1 s"
	for _, r := range res.Runs {
		if r.Err == "" && !r.BrokerPersisted {
			persisted = "persistence configured but **no persistence file written** in some runs: the queue lived in memory"
		}
	}
	influx := "InfluxDB " + m.InfluxDB
	if res.InfluxURL != "" {
		influx = "InfluxDB at " + res.InfluxURL + " (not on this machine; its CPU is not measured)"
	}
	fmt.Fprintf(&b, "- Servers: Mosquitto %s (%s, max_queued_messages 0, max_inflight_messages 100), %s; their files and the spool on %s\n",
		m.Mosquitto, persisted, influx, m.WorkFS)
	fmt.Fprintf(&b, "- sensorgate %s, %s; spool fsync=always; decoding and normalization on (every device has model %s)\n",
		m.Sensorgate, m.GoVersion, "`cayenne-lpp`")
	var bytes int64
	for _, r := range res.Runs {
		if r.MsgBytes > 0 {
			bytes = r.MsgBytes
			break
		}
	}
	size := ""
	if bytes > 0 {
		size = fmt.Sprintf(", %d B per uplink on average", bytes/int64(res.N))
	}
	if res.Warm {
		size += "; sensorgate warmed: every device heard once, and in InfluxDB, before the measured uplinks"
	}
	fmt.Fprintf(&b, "- Stream: %s, %d devices, seed %d%s; QoS 1, persistent session, manual ack\n\n", res.Format, res.Devices, res.Seed, size)

	b.WriteString("| pair | consumer | seconds | msgs/s | ratio | ratio bound | CPU-s / 100k | peak RSS MB | delivered | lost | Mosquitto CPU-s / 100k | InfluxDB CPU-s / 100k | all others CPU-s / 100k |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range res.Runs {
		if r.Err != "" {
			fmt.Fprintf(&b, "| %d | %s | failed: %s | | | | | | | | | | |\n", r.Pair, r.Consumer, strings.ReplaceAll(r.Err, "|", "/"))
			continue
		}
		ratio, bound := "", ""
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		if r.RatioBound > 0 {
			bound = fmt.Sprintf("%.2f", r.RatioBound)
		}
		delivered := fmt.Sprint(r.Delivered)
		switch {
		case r.Consumer == consumerNoop && r.DupFlagged > 0:
			delivered += fmt.Sprintf(" (%d DUP)", r.DupFlagged)
		case r.DeadLetters > 0:
			delivered += fmt.Sprintf(" (%d dead letters)", r.DeadLetters)
		}
		influxCPU := fmt.Sprintf("%.2f", r.InfluxCPUPer100k)
		if res.InfluxURL != "" {
			influxCPU = "–"
		}
		fmt.Fprintf(&b, "| %d | %s | %.2f | %.0f | %s | %s | %.2f | %.1f | %s | %d | %.2f | %s | %.2f |\n",
			r.Pair, r.Consumer, r.Seconds, r.MsgsPerS, ratio, bound, r.CPUPer100k, r.PeakRSSMB, delivered, r.Lost,
			r.BrokerCPUPer100k, influxCPU, r.OthersCPUPer100k)
	}

	b.WriteString("\nMedians:\n\n| consumer | msgs/s | ratio | ratio bound | CPU-s / 100k | CPU ÷ no-op | peak RSS MB | lost (all runs) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range []string{consumerSensorgate, consumerNoop} {
		rate, ok := res.median(c, func(r Run) float64 { return r.MsgsPerS })
		if !ok {
			fmt.Fprintf(&b, "| %s | no successful run | | | | | | |\n", c)
			continue
		}
		cpu, _ := res.median(c, func(r Run) float64 { return r.CPUPer100k })
		rss, _ := res.median(c, func(r Run) float64 { return r.PeakRSSMB })
		ratio, bound, cpuRatio := "", "", ""
		if c == consumerSensorgate {
			if v, ok := res.medianRatio(func(r Run) float64 { return r.Ratio }); ok {
				ratio = fmt.Sprintf("%.2f", v)
			}
			if v, ok := res.medianRatio(func(r Run) float64 { return r.RatioBound }); ok {
				bound = fmt.Sprintf("%.2f", v)
			}
			if v, ok := res.medianRatio(func(r Run) float64 { return r.CPURatio }); ok {
				cpuRatio = fmt.Sprintf("%.2f", v)
			}
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %.2f | %s | %.1f | %d |\n", c, rate, ratio, bound, cpu, cpuRatio, rss, res.lost(c))
	}
	b.WriteString("\n" + res.targets() + "\n")
	return b.String()
}

func (res *Results) lost(consumer string) int {
	n := 0
	for _, r := range res.Runs {
		if r.Consumer == consumer && r.Err == "" {
			n += r.Lost
		}
	}
	return n
}

// targets says, for each target (targetRatioBacklog and the others),
// whether sensorgate's medians meet it.
func (res *Results) targets() string {
	want := targetRatioBacklog
	if res.Mode == modeLive {
		want = targetRatioLive
	}
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	ratio, ok1 := res.medianRatio(func(r Run) float64 { return r.Ratio })
	cpu, ok2 := res.median(consumerSensorgate, func(r Run) float64 { return r.CPUPer100k })
	rss, ok3 := res.median(consumerSensorgate, func(r Run) float64 { return r.PeakRSSMB })
	if !ok1 || !ok2 || !ok3 {
		return "Issue 7 targets: not evaluated (no complete pair)."
	}
	lost := res.lost(consumerSensorgate)
	ratioNote := fmt.Sprintf("%.2f", ratio)
	if bound, ok := res.medianRatio(func(r Run) float64 { return r.RatioBound }); ok && ratio < want {
		ratioNote += fmt.Sprintf("; a consumer costing no CPU could reach about %.2f on this machine", bound)
	}
	return fmt.Sprintf("Issue 7 targets (sensorgate medians): ratio ≥ %.2f: %s (%s); ≤ %.1f CPU-s / 100k: %s (%.2f); peak RSS ≤ %d MB: %s (%.1f); 0 lost: %s (%d).",
		want, mark(ratio >= want), ratioNote, targetCPUPer100k, mark(cpu <= targetCPUPer100k), cpu,
		targetPeakRSSMB, mark(rss <= targetPeakRSSMB), rss, mark(lost == 0), lost)
}

// resultsHeader starts a new Markdown results file.
const resultsHeader = `# sensorgate end-to-end benchmark results

Appended by ` + "`make bench-e2e`" + ` (backlog drain) and ` + "`make bench-e2e-live`" + ` (live), which
run ` + "`cmd/sensorgate-bench`" + `. Each run has its own fresh Mosquitto and InfluxDB 1.8; runs
alternate sensorgate and a no-op paho subscriber (receives, acks, discards: the
ceiling) on the same deterministic ChirpStack v4 stream. msgs/s: N divided by the
time from the consumer's start (backlog) or the first publish (live) until InfluxDB
holds all N uplink points (sensorgate, polled every 100 ms) or N messages were
acknowledged (no-op). ratio: sensorgate ÷ the no-op of the same pair. CPU-s / 100k:
the consumer process's utime+stime. CPU ÷ no-op (sections from 2026-11-28 00:53 UTC on):
sensorgate's CPU-s / 100k ÷ the no-op's in the same pair, which moves less than CPU-s
between machines and hours. peak RSS: its VmHWM. delivered: the exact count
of uplink points in InfluxDB (sensorgate) or of messages acknowledged (no-op).
Mosquitto / InfluxDB CPU-s / 100k (sections from 2026-11-27 20:51 UTC on): the
servers' utime+stime over the same span; they share the two cores with the consumer,
and InfluxDB's figure includes the benchmark's own polling. From 20:57 UTC on that
polling asks only for the newest 1000 uplinks until they are in, then counts all
(counting all every 100 ms had cost InfluxDB 1–2 CPU-s per 100k); from 2026-11-28 02:04
UTC on it asks only whether the newest uplink is in, a question about one device's
series (the newest 1000 of all 500 series had still cost InfluxDB ~0.3 CPU-s per 100k).
All others CPU-s / 100k and ratio bound (sections from 2026-11-28 01:41 UTC on): the
CPU time the whole machine (/proc/stat) spent on anything but the consumer over the
same span, and the ratio a consumer costing no CPU at all could reach with
everything else costing that: the machine's CPUs ÷ all others' CPU per message
(single-threaded Mosquitto: at most one CPU), ÷ the no-op's msgs/s.
Compare numbers only between sections from the same machine.
`

// Append adds the section to the results file: Markdown, or one JSON
// object per line when the name ends in .json.
func (res *Results) Append(path, md string) error {
	var data []byte
	if strings.HasSuffix(path, ".json") {
		b, err := json.Marshal(res)
		if err != nil {
			return fmt.Errorf("results: %w", err)
		}
		data = append(b, '\n')
	} else {
		data = []byte(md)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			data = append([]byte(resultsHeader), data...)
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("results: append to %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("results: append to %s: %w", path, err)
	}
	return nil
}
