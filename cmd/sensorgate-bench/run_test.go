package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

// TestNewestGate: the gate names the newest uplink's device and counts
// that device's uplinks from a second before it, however the publishing
// order ran.
func TestNewestGate(t *testing.T) {
	const sec = int64(time.Second)
	for _, c := range []struct {
		name string
		sent []uplinkID
		want uplinkGate
	}{
		{"none", nil, uplinkGate{}},
		{"one", []uplinkID{{5 * sec, "a"}}, uplinkGate{"a", 4 * sec, 1}},
		{"in order", []uplinkID{{1 * sec, "a"}, {2 * sec, "b"}, {3 * sec, "c"}}, uplinkGate{"c", 2 * sec, 1}},
		{"out of order", []uplinkID{{3 * sec, "c"}, {1 * sec, "a"}, {2 * sec, "b"}}, uplinkGate{"c", 2 * sec, 1}},
		// Another uplink of the same device within the second counts too;
		// one of another device does not, nor one older than the second.
		{"same device", []uplinkID{{1 * sec, "a"}, {5*sec - 10, "a"}, {5*sec - 5, "b"}, {5 * sec, "a"}}, uplinkGate{"a", 4 * sec, 2}},
	} {
		if got := newestGate(c.sent); *got != c.want {
			t.Errorf("%s: newestGate = %+v, want %+v", c.name, *got, c.want)
		}
	}
}

// TestComputeRatios: each sensorgate run is compared with the no-op of
// its own pair, and a pair whose no-op failed gets no ratios.
func TestComputeRatios(t *testing.T) {
	res := &Results{Mode: modeBacklog, Runs: []Run{
		{Pair: 1, Consumer: consumerSensorgate, MsgsPerS: 15000, CPUPer100k: 4.5},
		{Pair: 1, Consumer: consumerNoop, MsgsPerS: 30000, CPUPer100k: 3.0},
		{Pair: 2, Consumer: consumerSensorgate, MsgsPerS: 12000, CPUPer100k: 6.0},
		{Pair: 2, Consumer: consumerNoop, MsgsPerS: 20000, CPUPer100k: 4.0},
		{Pair: 3, Consumer: consumerSensorgate, MsgsPerS: 10000, CPUPer100k: 9.0},
		{Pair: 3, Consumer: consumerNoop, Err: "broker gone"},
	}}
	res.computeRatios()
	for i, want := range []struct{ ratio, cpu float64 }{{0.5, 1.5}, {}, {0.6, 1.5}, {}, {0, 0}, {}} {
		if r := res.Runs[i]; r.Ratio != want.ratio || r.CPURatio != want.cpu {
			t.Errorf("run %d (pair %d, %s): ratio %v, CPU ratio %v; want %v, %v", i, r.Pair, r.Consumer, r.Ratio, r.CPURatio, want.ratio, want.cpu)
		}
	}
	// The medians leave out pair 3, which has nothing to compare with.
	if md := res.Markdown(); !strings.Contains(md, "| sensorgate | 12000 | 0.55 |  | 6.00 | 1.50 |") {
		t.Errorf("medians row: want ratio 0.55 and CPU ratio 1.50 from pairs 1 and 2, no bound without the others' CPU:\n%s", md)
	}
}

// TestRatioBound: the bound is the machine's CPUs spread over everything
// but the consumer, or Mosquitto's one CPU when that is less, against the
// no-op of the same pair; the report quotes it where the ratio falls short.
func TestRatioBound(t *testing.T) {
	for _, tc := range []struct {
		name           string
		cpus           int
		others, broker float64 // CPU-s per 100k in sensorgate's run
		noopRate, want float64
	}{
		// 2 CPUs for 4 CPU-s per 100k: 50,000 msgs/s at best.
		{"machine bound", 2, 4, 0.7, 100000, 0.5},
		// 16 CPUs would carry 400,000 msgs/s, but Mosquitto's one CPU
		// only 1 / 0.5 CPU-s per 100k = 200,000.
		{"Mosquitto bound", 16, 4, 0.5, 100000, 2},
		{"no others measured", 2, 0, 0.7, 100000, 0},
		{"no broker figure", 2, 4, 0, 25000, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Run{Consumer: consumerSensorgate, OthersCPUPer100k: tc.others, BrokerCPUPer100k: tc.broker}
			o := Run{Consumer: consumerNoop, MsgsPerS: tc.noopRate}
			if got := ratioBound(r, o, tc.cpus); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("ratioBound = %v, want %v", got, tc.want)
			}
		})
	}

	res := &Results{Mode: modeBacklog, Machine: Machine{CPUs: 2}, Runs: []Run{
		{Pair: 1, Consumer: consumerSensorgate, MsgsPerS: 25000, CPUPer100k: 2.5, OthersCPUPer100k: 4},
		{Pair: 1, Consumer: consumerNoop, MsgsPerS: 70000, CPUPer100k: 1.25, OthersCPUPer100k: 0.8},
	}}
	res.computeRatios()
	if got, want := res.Runs[0].RatioBound, 50000.0/70000; math.Abs(got-want) > 1e-9 {
		t.Errorf("computeRatios: bound %v, want %v", got, want)
	}
	if res.Runs[1].RatioBound != 0 {
		t.Errorf("computeRatios: the no-op run got a bound %v", res.Runs[1].RatioBound)
	}
	md := res.Markdown()
	for _, want := range []string{
		"| 1 | sensorgate | 0.00 | 25000 | 0.36 | 0.71 | 2.50 |",
		"| sensorgate | 25000 | 0.36 | 0.71 | 2.50 | 2.00 |",
		"ratio ≥ 0.90: **not met** (0.36; a consumer costing no CPU could reach about 0.71 on this machine)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

// TestParseBusy: work is user, nice, system, irq and softirq; idle, I/O
// wait and steal are not.
func TestParseBusy(t *testing.T) {
	for _, tc := range []struct {
		line    string
		want    float64
		wantErr bool
	}{
		{"cpu  100 20 30 5000 70 8 9 400 0 0", 1.67, false},
		{"cpu  100 20 30 5000 70 8 9", 1.67, false}, // old kernels: no steal
		{"cpu0 100 20 30 5000 70 8 9 400 0 0", 0, true},
		{"cpu  100 x 30 5000 70 8 9 400 0 0", 0, true},
		{"cpu  100 20", 0, true},
	} {
		got, err := parseBusy(tc.line)
		if (err != nil) != tc.wantErr || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("parseBusy(%q) = %v, %v; want %v, error %v", tc.line, got, err, tc.want, tc.wantErr)
		}
	}
	if busy, err := machineBusySeconds(); err != nil || busy <= 0 {
		t.Errorf("machineBusySeconds() = %v, %v; want the time since boot", busy, err)
	}
}

// TestMarkdownInfluxElsewhere: with -influx the report names the server
// and shows no InfluxDB CPU, which this machine cannot see.
func TestMarkdownInfluxElsewhere(t *testing.T) {
	res := &Results{Mode: modeBacklog, InfluxURL: "http://influx.example:8086", Machine: Machine{CPUs: 2}, Runs: []Run{
		{Pair: 1, Consumer: consumerSensorgate, MsgsPerS: 40000, CPUPer100k: 2.5, BrokerCPUPer100k: 0.7, OthersCPUPer100k: 0.8},
		{Pair: 1, Consumer: consumerNoop, MsgsPerS: 70000, CPUPer100k: 1.3, BrokerCPUPer100k: 0.7, OthersCPUPer100k: 0.75},
	}}
	res.computeRatios()
	md := res.Markdown()
	// Bound: Mosquitto's one CPU carries 1 / 0.7 CPU-s per 100k = 142,857
	// msgs/s, less than the two CPUs for the others' 0.8 (250,000).
	for _, want := range []string{
		"InfluxDB at http://influx.example:8086 (not on this machine; its CPU is not measured)",
		"| 1 | sensorgate | 0.00 | 40000 | 0.57 | 2.04 | 2.50 | 0.0 | 0 | 0 | 0.70 | – | 0.80 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

// TestSideBySide: sensorgate's medians are compared with the baseline's
// and Telegraf's as ratios of medians, InfluxDB's points, bytes and disk
// included; a consumer that did not run gets no line.
func TestSideBySide(t *testing.T) {
	res := &Results{Mode: modeBacklog, N: 100000, Consumers: []string{consumerBaseline, consumerSensorgate, consumerTelegraf}, Runs: []Run{
		{Pair: 1, Consumer: consumerBaseline, MsgsPerS: 5000, CPUPer100k: 4, PeakRSSMB: 40, InfluxCPUPer100k: 6, InfluxPoints: 6.84, InfluxLPBytes: 1248, DiskBytes: 174.7},
		{Pair: 1, Consumer: consumerSensorgate, MsgsPerS: 10000, CPUPer100k: 3, PeakRSSMB: 36, InfluxCPUPer100k: 3, InfluxPoints: 3.42, InfluxLPBytes: 624, DiskBytes: 87.35},
		{Pair: 1, Consumer: consumerTelegraf, MsgsPerS: 5000, CPUPer100k: 12, PeakRSSMB: 320, InfluxCPUPer100k: 3, InfluxPoints: 1, InfluxLPBytes: 164, DiskBytes: 30},
	}}
	got := res.sideBySide()
	for _, want := range []string{
		"sensorgate ÷ baseline (medians): msgs/s 2.00, CPU-s / 100k 0.75, peak RSS 0.90, InfluxDB CPU-s / 100k 0.50, points / uplink 0.50, LP bytes / uplink 0.50, disk / uplink 0.50",
		"sensorgate ÷ telegraf (medians): msgs/s 2.00, CPU-s / 100k 0.25",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("side by side:\n%s\nwant a line with %q", got, want)
		}
	}
	res.Runs = res.Runs[:2]
	if got := res.sideBySide(); strings.Contains(got, "telegraf") {
		t.Errorf("Telegraf did not run, yet: %s", got)
	}
	md := res.Markdown()
	if !strings.Contains(md, "| baseline | 5000 |") || !strings.Contains(md, "| 6.84 | 1248 | 174.7 |") {
		t.Errorf("the medians table lacks the baseline or InfluxDB's figures:\n%s", md)
	}
}
