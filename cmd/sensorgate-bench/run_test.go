package main

import (
	"strings"
	"testing"
)

func TestNewestSince(t *testing.T) {
	for _, c := range []struct {
		name      string
		times     []int64
		k         int
		since     int64
		wantCount int
	}{
		{"none", nil, 3, 0, 0},
		{"fewer than k", []int64{5, 1, 3}, 10, 1, 3},
		{"in order", []int64{1, 2, 3, 4, 5}, 2, 4, 2},
		{"out of order", []int64{5, 2, 4, 1, 3}, 2, 4, 2},
		{"ties at the cut", []int64{1, 3, 3, 3, 5}, 2, 3, 4},
	} {
		since, n := newestSince(c.times, c.k)
		if since != c.since || n != c.wantCount {
			t.Errorf("%s: newestSince(%v, %d) = %d, %d; want %d, %d", c.name, c.times, c.k, since, n, c.since, c.wantCount)
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
	if md := res.Markdown(); !strings.Contains(md, "| sensorgate | 12000 | 0.55 | 6.00 | 1.50 |") {
		t.Errorf("medians row: want ratio 0.55 and CPU ratio 1.50 from pairs 1 and 2:\n%s", md)
	}
}
