package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/internal/testserver"
)

// TestLatencyProbe: samples are every (N/500)-th publish; a sample is
// settled once its device has a point within its millisecond, at the
// millisecond (sensorgate) or at its own time (Telegraf), and not before;
// the quantiles are of the settled samples.
func TestLatencyProbe(t *testing.T) {
	db := testserver.StartInfluxDB(t)
	p := newLatencyProbe(db, 1000) // every 2nd
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.UTC)
	for i := range 6 {
		p.published(fmt.Sprintf("e%d", i), t0.Add(time.Duration(i)*time.Second))
	}
	if len(p.pending) != 3 {
		t.Fatalf("%d samples pending, want 3 (every 2nd of 6)", len(p.pending))
	}
	// e1 at its millisecond, e3 at its own time, e5 not yet; e0 (not a
	// sample) and e5 a millisecond too early.
	lines := []string{
		fmt.Sprintf("uplink,dev_eui=e1 f_cnt=1i %d", t0.Add(time.Second).Truncate(time.Millisecond).UnixNano()),
		fmt.Sprintf("uplink,dev_eui=e3 f_cnt=1i %d", t0.Add(3*time.Second).UnixNano()),
		fmt.Sprintf("uplink,dev_eui=e0 f_cnt=1i %d", t0.UnixNano()),
		fmt.Sprintf("uplink,dev_eui=e5 f_cnt=1i %d", t0.Add(5*time.Second-time.Millisecond).UnixNano()),
	}
	write := func(body string) {
		resp, err := http.Post(db.URL()+"/write?"+url.Values{"db": {db.DB}}.Encode(), "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("write: %s", resp.Status)
		}
	}
	write(strings.Join(lines, "\n"))
	if err := p.poll(); err != nil {
		t.Fatal(err)
	}
	if _, _, n, err := p.result(); err != nil || n != 2 || len(p.pending) != 1 || p.pending[0].eui != "e5" {
		t.Fatalf("settled %d (err %v), pending %+v; want e1 and e3 settled, e5 pending", n, err, p.pending)
	}
	write(fmt.Sprintf("uplink,dev_eui=e5 f_cnt=1i %d", t0.Add(5*time.Second).Truncate(time.Millisecond).UnixNano()))
	if err := p.poll(); err != nil {
		t.Fatal(err)
	}
	if p50, p99, n, err := p.result(); err != nil || n != 3 || len(p.pending) != 0 || p50 <= 0 || p99 < p50 {
		t.Fatalf("p50 %v p99 %v over %d (err %v), pending %+v; want all 3 settled", p50, p99, n, err, p.pending)
	}
}

func TestQuantile(t *testing.T) {
	d := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if got := quantile(d, 0.5); got != 5 {
		t.Errorf("p50 = %v, want 5", got)
	}
	if got := quantile(d, 0.99); got != 10 {
		t.Errorf("p99 = %v, want 10", got)
	}
	if got := quantile(d[:1], 0.99); got != 1 {
		t.Errorf("p99 of one = %v, want it", got)
	}
}
