package redecode

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/influx"
)

// BenchmarkRedecode re-decodes 100,000 stored uplinks after a decoder
// fix, against a real InfluxDB 1.8 on this machine, and counts until
// InfluxDB holds the new points (the spool delivered): uplinks/s is the
// rate an operator sees. The first iteration fixes the history, later
// ones do the same work again (idempotent). fix=renamed is a fix that
// renames and drops fields (meterV2: the old points must be deleted),
// fix=values one that changes only values (meterScaled: the new points
// overwrite the old ones). After the renamed fix the benchmark checks
// every value of the 100,000 uplinks and that no old field is left.
//
//	go test -run '^$' -bench BenchmarkRedecode -benchtime 1x ./gateway/redecode/
func BenchmarkRedecode(b *testing.B) {
	const uplinks = 100_000
	for _, fix := range []struct {
		name string
		decs decoderTable
	}{{"renamed", afterFix}, {"values", decoderTable{"meter": meterScaled}}} {
		for _, devs := range []int{100, 1000} {
			b.Run(fmt.Sprintf("fix=%s/uplinks=%d/devices=%d", fix.name, uplinks, devs), func(b *testing.B) {
				r := newRig(b, devs, "meter")
				rs := r.readings(uplinks)
				r.store(b, r.pipeline("meter", beforeFix), rs)
				ts := &timedStore{Store: testStore{r.client}}
				run := r.runner(r.pipeline("meter", fix.decs), ts)
				run.MaxChunk, run.WriteBatch = 0, 0 // the defaults
				req := Request{Since: t0, Until: t0.Add(time.Duration(uplinks+1) * time.Minute)}
				cpu := cpuSeconds(b, r.db.PID())
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
				b.StopTimer()
				if fix.name == "renamed" {
					// Every value corrected, no field of the old codec left.
					checkFixed(b, r, rs, reading{}, "meter")
				}
				b.ReportMetric(float64(uplinks*b.N)/b.Elapsed().Seconds(), "uplinks/s")
				b.ReportMetric((cpuSeconds(b, r.db.PID())-cpu)/float64(b.N), "influxd-cpu-s/op")
				for _, k := range []string{"delete", "uplinks", "check", "other"} {
					b.ReportMetric(ts.took[k].Seconds()/float64(b.N), k+"-s/op")
				}
			})
		}
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

// timedStore adds up the time of each kind of statement: the deletes,
// the reads of old decoder output (a dry run's) and of raw uplinks, the
// counts that check a window, and the rest.
type timedStore struct {
	Store
	took map[string]time.Duration
}

func (t *timedStore) add(kind string, since time.Time) {
	if t.took == nil {
		t.took = map[string]time.Duration{}
	}
	t.took[kind] += time.Since(since)
}

func (t *timedStore) Query(ctx context.Context, q string) ([]Series, error) {
	defer t.add(statementKind(q), time.Now())
	return t.Store.Query(ctx, q)
}

func (t *timedStore) Exec(ctx context.Context, s string) error {
	defer t.add("delete", time.Now())
	return t.Store.Exec(ctx, s)
}

func statementKind(q string) string {
	switch {
	case strings.HasPrefix(q, "SELECT * "):
		return "old"
	case strings.HasPrefix(q, `SELECT "f_port", "payload"`):
		return "uplinks"
	case strings.HasPrefix(q, "SELECT count(*) "):
		return "check"
	}
	return "other"
}

// cpuSeconds is the CPU time (user and system) process pid has used, from
// /proc (clock ticks of 1/100 s).
func cpuSeconds(b *testing.B, pid int) float64 {
	b.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name in parentheses: utime and stime
	// are the 12th and 13th.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, stat)
	}
	return (ut + st) / 100
}

// meterScaled is meterV1 with only its scaling fixed: the same fields
// with other values, so the new points overwrite the old ones.
var meterScaled = decoders.Mapped{
	DecodeRecord: func(in decoders.Input, r *decoders.Record) error {
		if len(in.Bytes) < 3 {
			return decoders.ErrTruncated
		}
		r.Number("temperature", float64(int16(binary.BigEndian.Uint16(in.Bytes)))/10)
		r.Number("humidity", float64(in.Bytes[2])/2)
		r.Number("legacy", 1)
		r.Number("light", 5)
		return nil
	},
	Map: meterV1.Map,
}
