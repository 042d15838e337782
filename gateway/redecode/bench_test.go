package redecode

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/influx"
)

// BenchmarkRedecode re-decodes 100,000 stored uplinks after a decoder
// fix, against a real InfluxDB 1.8 on this machine, and counts until
// InfluxDB holds the new points (the spool delivered): uplinks/s is the
// rate an operator sees. The first iteration fixes the history, later
// ones do the same work again (delete, read, write: idempotent).
//
//	go test -run '^$' -bench BenchmarkRedecode -benchtime 3x ./gateway/redecode/
func BenchmarkRedecode(b *testing.B) {
	const uplinks = 100_000
	for _, devs := range []int{100, 1000} {
		b.Run(fmt.Sprintf("uplinks=%d/devices=%d", uplinks, devs), func(b *testing.B) {
			r := newRig(b, devs, "meter")
			rs := r.readings(uplinks)
			r.store(b, r.pipeline("meter", beforeFix), rs)
			run := r.runner(r.pipeline("meter", afterFix), nil)
			run.MaxChunk, run.WriteBatch = 0, 0 // the defaults
			req := Request{Since: t0, Until: t0.Add(time.Duration(uplinks+1) * time.Minute)}
			b.ResetTimer()
			for range b.N {
				rep, err := run.Run(context.Background(), req, nil)
				if err != nil {
					b.Fatal(err)
				}
				r.settle()
				if rep.Progress.UplinksDone != uplinks {
					b.Fatalf("%d uplinks re-decoded, want %d", rep.Progress.UplinksDone, uplinks)
				}
			}
			b.ReportMetric(float64(uplinks*b.N)/b.Elapsed().Seconds(), "uplinks/s")
		})
	}
}

// store writes the readings' points as the live pipeline builds them
// straight into InfluxDB, 5,000 lines a request: a fast way to a large
// history.
func (r *rig) store(b *testing.B, p *gateway.Pipeline, rs []reading) {
	b.Helper()
	var buf []byte
	n := 0
	flush := func() {
		resp, err := http.Post(r.db.URL()+"/write?db="+r.db.DB+"&precision=ns", "text/plain", bytes.NewReader(buf))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			b.Fatalf("write: %s", resp.Status)
		}
		buf, n = buf[:0], 0
	}
	for _, rd := range rs {
		pts, _, err := p.Points(gateway.Uplink{Source: "cs", DevEUI: rd.eui, FPort: 2, HasFPort: true, Payload: rd.payload, Time: rd.t})
		if err != nil {
			b.Fatal(err)
		}
		for _, pt := range pts {
			if buf, err = influx.AppendPoint(buf, pt); err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n >= 5000 {
			flush()
		}
	}
	if n > 0 {
		flush()
	}
}
