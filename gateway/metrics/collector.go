package metrics

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sensorgate/sensorgate/gateway/influx"
)

// writeClasses are the status classes always exposed for InfluxDB
// requests and retries, zero or not, so a dashboard's rate() has a series
// before the first failure; other classes appear once counted.
var writeClasses = []string{"2xx", "4xx", "429", "5xx", "network"}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
}

// Descriptions of the families read at scrape time.
var (
	sourceConnected = desc("source_connected", "1 while the source is connected to its MQTT broker and subscribed, else 0.", "source")

	spoolBytes    = desc("spool_bytes", "Bytes of spool segment files on disk.")
	spoolSegments = desc("spool_segments", "Spool segment files on disk.")
	spoolPending  = desc("spool_pending_records", "Spool records appended and not yet delivered to InfluxDB.")
	spoolAge      = desc("spool_oldest_age_seconds", "Age of the oldest undelivered spool record (0 when none): how far delivery lags.")
	spoolDropRecs = desc("spool_dropped_records_total", "Undelivered records dropped because the spool reached spool.max_bytes.")
	spoolDropB    = desc("spool_dropped_bytes_total", "Bytes of segment files dropped because the spool reached spool.max_bytes.")
	spoolCorrupt  = desc("spool_corrupt_records_total", "Spool records lost to checksum or format errors (media damage).")
	spoolSyncs    = desc("spool_syncs_total", "fdatasync calls on spool segment files: uplinks written per sync is the size of the group commits.")

	influxLatency  = desc("influx_write_duration_seconds", "Duration of InfluxDB write requests, every attempt.")
	influxRequests = desc("influx_write_requests_total", "InfluxDB write requests by status class (2xx, 4xx, 429, 5xx, network).", "class")
	influxRetries  = desc("influx_write_retries_total", "InfluxDB write requests that failed and were retried, by status class.", "class")
	influxPoints   = desc("influx_points_written_total", "Points InfluxDB answered 2xx for.")

	dlBytes     = desc("dead_letter_store_bytes", "Bytes of dead-letter segment files on disk (bounded by deadletters.max_bytes).")
	dlLetters   = desc("dead_letter_store_letters", "Dead letters on disk.")
	dlDropped   = desc("dead_letters_dropped_total", "Dead letters removed, oldest first, because the store reached deadletters.max_bytes.")
	dlCorrupt   = desc("dead_letters_corrupt_records_total", "Dead-letter records skipped as torn or damaged (found at start, or left by a write that failed part-way).")
	dlQueueFull = desc("dead_letters_queue_full_total", "Dead letters refused because the write queue was full (MQTT messages stay unacknowledged for redelivery; UDP frames are lost).")
	dlLost      = desc("dead_letters_lost_total", "Dead letters taken that never reached the disk: too large for a record, or still failing to write at shutdown.")

	pipelineEvents = desc("pipeline_events_total", "Pipeline counters by event name (uplinks, points_written, warnings, local_time, lorawan.duplicates, …).", "event")
	devicesGauge   = desc("devices", "Devices by state: registered in the registry, or unknown (sent uplinks, not registered).", "state")

	gatewaysGauge   = desc("gateways", "Gateways by state: reporting, silent (no stats for gateways.silent_factor stats intervals), or never_heard (configured, no stats yet).", "state")
	gatewayLastSeen = desc("gateway_last_seen_timestamp_seconds", "Unix time of the gateway's latest stats message; alert on time() minus it.", "gateway_id")
	gatewaySilent   = desc("gateway_silent", "1 while the gateway is silent (no stats for gateways.silent_factor stats intervals), else 0.", "gateway_id")

	stateEntries   = desc("state_entries", "Entries of an in-memory table that grows with input (health, unknown_devices, unknown_series, lorawan_dedup).", "table")
	stateLimit     = desc("state_limit", "The most entries a table keeps; health: unregistered devices, on top of every registered one.", "table")
	stateEvictions = desc("state_evictions_total", "Entries a full table evicted (the least recently heard, or the oldest) to stay within its limit.", "table")

	healthSyncs    = desc("health_syncs_total", "Exchanges of device health with the other instances through PostgreSQL, by result (ok, failed); only with a shared registry.", "result")
	healthSyncLast = desc("health_sync_last_success_timestamp_seconds", "Unix time of the last complete exchange of device health (0 before the first): while it lags, health lacks the other instances' uplinks.")
	healthPending  = desc("health_sync_pending_devices", "Devices whose health changed and waits for the next exchange.")
	healthOverflow = desc("health_frames_overflow_total", "Frames left out of a device-hour's frame-counter set, which holds at most 4,096 counters (made-up counters).")
)

// stateCollector reads the daemon's state when Prometheus scrapes.
type stateCollector struct{ m *Metrics }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{sourceConnected, spoolBytes, spoolSegments, spoolPending, spoolAge, spoolDropRecs,
		spoolDropB, spoolCorrupt, spoolSyncs,
		dlBytes, dlLetters, dlDropped, dlCorrupt, dlQueueFull, dlLost, influxLatency, influxRequests, influxRetries, influxPoints, pipelineEvents, devicesGauge,
		stateEntries, stateLimit, stateEvictions, gatewaysGauge, gatewayLastSeen, gatewaySilent, healthSyncs, healthSyncLast, healthPending, healthOverflow} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	opt := c.m.opt
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	for _, s := range opt.Sources {
		if s.Ready != nil {
			gauge(sourceConnected, b2f(s.Ready()), s.Name)
		}
	}
	if opt.Spool != nil {
		st := opt.Spool()
		gauge(spoolBytes, float64(st.Bytes))
		gauge(spoolSegments, float64(st.Segments))
		gauge(spoolPending, float64(st.Pending))
		gauge(spoolAge, st.OldestAge.Seconds())
		counter(spoolDropRecs, float64(st.DroppedRecords))
		counter(spoolDropB, float64(st.DroppedBytes))
		counter(spoolCorrupt, float64(st.CorruptRecords))
		counter(spoolSyncs, float64(st.Syncs))
	}
	if opt.DeadLetterStore != nil {
		st := opt.DeadLetterStore()
		gauge(dlBytes, float64(st.Bytes))
		gauge(dlLetters, float64(st.Letters))
		counter(dlDropped, float64(st.Dropped))
		counter(dlCorrupt, float64(st.Corrupt))
		counter(dlQueueFull, float64(st.QueueFull))
		counter(dlLost, float64(st.Lost))
	}
	if opt.Influx != nil {
		st := opt.Influx()
		ch <- latencyHistogram(st)
		classCounters(ch, influxRequests, st.Requests)
		classCounters(ch, influxRetries, st.Retries)
		counter(influxPoints, float64(st.Points))
	}
	if opt.Counters != nil {
		for name, v := range opt.Counters() {
			counter(pipelineEvents, float64(v), name)
		}
	}
	if opt.Devices != nil {
		reg, unk := opt.Devices()
		gauge(devicesGauge, float64(reg), "registered")
		gauge(devicesGauge, float64(unk), "unknown")
	}
	if opt.Gateways != nil {
		states := map[string]int{"reporting": 0, "silent": 0, "never_heard": 0}
		for _, g := range opt.Gateways() {
			switch {
			case g.LastSeen.IsZero():
				states["never_heard"]++
				continue
			case g.Silent:
				states["silent"]++
			default:
				states["reporting"]++
			}
			gauge(gatewayLastSeen, float64(g.LastSeen.UnixNano())/1e9, g.ID)
			gauge(gatewaySilent, b2f(g.Silent), g.ID)
		}
		for st, n := range states {
			gauge(gatewaysGauge, float64(n), st)
		}
	}
	if opt.State != nil {
		for _, t := range opt.State() {
			gauge(stateEntries, float64(t.Entries), t.Name)
			gauge(stateLimit, float64(t.Limit), t.Name)
			counter(stateEvictions, float64(t.Evictions), t.Name)
		}
	}
	if opt.HealthSync != nil {
		if st, ok := opt.HealthSync(); ok {
			counter(healthSyncs, float64(st.Syncs), "ok")
			counter(healthSyncs, float64(st.Failures), "failed")
			last := 0.0
			if !st.LastSync.IsZero() {
				last = float64(st.LastSync.UnixNano()) / 1e9
			}
			gauge(healthSyncLast, last)
			gauge(healthPending, float64(st.Pending))
			counter(healthOverflow, float64(st.Overflow))
		}
	}
}

func latencyHistogram(st influx.WriteStats) prometheus.Metric {
	buckets := make(map[float64]uint64, len(influx.LatencyBuckets))
	var cum uint64
	for i, le := range influx.LatencyBuckets {
		if i < len(st.LatencyCounts) {
			cum += st.LatencyCounts[i]
		}
		buckets[le] = cum
	}
	total := cum
	if n := len(st.LatencyCounts); n > len(influx.LatencyBuckets) {
		total += st.LatencyCounts[n-1]
	}
	return prometheus.MustNewConstHistogram(influxLatency, total, st.LatencySum, buckets)
}

// classCounters emits one counter per status class: the fixed ones always,
// others when counted.
func classCounters(ch chan<- prometheus.Metric, d *prometheus.Desc, counts map[string]uint64) {
	classes := append([]string(nil), writeClasses...)
	for c := range counts {
		if !slices.Contains(classes, c) {
			classes = append(classes, c)
		}
	}
	slices.Sort(classes)
	for _, c := range classes {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(counts[c]), c)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
