package main

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkChirpStackBackfill measures `sensorgate backfill
// --chirpstack-pg` end to end on this machine's PostgreSQL, a test
// InfluxDB and the spool: 10,000 event_up rows of a simulated Cayenne LPP
// fleet per run, with 1, 8, 32 (backfillWorkers) and 64 uplinks in the
// pipeline at a time. Each run writes the same points again (they
// overwrite). Run interleaved, e.g.
//
//	go test -run '^$' -bench ChirpStackBackfill -count 5 ./cmd/sensorgate
func BenchmarkChirpStackBackfill(b *testing.B) {
	const rows = 10000
	for _, workers := range []int{1, 8, 32, 64} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			r := newCSBackfillRigTB(b, rows-3)
			cfg := r.config(fmt.Sprintf("bench%d", workers), r.db.DB)
			old := backfillWorkers
			backfillWorkers = workers
			defer func() { backfillWorkers = old }()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				r.backfill(0, "-c", cfg, "--chirpstack-pg", r.pg, "--since", "2000-01-01T00:00:00Z")
			}
			b.ReportMetric(float64(rows*b.N)/time.Since(start).Seconds(), "rows/s")
		})
	}
}
