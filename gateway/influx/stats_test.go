package influx

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

func TestStatusClass(t *testing.T) {
	for status, want := range map[int]string{0: "network", 204: "2xx", 301: "3xx", 400: "4xx", 404: "4xx", 429: "429", 500: "5xx", 503: "5xx"} {
		if got := StatusClass(status); got != want {
			t.Errorf("StatusClass(%d) = %q, want %q", status, got, want)
		}
	}
}

// TestSinkStats: two 503s then a 2xx through a real InfluxDB are counted
// as three requests, two retries, the points stored, and the latency
// histogram holds every request.
func TestSinkStats(t *testing.T) {
	t.Parallel()
	db := testserver.StartInfluxDB(t)
	px := newProxy(t, db.URL(), func(n, _ int) (int, http.Header) {
		if n < 2 {
			return http.StatusServiceUnavailable, nil
		}
		return 0, nil
	})
	s, _ := startSink(t, cfgFor(px.URL, db.Bucket()), fastTiming)
	pts := []gateway.Point{point("d1", 1, 1), point("d2", 2, 2), point("d3", 3, 3)}
	if err := s.Write(context.Background(), pts); err != nil {
		t.Fatal(err)
	}
	st := s.d.c.Stats()
	if st.Requests["5xx"] != 2 || st.Requests["2xx"] != 1 || st.Retries["5xx"] != 2 || len(st.Retries) != 1 {
		t.Errorf("requests %v retries %v, want 2 5xx and 1 2xx, 2 5xx retries", st.Requests, st.Retries)
	}
	if st.Points != uint64(len(pts)) {
		t.Errorf("points %d, want %d", st.Points, len(pts))
	}
	var n uint64
	for _, c := range st.LatencyCounts {
		n += c
	}
	if n != 3 || len(st.LatencyCounts) != len(LatencyBuckets)+1 || st.LatencySum <= 0 {
		t.Errorf("latency counts %v sum %v, want 3 requests", st.LatencyCounts, st.LatencySum)
	}
	if !strings.Contains(st.LastError, "HTTP 503") || time.Since(st.LastErrorTime) > time.Minute {
		t.Errorf("last error %q at %v", st.LastError, st.LastErrorTime)
	}
}
