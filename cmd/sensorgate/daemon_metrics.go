package main

import (
	"context"
	"net/http"
	"time"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/deadletter"
	"github.com/sensorgate/sensorgate/gateway/httpapi"
	"github.com/sensorgate/sensorgate/gateway/influx"
	"github.com/sensorgate/sensorgate/gateway/metrics"
	"github.com/sensorgate/sensorgate/gateway/spool"
	"github.com/sensorgate/sensorgate/gateways"
)

// newMetrics builds the Prometheus registry. NewDaemon calls it before
// the sources exist, because the dead-letter store they write to is
// wrapped for counting; everything else (sources, spool, sink, ops) is
// read through d when Prometheus scrapes, by then all of it is built.
func (d *Daemon) newMetrics(cfg *config.Config, decs *decoders.Registry) *metrics.Metrics {
	var sources []metrics.Source
	for i, sc := range cfg.Sources {
		s := metrics.Source{Name: sc.Name()}
		if sc.MQTT != nil {
			s.Ready = func() bool { return d.sourceReady(i) }
		}
		sources = append(sources, s)
	}
	return metrics.New(metrics.Options{
		Sources: sources,
		Spool: func() spool.Stats {
			if d.spool == nil {
				return spool.Stats{}
			}
			return d.spool.Stats()
		},
		Influx: func() influx.WriteStats {
			if d.influx == nil {
				return influx.WriteStats{}
			}
			return d.influx.Stats()
		},
		Counters: d.Counters.Snapshot,
		DeadLetterStore: func() deadletter.Stats {
			if d.dl == nil {
				return deadletter.Stats{}
			}
			return d.dl.Stats()
		},
		Devices: func() (registered, unknown int) {
			if d.ops != nil {
				unknown = d.ops.unknowns.Len()
			}
			return d.Devices.Len(), unknown
		},
		State: func() []metrics.StateTable { return d.stateTables(cfg) },
		Gateways: func() []metrics.GatewayState {
			if d.ops == nil || d.ops.gateways == nil {
				return nil
			}
			var out []metrics.GatewayState
			d.ops.gateways.Each(time.Now(), func(h gateways.Health) {
				g := metrics.GatewayState{ID: h.ID.String(), Silent: h.Silent}
				if h.LastSeen != nil {
					g.LastSeen = *h.LastSeen
				}
				out = append(out, g)
			})
			return out
		},
		HealthSync: func() (devices.HealthShareStats, bool) {
			if d.ops == nil {
				return devices.HealthShareStats{}, false
			}
			return d.ops.health.ShareStats()
		},
		Instance:   sharedInstanceID(cfg), // instances.go
		KnownModel: func(m string) bool { _, ok := decs.Lookup(m); return ok },
	})
}

// stateTables are the in-memory tables that grow with input, for
// /metrics: device health, unknown devices, the admitted unregistered
// devices, and each raw-frame source's dedup table.
func (d *Daemon) stateTables(cfg *config.Config) []metrics.StateTable {
	var out []metrics.StateTable
	if o := d.ops; o != nil {
		n, _, evicted := o.health.Stats()
		out = append(out,
			metrics.StateTable{Name: "health", Entries: n, Limit: cfg.Devices.MaxUnknown, Evictions: evicted},
			metrics.StateTable{Name: "unknown_devices", Entries: o.unknowns.Len(), Limit: cfg.Devices.MaxUnknown, Evictions: o.unknowns.Dropped()})
		admitted := 0
		for _, s := range o.series.Stats() {
			admitted += s.Admitted
		}
		out = append(out, metrics.StateTable{Name: "unknown_series", Entries: admitted, Limit: cfg.Devices.UnknownMaxSeries * len(cfg.Sources)})
		if o.gateways != nil {
			n, limit, evicted, _ := o.gateways.Stats(time.Now())
			out = append(out, metrics.StateTable{Name: "gateways", Entries: n, Limit: limit, Evictions: evicted})
		}
	}
	dedup := metrics.StateTable{Name: "lorawan_dedup"}
	for _, r := range d.frames {
		n, evicted := r.frames.DedupStats()
		dedup.Entries += n
		dedup.Evictions += evicted
		dedup.Limit += r.frames.Config().DedupMaxFrames
	}
	if len(d.frames) > 0 {
		out = append(out, dedup)
	}
	return out
}

// metricsHandler serves GET /metrics; nil (answered 503) without metrics.
func (d *Daemon) metricsHandler() http.Handler {
	if d.metrics == nil {
		return nil
	}
	return d.metrics.Handler()
}

// sourceReady reports whether source i is connected (a source without a
// Ready method never is).
func (d *Daemon) sourceReady(i int) bool {
	if i >= len(d.sources) {
		return false
	}
	r, ok := d.sources[i].(interface{ Ready() bool })
	return ok && r.Ready()
}

// status is the overview of GET /api/v1/status and the status page; the
// API adds the device counts.
func (d *Daemon) status(cfg *config.Config) httpapi.StatusFunc {
	started := time.Now()
	return func(context.Context) httpapi.Status {
		st := httpapi.Status{Version: version, Started: started}
		for i, sc := range cfg.Sources {
			s := httpapi.SourceStatus{Name: sc.Name(), Type: sc.Type}
			if sc.MQTT != nil {
				s.Format = sc.MQTT.Format
				connected := d.sourceReady(i)
				s.Connected = &connected
			} else {
				s.Format = sc.Type
			}
			st.Sources = append(st.Sources, s)
		}
		if d.metrics != nil {
			tp := d.metrics.Throughput()
			st.Throughput = httpapi.ThroughputStatus{LastMinute: tp.LastMinute, PerSecond: tp.PerSecond, Total: tp.Total}
			st.DeadLetters = d.metrics.DeadLetterCount()
		}
		st.Instances = d.ops.instances() // instances.go
		if len(st.Instances) > 0 {
			st.Instance = sharedInstanceID(cfg)
		}
		if d.spool != nil {
			sp := d.spool.Stats()
			st.Spool = &httpapi.SpoolStatus{Bytes: sp.Bytes, Records: sp.Pending, OldestAge: sp.OldestAge.Seconds(), DroppedRecords: sp.DroppedRecords}
		}
		if d.influx != nil {
			w := d.influx.Stats()
			st.Influx = &httpapi.InfluxStatus{Points: w.Points, Requests: w.Requests, Retries: w.Retries, LastError: w.LastError}
			if !w.LastErrorTime.IsZero() {
				st.Influx.LastErrorTime = &w.LastErrorTime
			}
		}
		return st
	}
}

// observers fans the pipeline's one Observer hook out to several: device
// health and unknown devices, and the metrics.
type observers []gateway.Observer

var _ gateway.Observer = observers(nil)

func (list observers) Observe(up gateway.Uplink, seen gateway.Seen) {
	for _, o := range list {
		o.Observe(up, seen)
	}
}
