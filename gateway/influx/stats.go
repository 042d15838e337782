package influx

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// LatencyBuckets are the upper bounds, in seconds, of the write-latency
// histogram: a healthy local InfluxDB answers in milliseconds, a struggling
// one in seconds, and the request timeout caps the rest.
var LatencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// WriteStats is a snapshot of the Client's write requests, for metrics and
// the status page. This package stays free of a metrics library: the
// caller turns the snapshot into whatever its exporter needs.
type WriteStats struct {
	// Requests counts write requests by status class: "2xx", "4xx",
	// "429", "5xx", … and "network" when no HTTP response came.
	Requests map[string]uint64
	// Retries counts requests that failed and were tried again, by the
	// same status classes.
	Retries map[string]uint64
	// Points counts points InfluxDB answered 2xx for.
	Points uint64
	// Latency is the histogram of request durations (send to answer,
	// every attempt): Counts[i] requests took at most LatencyBuckets[i]
	// seconds and more than the bound before it; the last count is above
	// every bound. Sum is the total in seconds.
	LatencyCounts []uint64
	LatencySum    float64
	// LastError is the latest failed request's status and message, and
	// when it failed; empty when none failed.
	LastError     string
	LastErrorTime time.Time
}

// statusClasses are the label values StatusClass returns, in a fixed
// order so the counters can be a plain array.
var statusClasses = [...]string{"network", "1xx", "2xx", "3xx", "4xx", "429", "5xx"}

// StatusClass names an HTTP status's class for counting: "2xx", "4xx",
// "429" (apart from 4xx: it is backpressure, not a client error), "5xx",
// and "network" for 0 (no response).
func StatusClass(status int) string { return statusClasses[classIndex(status)] }

func classIndex(status int) int {
	switch {
	case status == http.StatusTooManyRequests:
		return 5
	case status >= 100 && status < 400:
		return status / 100
	case status >= 400 && status < 500:
		return 4
	case status >= 500:
		return 6
	}
	return 0
}

// writeStats counts requests with atomics: it is updated once per
// InfluxDB request, never per point or message.
type writeStats struct {
	requests [len(statusClasses)]atomic.Uint64
	retries  [len(statusClasses)]atomic.Uint64
	points   atomic.Uint64
	buckets  []atomic.Uint64 // len(LatencyBuckets)+1
	sumNanos atomic.Int64

	mu        sync.Mutex
	lastErr   string
	lastErrAt time.Time
}

func newWriteStats() *writeStats {
	return &writeStats{buckets: make([]atomic.Uint64, len(LatencyBuckets)+1)}
}

// request records one request's outcome and duration.
func (w *writeStats) request(status int, d time.Duration, failed bool, msg string) {
	w.requests[classIndex(status)].Add(1)
	secs := d.Seconds()
	i := 0
	for i < len(LatencyBuckets) && secs > LatencyBuckets[i] {
		i++
	}
	w.buckets[i].Add(1)
	w.sumNanos.Add(int64(d))
	if failed {
		label := "network error"
		if status != 0 {
			label = "HTTP " + strconv.Itoa(status)
		}
		w.mu.Lock()
		w.lastErr, w.lastErrAt = label+": "+msg, time.Now()
		w.mu.Unlock()
	}
}

func (w *writeStats) snapshot() WriteStats {
	s := WriteStats{
		Requests:      map[string]uint64{},
		Retries:       map[string]uint64{},
		Points:        w.points.Load(),
		LatencyCounts: make([]uint64, len(w.buckets)),
		LatencySum:    time.Duration(w.sumNanos.Load()).Seconds(),
	}
	for i, c := range statusClasses {
		if n := w.requests[i].Load(); n > 0 {
			s.Requests[c] = n
		}
		if n := w.retries[i].Load(); n > 0 {
			s.Retries[c] = n
		}
	}
	for i := range w.buckets {
		s.LatencyCounts[i] = w.buckets[i].Load()
	}
	w.mu.Lock()
	s.LastError, s.LastErrorTime = w.lastErr, w.lastErrAt
	w.mu.Unlock()
	return s
}

// Stats returns a snapshot of the write requests made so far.
func (s *Client) Stats() WriteStats { return s.stats.snapshot() }
