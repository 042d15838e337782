package metrics

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/influx"
	"github.com/sensorgate/sensorgate/gateway/spool"
)

type fakeStore struct {
	err  error
	puts int
}

func (f *fakeStore) Put(context.Context, gateway.DeadLetter) error {
	if f.err != nil {
		return f.err
	}
	f.puts++
	return nil
}

// fixture is a Metrics over fixed state and a settable clock.
func fixture(now *time.Time) *Metrics {
	return New(Options{
		Sources: []Source{{Name: "cs", Ready: func() bool { return true }}, {Name: "udp"}},
		Spool: func() spool.Stats {
			return spool.Stats{Bytes: 4096, Segments: 1, Pending: 3, OldestAge: 1500 * time.Millisecond, DroppedRecords: 2, Syncs: 9}
		},
		Influx: func() influx.WriteStats {
			return influx.WriteStats{
				Requests: map[string]uint64{"2xx": 5, "5xx": 1}, Retries: map[string]uint64{"5xx": 1}, Points: 40,
				LatencyCounts: []uint64{1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3}, LatencySum: 100,
			}
		},
		Counters:   func() map[string]uint64 { return map[string]uint64{"uplinks": 7, "warnings": 1} },
		Devices:    func() (int, int) { return 10, 2 },
		KnownModel: func(m string) bool { return m == "elsys-ers" },
		Now:        func() time.Time { return *now },
	})
}

// gather returns every sample as "name{labels}" → value.
func gather(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := f.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = s.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = s.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key+"_count"] = float64(s.GetHistogram().GetSampleCount())
				out[key+"_sum"] = s.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

func TestMetrics(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	m := fixture(&now)
	decodeErr := &gateway.Rejection{Reason: gateway.ReasonDecode, Err: errors.New("bad")}
	m.Observe(gateway.Uplink{Source: "cs"}, gateway.Seen{})
	m.Observe(gateway.Uplink{Source: "cs"}, gateway.Seen{})
	m.Observe(gateway.Uplink{Source: "cs"}, gateway.Seen{Rejection: decodeErr, Model: "elsys-ers"})
	m.Observe(gateway.Uplink{Source: "cs"}, gateway.Seen{Rejection: decodeErr, Model: "no-such-model"})
	m.Observe(gateway.Uplink{Source: "not-configured"}, gateway.Seen{})

	store := &fakeStore{}
	dl := m.DeadLetters(store)
	ctx := context.Background()
	for _, l := range []gateway.DeadLetter{
		{Source: "cs", Reason: gateway.ReasonMalformed},
		{Source: "udp", Reason: gateway.ReasonBadMIC},
		{Source: "elsewhere", Reason: "invented"},
		{Source: "cs", Reason: gateway.ReasonDeviceMismatch},
		{Source: "cs", Reason: gateway.ReasonBadTime},
	} {
		if err := dl.Put(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	store.err = errors.New("disk full")
	if err := dl.Put(ctx, gateway.DeadLetter{Source: "cs", Reason: gateway.ReasonMalformed}); err == nil {
		t.Fatal("store error not passed on")
	}

	got := gather(t, m)
	want := map[string]float64{
		"sensorgate_uplinks_total{result=written,source=cs}":              2,
		"sensorgate_uplinks_total{result=dead_letter,source=cs}":          2,
		"sensorgate_uplinks_total{result=written,source=other}":           1,
		"sensorgate_uplinks_total{result=written,source=udp}":             0,
		"sensorgate_decode_errors_total{model=elsys-ers}":                 1,
		"sensorgate_decode_errors_total{model=unknown}":                   1,
		"sensorgate_dead_letters_total{reason=malformed,source=cs}":       1, // the failed Put is not counted
		"sensorgate_dead_letters_total{reason=bad_mic,source=udp}":        1,
		"sensorgate_dead_letters_total{reason=other,source=other}":        1,
		"sensorgate_dead_letters_total{reason=device_mismatch,source=cs}": 1,
		"sensorgate_dead_letters_total{reason=bad_time,source=cs}":        1,
		"sensorgate_dead_letters_total{reason=decode_error,source=udp}":   0,
		"sensorgate_source_connected{source=cs}":                          1,
		"sensorgate_spool_bytes{}":                                        4096,
		"sensorgate_spool_pending_records{}":                              3,
		"sensorgate_spool_oldest_age_seconds{}":                           1.5,
		"sensorgate_spool_dropped_records_total{}":                        2,
		"sensorgate_spool_syncs_total{}":                                  9,
		"sensorgate_influx_write_requests_total{class=2xx}":               5,
		"sensorgate_influx_write_requests_total{class=429}":               0,
		"sensorgate_influx_write_retries_total{class=5xx}":                1,
		"sensorgate_influx_points_written_total{}":                        40,
		"sensorgate_influx_write_duration_seconds{}_count":                6,
		"sensorgate_influx_write_duration_seconds{}_sum":                  100,
		"sensorgate_pipeline_events_total{event=uplinks}":                 7,
		"sensorgate_devices{state=registered}":                            10,
		"sensorgate_devices{state=unknown}":                               2,
	}
	for k, v := range want {
		g, ok := got[k]
		if !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if _, ok := got["sensorgate_source_connected{source=udp}"]; ok {
		t.Error("a source without a connection has a connected gauge")
	}
	if _, ok := got["go_goroutines{}"]; !ok {
		t.Error("Go runtime collector missing")
	}

	// The handler serves the text format.
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 || !strings.Contains(string(body), `sensorgate_uplinks_total{result="written",source="cs"} 2`) ||
		!strings.Contains(string(body), `sensorgate_influx_write_duration_seconds_bucket{le="0.01"} 3`) {
		t.Errorf("GET /metrics %d:\n%s", rec.Code, body)
	}
}

func TestThroughput(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	m := fixture(&now)
	if tp := m.Throughput(); tp.LastMinute != 0 || tp.PerSecond != 0 {
		t.Fatalf("fresh: %+v", tp)
	}
	// 30 s after start: 60 uplinks, 2 per second over the uptime.
	for i := 0; i < 30; i++ {
		now = now.Add(time.Second)
		m.Observe(gateway.Uplink{Source: "cs"}, gateway.Seen{})
		m.Observe(gateway.Uplink{Source: "cs"}, gateway.Seen{})
	}
	if tp := m.Throughput(); tp.LastMinute != 60 || tp.PerSecond != 2 || tp.Total != 60 {
		t.Fatalf("after 30 s: %+v", tp)
	}
	// 50 s later the first 20 seconds left the window.
	now = now.Add(50 * time.Second)
	if tp := m.Throughput(); tp.LastMinute != 20 || tp.PerSecond != 20.0/60 {
		t.Fatalf("after 80 s: %+v", tp)
	}
	// A slot is reused a minute later, from zero.
	m.Observe(gateway.Uplink{Source: "cs"}, gateway.Seen{})
	if tp := m.Throughput(); tp.LastMinute != 21 {
		t.Fatalf("reused slot: %+v", tp)
	}
	now = now.Add(2 * time.Minute)
	if tp := m.Throughput(); tp.LastMinute != 0 || tp.Total != 61 {
		t.Fatalf("idle: %+v", tp)
	}
}

// TestStateTables: each bounded table's size, limit and evictions are
// exposed by table.
func TestStateTables(t *testing.T) {
	m := New(Options{State: func() []StateTable {
		return []StateTable{{Name: "health", Entries: 120, Limit: 100, Evictions: 7}, {Name: "unknown_devices", Entries: 100, Limit: 100, Evictions: 9}}
	}})
	got := gather(t, m)
	for k, want := range map[string]float64{
		"sensorgate_state_entries{table=health}":                  120,
		"sensorgate_state_limit{table=health}":                    100,
		"sensorgate_state_evictions_total{table=health}":          7,
		"sensorgate_state_evictions_total{table=unknown_devices}": 9,
		"sensorgate_state_entries{table=unknown_devices}":         100,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
}
