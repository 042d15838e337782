package main

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// scrapeMetrics reads /metrics (no token: it is public) into "name{labels}" →
// value, labels as the exposition writes them (sorted by name).
func scrapeMetrics(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMetricsEndToEnd scrapes a running daemon after a day of uplinks:
// every documented family is there, with the counts the stream implies.
func TestMetricsEndToEnd(t *testing.T) {
	r := startObservedRig(t)
	m := scrapeMetrics(t, r.base)
	src := `source="city-chirpstack"`
	exact := map[string]float64{
		`sensorgate_uplinks_total{result="written",` + src + `}`:                 float64(r.written),
		`sensorgate_uplinks_total{result="dead_letter",` + src + `}`:             float64(r.decodeErrors),
		`sensorgate_decode_errors_total{model="cayenne-lpp"}`:                    float64(r.decodeErrors),
		`sensorgate_dead_letters_total{reason="decode_error",` + src + `}`:       float64(r.decodeErrors),
		`sensorgate_dead_letters_total{reason="malformed",` + src + `}`:          1,
		`sensorgate_dead_letters_total{reason="rejected_by_influx",` + src + `}`: 0,
		`sensorgate_source_connected{` + src + `}`:                               1,
		`sensorgate_spool_pending_records`:                                       0,
		`sensorgate_spool_oldest_age_seconds`:                                    0,
		`sensorgate_spool_dropped_records_total`:                                 0,
		`sensorgate_influx_write_requests_total{class="5xx"}`:                    0,
		`sensorgate_influx_write_retries_total{class="network"}`:                 0,
		`sensorgate_pipeline_events_total{event="uplinks"}`:                      float64(r.written + r.decodeErrors),
		`sensorgate_pipeline_events_total{event="unknown_devices_accepted"}`:     float64(unknownUplinks(t, r, r.stranger.EUI.String())),
		`sensorgate_devices{state="registered"}`:                                 4,
		`sensorgate_devices{state="unknown"}`:                                    1,
	}
	for k, want := range exact {
		if got, ok := m[k]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, want)
		}
	}
	positive := []string{
		`sensorgate_spool_bytes`, `sensorgate_spool_segments`,
		`sensorgate_influx_write_requests_total{class="2xx"}`,
		`sensorgate_influx_points_written_total`,
		`sensorgate_influx_write_duration_seconds_count`,
		`sensorgate_influx_write_duration_seconds_sum`,
		`sensorgate_influx_write_duration_seconds_bucket{le="+Inf"}`,
		`go_goroutines`, `process_resident_memory_bytes`,
	}
	for _, k := range positive {
		if m[k] <= 0 {
			t.Errorf("%s = %v, want > 0", k, m[k])
		}
	}
	if m[`sensorgate_influx_write_duration_seconds_bucket{le="+Inf"}`] != m[`sensorgate_influx_write_duration_seconds_count`] {
		t.Error("latency histogram: +Inf bucket differs from the count")
	}
	if t.Failed() {
		for k, v := range m {
			if strings.HasPrefix(k, "sensorgate_") {
				t.Logf("%s %v", k, v)
			}
		}
	}
}

// unknownUplinks is how many uplinks of a device the daemon took.
func unknownUplinks(t *testing.T, r *observedRig, eui string) int {
	t.Helper()
	api := opsAPI{t: t, base: r.base, token: r.token}
	for _, u := range api.call("GET", "/api/v1/unknown-devices", nil, 200)["devices"].([]any) {
		if d := u.(map[string]any); d["dev_eui"] == eui {
			return int(d["count"].(float64))
		}
	}
	t.Fatalf("%s is not an unknown device", eui)
	return 0
}
