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
	Fleet   string    `json:"fleet,omitempty"`
	// Object says the stream carried the network server's decoded object.
	Object    bool     `json:"object,omitempty"`
	Consumers []string `json:"consumers,omitempty"`
	Rate      float64  `json:"rate,omitempty"` // live mode: uplinks offered per second, 0 as fast as possible
	Devices   int      `json:"devices"`
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
		if r.Consumer == consumerNoop || r.Err != "" {
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
	if r.InfluxPoints > 0 {
		s += fmt.Sprintf("; InfluxDB %.2f CPU-s/100k, %.2f points and %.0f LP bytes per uplink in %d requests",
			r.InfluxCPUPer100k, r.InfluxPoints, r.InfluxLPBytes, r.InfluxRequests)
	}
	if r.DiskBytes > 0 {
		s += fmt.Sprintf(", %.1f disk bytes per uplink", r.DiskBytes)
	}
	if r.LatencyN > 0 {
		s += fmt.Sprintf("; publish to InfluxDB p50 %.0f ms, p99 %.0f ms (%d samples)", r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyN)
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
	fmt.Fprintf(&b, "- Machine: %s\n", m.line())
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
	fmt.Fprintf(&b, "- sensorgate %s, %s; spool fsync=always; decoding and normalization on\n", m.Sensorgate, m.GoVersion)
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
	object := ""
	if res.Object {
		object = ", with ChirpStack's decoded object"
	}
	if res.Rate > 0 {
		object += fmt.Sprintf(", offered at %.0f uplinks/s", res.Rate)
	}
	fmt.Fprintf(&b, "- Stream: %s%s, %d devices, seed %d%s; QoS 1, persistent session, manual ack\n", res.Format, object, res.Devices, res.Seed, size)
	if res.Fleet != "" {
		fmt.Fprintf(&b, "- Fleet: %s (%s)\n", res.Fleet, fleetDescription[res.Fleet])
	} else {
		fmt.Fprintf(&b, "- Fleet: %s\n", fleetDescription[fleetCayenne])
	}
	b.WriteString("- InfluxDB points, LP bytes and requests: InfluxDB's own write statistics (/debug/vars) over the run, per uplink; disk: its TSM bytes per uplink after a full compaction (restarted with 1 s cold durations until one generation and an empty WAL)\n\n")

	b.WriteString("| pair | consumer | seconds | msgs/s | ratio | ratio bound | CPU-s / 100k | peak RSS MB | delivered | lost | Mosquitto CPU-s / 100k | InfluxDB CPU-s / 100k | all others CPU-s / 100k | points / uplink | LP B / uplink | write requests | disk B / uplink |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range res.Runs {
		if r.Err != "" {
			fmt.Fprintf(&b, "| %d | %s | failed: %s | | | | | | | | | | | | | | |\n", r.Pair, r.Consumer, strings.ReplaceAll(r.Err, "|", "/"))
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
		fmt.Fprintf(&b, "| %d | %s | %.2f | %.0f | %s | %s | %.2f | %.1f | %s | %d | %.2f | %s | %.2f | %s | %s | %s | %s |\n",
			r.Pair, r.Consumer, r.Seconds, r.MsgsPerS, ratio, bound, r.CPUPer100k, r.PeakRSSMB, delivered, r.Lost,
			r.BrokerCPUPer100k, influxCPU, r.OthersCPUPer100k,
			optional("%.2f", r.InfluxPoints), optional("%.0f", r.InfluxLPBytes), optional("%.0f", float64(r.InfluxRequests)), optional("%.1f", r.DiskBytes))
	}

	b.WriteString("\nMedians:\n\n| consumer | msgs/s | ratio | ratio bound | CPU-s / 100k | CPU ÷ no-op | peak RSS MB | lost (all runs) | InfluxDB CPU-s / 100k | points / uplink | LP B / uplink | disk B / uplink |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range res.consumers() {
		rate, ok := res.median(c, func(r Run) float64 { return r.MsgsPerS })
		if !ok {
			fmt.Fprintf(&b, "| %s | no successful run | | | | | | | | | | |\n", c)
			continue
		}
		cpu, _ := res.median(c, func(r Run) float64 { return r.CPUPer100k })
		rss, _ := res.median(c, func(r Run) float64 { return r.PeakRSSMB })
		ratio, bound, cpuRatio := "", "", ""
		if c != consumerNoop {
			if v, ok := res.medianOf(c, func(r Run) float64 { return r.Ratio }, true); ok {
				ratio = fmt.Sprintf("%.2f", v)
			}
			if v, ok := res.medianOf(c, func(r Run) float64 { return r.RatioBound }, true); ok {
				bound = fmt.Sprintf("%.2f", v)
			}
			if v, ok := res.medianOf(c, func(r Run) float64 { return r.CPURatio }, true); ok {
				cpuRatio = fmt.Sprintf("%.2f", v)
			}
		}
		med := func(format string, f func(Run) float64) string {
			v, _ := res.medianOf(c, f, true)
			return optional(format, v)
		}
		influxCPU := med("%.2f", func(r Run) float64 { return r.InfluxCPUPer100k })
		if res.InfluxURL != "" || c == consumerNoop {
			influxCPU = ""
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %.2f | %s | %.1f | %d | %s | %s | %s | %s |\n", c, rate, ratio, bound, cpu, cpuRatio, rss, res.lost(c),
			influxCPU, med("%.2f", func(r Run) float64 { return r.InfluxPoints }), med("%.0f", func(r Run) float64 { return r.InfluxLPBytes }),
			med("%.1f", func(r Run) float64 { return r.DiskBytes }))
	}
	if lat := res.latencies(); lat != "" {
		b.WriteString("\n" + lat + "\n")
	}
	if cmp := res.sideBySide(); cmp != "" {
		b.WriteString("\n" + cmp + "\n")
	}
	b.WriteString("\n" + res.targets() + "\n")
	return b.String()
}

// latencies lists, in live mode, each consumer's medians over its runs
// of the latency from publish to InfluxDB (latencyProbe).
func (res *Results) latencies() string {
	var lines []string
	for _, c := range res.consumers() {
		p50, ok := res.medianOf(c, func(r Run) float64 { return r.LatencyP50Ms }, true)
		if !ok {
			continue
		}
		p99, _ := res.medianOf(c, func(r Run) float64 { return r.LatencyP99Ms }, true)
		lines = append(lines, fmt.Sprintf("- %s: publish (broker's acknowledgement) to the uplink point answering a query in InfluxDB, medians over the runs: p50 %.0f ms, p99 %.0f ms", c, p50, p99))
	}
	return strings.Join(lines, "\n")
}

// fleetDescription says how each -fleet decodes the stream.
var fleetDescription = map[string]string{
	fleetCayenne: "sensorgate's built-in Cayenne LPP decoder, every device of model `cayenne-lpp`",
	fleetObject:  "no model: ChirpStack's decoded object, lifted onto the catalogue by the source's `map`",
	fleetJS:      "the JavaScript Cayenne LPP codec (decodeUplink and normalizeUplink) in codec workers",
}

// optional formats v, or gives "" for a figure not measured (0).
func optional(format string, v float64) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf(format, v)
}

// consumers are the consumers of the runs, in the order they ran.
func (res *Results) consumers() []string {
	if len(res.Consumers) > 0 {
		return res.Consumers
	}
	var out []string
	for _, r := range res.Runs {
		if !slices.Contains(out, r.Consumer) {
			out = append(out, r.Consumer)
		}
	}
	return out
}

// sideBySide compares sensorgate's medians with the baseline's and
// Telegraf's, as ratios (sensorgate ÷ other) of the medians of
// interleaved runs: what a shared machine moves, it moves for both.
func (res *Results) sideBySide() string {
	var lines []string
	for _, other := range []string{consumerBaseline, consumerTelegraf} {
		ratio := func(f func(Run) float64) string {
			a, ok1 := res.medianOf(consumerSensorgate, f, true)
			o, ok2 := res.medianOf(other, f, true)
			if !ok1 || !ok2 {
				return "–"
			}
			return fmt.Sprintf("%.2f", a/o)
		}
		if _, ok := res.median(other, func(r Run) float64 { return r.MsgsPerS }); !ok {
			continue
		}
		lines = append(lines, fmt.Sprintf("- sensorgate ÷ %s (medians): msgs/s %s, CPU-s / 100k %s, peak RSS %s, InfluxDB CPU-s / 100k %s, points / uplink %s, LP bytes / uplink %s, disk / uplink %s",
			other, ratio(func(r Run) float64 { return r.MsgsPerS }), ratio(func(r Run) float64 { return r.CPUPer100k }),
			ratio(func(r Run) float64 { return r.PeakRSSMB }), ratio(func(r Run) float64 { return r.InfluxCPUPer100k }),
			ratio(func(r Run) float64 { return r.InfluxPoints }), ratio(func(r Run) float64 { return r.InfluxLPBytes }),
			ratio(func(r Run) float64 { return r.DiskBytes })))
	}
	return strings.Join(lines, "\n")
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
