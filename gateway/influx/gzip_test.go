package influx

import (
	"context"
	"testing"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// TestSinkGzip: each value of influx.gzip sends (or does not send)
// Content-Encoding: gzip to a real InfluxDB, which stores the points
// either way. The proxy listens on 127.0.0.1, so auto means plain.
func TestSinkGzip(t *testing.T) {
	t.Parallel()
	db := testserver.StartInfluxDB(t)
	tests := []struct {
		gzip     string
		wantGzip bool
	}{
		{"", false}, // the default, auto, over loopback
		{GzipAuto, false},
		{GzipAlways, true},
		{GzipNever, false},
		{"true", true},
		{"false", false},
	}
	for i, tt := range tests {
		t.Run(tt.gzip, func(t *testing.T) {
			px := newProxy(t, db.URL(), nil)
			cfg := cfgFor(px.URL, db.Bucket())
			cfg.Gzip = tt.gzip
			s, _ := startSink(t, cfg, fastTiming)
			measurement := "gzip_" + string(rune('a'+i))
			pts := make([]gateway.Point, 3)
			for j := range pts {
				pts[j] = point("d1", j, float64(j))
				pts[j].Measurement = measurement
			}
			if err := s.Write(context.Background(), pts); err != nil {
				t.Fatal(err)
			}
			reqs := px.Requests()
			if len(reqs) == 0 {
				t.Fatal("no write request reached the proxy")
			}
			for _, r := range reqs {
				if r.Gzip != tt.wantGzip {
					t.Errorf("request %d: Content-Encoding gzip = %v, want %v", r.N, r.Gzip, tt.wantGzip)
				}
			}
			if n := db.Count(t, measurement); n != len(pts) {
				t.Errorf("InfluxDB holds %d points, want %d", n, len(pts))
			}
		})
	}
}

// TestGzipAuto: auto compresses unless the host is this machine, named
// without a lookup.
func TestGzipAuto(t *testing.T) {
	tests := []struct {
		url  string
		want bool
	}{
		{"http://127.0.0.1:8086", false},
		{"http://127.3.2.1:8086", false},
		{"http://localhost:8086", false},
		{"http://LOCALHOST", false},
		{"http://[::1]:8086", false},
		{"https://influx.example.org", true},
		{"http://10.1.2.3:8086", true},
		{"http://[fd00::1]:8086", true},
		{"http://localhost.example.org:8086", true},
	}
	for _, tt := range tests {
		c := Config{URL: tt.url, Bucket: "b"}.withDefaults()
		if got := c.compress(); got != tt.want {
			t.Errorf("gzip auto for %s = %v, want %v", tt.url, got, tt.want)
		}
	}
}
