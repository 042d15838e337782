package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/decoders/sandbox"
	"github.com/sensorgate/sensorgate/decoders/script"
	"github.com/sensorgate/sensorgate/gateway/httpapi"
)

// newCodecPool starts nothing yet: it returns the pool the scripts
// Watcher registers codecs with when decoders.sandbox is workers (nil
// for in-process). Workers are this binary, re-executed (main.go
// dispatches them before anything else).
func newCodecPool(cfg *config.Config, w *script.Watcher, log zerolog.Logger) *sandbox.Pool {
	if cfg.Decoders.Sandbox != config.SandboxWorkers {
		return nil
	}
	pool := sandbox.New(sandbox.Config{
		Workers: cfg.Decoders.Workers, CallTimeout: cfg.Decoders.WorkerTimeout, ScriptTimeout: cfg.Decoders.Timeout,
		MemoryLimit: cfg.Decoders.WorkerMemory, MaxOutput: cfg.Decoders.MaxOutput, Logger: log,
	})
	w.LoadWith(func(name string, src []byte) (script.Loaded, error) {
		c, err := pool.Load(name, src)
		if err != nil {
			return nil, err
		}
		return c, nil
	})
	return pool
}

// codecsCheck is /readyz's "codecs" entry. It is advisory: a codec that
// overruns its limits costs its own uplinks dead letters while every
// other device's data flows, so the daemon stays ready, and the entry
// says what went wrong in the last minute. Only workers that do not
// start at all (every script-decoded uplink fails) make it not ready.
func (d *Daemon) codecsCheck() []httpapi.Check {
	if d.codecs == nil {
		return nil
	}
	pool := d.codecs
	return []httpapi.Check{
		{Name: "codecs", Check: func(context.Context) error {
			if err := pool.Health().StartErr; err != nil {
				return err
			}
			return nil
		}},
		{Name: "codec_limits", Advisory: true, Check: func(context.Context) error {
			h := pool.Health()
			if !h.Degraded() {
				return nil
			}
			var parts []string
			for _, r := range sandbox.Reasons() {
				if n := h.Killed[r]; n > 0 {
					parts = append(parts, fmt.Sprintf("%d killed (%s)", n, r))
				}
			}
			if h.Timeouts > 0 {
				parts = append(parts, fmt.Sprintf("%d timed out", h.Timeouts))
			}
			return fmt.Errorf("degraded: in the last minute codec calls were %s, codecs %s; their uplinks are dead letters (reason decode_error): fix the codecs, then replay",
				strings.Join(parts, ", "), strings.Join(h.Codecs, ", "))
		}},
	}
}

// codecCollector exports the pool's counters.
type codecCollector struct{ pool *sandbox.Pool }

var (
	codecKilledDesc = prometheus.NewDesc("sensorgate_codec_workers_killed_total",
		"Codec worker processes killed or dead while running a codec, by reason (timeout: past decoders.worker_timeout; memory: past decoders.worker_memory; crash; protocol).",
		[]string{"reason"}, nil)
	codecTimeoutsDesc = prometheus.NewDesc("sensorgate_codec_timeouts_total",
		"Codec calls a worker interrupted itself after decoders.timeout.", nil, nil)
	codecStartedDesc = prometheus.NewDesc("sensorgate_codec_workers_started_total",
		"Codec worker processes started (the first ones and every replacement).", nil, nil)
	codecLiveDesc = prometheus.NewDesc("sensorgate_codec_workers",
		"Codec worker processes running.", nil, nil)
	codecHeldDesc = prometheus.NewDesc("sensorgate_codec_worker_codecs",
		"Codec versions each worker holds (worker: its slot, 0 to decoders.workers-1): compiled, and of those run (decoded an uplink there, so its top level is also kept frozen in the worker's locked runtime).",
		[]string{"worker", "state"}, nil)
)

func (c codecCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- codecKilledDesc
	ch <- codecTimeoutsDesc
	ch <- codecStartedDesc
	ch <- codecLiveDesc
	ch <- codecHeldDesc
}

func (c codecCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.pool.Stats()
	for _, r := range sandbox.Reasons() {
		ch <- prometheus.MustNewConstMetric(codecKilledDesc, prometheus.CounterValue, float64(st.Killed[r]), r.String())
	}
	ch <- prometheus.MustNewConstMetric(codecTimeoutsDesc, prometheus.CounterValue, float64(st.Timeouts))
	ch <- prometheus.MustNewConstMetric(codecStartedDesc, prometheus.CounterValue, float64(st.Started))
	ch <- prometheus.MustNewConstMetric(codecLiveDesc, prometheus.GaugeValue, float64(st.Live))
	for _, w := range st.Workers {
		slot := strconv.Itoa(w.Slot)
		ch <- prometheus.MustNewConstMetric(codecHeldDesc, prometheus.GaugeValue, float64(w.Compiled), slot, "compiled")
		ch <- prometheus.MustNewConstMetric(codecHeldDesc, prometheus.GaugeValue, float64(w.Run), slot, "run")
	}
}
