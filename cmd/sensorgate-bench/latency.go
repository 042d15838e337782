package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sensorgate/sensorgate/internal/testserver"
)

// latencySamples is how many uplinks of a live run are followed from
// publish to InfluxDB: every (N / latencySamples)-th.
const latencySamples = 500

// latencyProbe measures, in live mode, the time from the broker's
// acknowledgement of a publish to the moment its uplink point can be
// queried from InfluxDB, for a sample of the uplinks. It asks for the
// points of the pending samples' devices within the window of their
// times, every tick: one cheap query however many samples wait, so that
// its own cost on InfluxDB stays small next to the consumer's writes.
type latencyProbe struct {
	db    *testserver.InfluxDB
	every int // sample every every-th published uplink

	mu        sync.Mutex
	n         int
	pending   []probeSample
	latencies []time.Duration
	err       error
}

type probeSample struct {
	eui       string
	t         int64 // the uplink's time, ns
	published time.Time
}

func newLatencyProbe(db *testserver.InfluxDB, n int) *latencyProbe {
	return &latencyProbe{db: db, every: max(1, n/latencySamples)}
}

// published records an acknowledged publish; it runs on the publisher's
// goroutine and takes no time worth measuring.
func (p *latencyProbe) published(eui string, t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if p.n%p.every == 0 {
		p.pending = append(p.pending, probeSample{eui: eui, t: t.UnixNano(), published: time.Now()})
	}
}

// run polls until ctx ends.
func (p *latencyProbe) run(ctx context.Context, tick time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(tick):
		}
		if err := p.poll(); err != nil {
			p.mu.Lock()
			p.err = err
			p.mu.Unlock()
			return
		}
	}
}

// poll asks once for the pending samples' points and settles those found.
// A point's time may be the uplink's cut to the millisecond (sensorgate)
// or the uplink's own (Telegraf): a sample is found by its device and a
// time within its millisecond.
func (p *latencyProbe) poll() error {
	p.mu.Lock()
	pending := slices.Clone(p.pending)
	p.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	lo, hi := pending[0].t, pending[0].t
	euis := map[string]bool{}
	for _, s := range pending {
		lo, hi = min(lo, s.t), max(hi, s.t)
		euis[s.eui] = true
	}
	lo -= lo % int64(time.Millisecond)
	var or []string
	for e := range euis {
		or = append(or, fmt.Sprintf(`"dev_eui" = '%s'`, e))
	}
	q := fmt.Sprintf(`SELECT "f_cnt", "dev_eui" FROM "uplink" WHERE time >= %d AND time < %d AND (%s)`, lo, hi+int64(time.Millisecond), strings.Join(or, " OR "))
	series, err := p.db.QueryErr(q)
	if err != nil {
		return err
	}
	now := time.Now()
	found := map[probeSample]bool{}
	for _, s := range series {
		ti, ei := slices.Index(s.Columns, "time"), slices.Index(s.Columns, "dev_eui")
		if ti < 0 || ei < 0 {
			continue
		}
		for _, row := range s.Values {
			n, _ := row[ti].(json.Number).Int64()
			eui, _ := row[ei].(string)
			for _, ps := range pending {
				if ps.eui == eui && n >= ps.t-ps.t%int64(time.Millisecond) && n <= ps.t {
					found[ps] = true
				}
			}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = slices.DeleteFunc(p.pending, func(s probeSample) bool {
		if found[s] {
			p.latencies = append(p.latencies, now.Sub(s.published))
			return true
		}
		return false
	})
	return nil
}

// result gives the median and the 99th percentile of the latencies seen
// and how many samples were settled; an error if polling failed.
func (p *latencyProbe) result() (p50, p99 time.Duration, n int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return 0, 0, 0, fmt.Errorf("bench: latency probe: %w", p.err)
	}
	l := slices.Clone(p.latencies)
	if len(l) == 0 {
		return 0, 0, 0, nil
	}
	slices.Sort(l)
	return quantile(l, 0.5), quantile(l, 0.99), len(l), nil
}

// quantile of sorted d, by the nearest rank.
func quantile(d []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(d))+0.5) - 1
	return d[min(max(i, 0), len(d)-1)]
}
