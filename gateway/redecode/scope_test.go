package redecode

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
)

// TestRedecodeScopes: a fleet of devices with few uplinks each, read a
// group at a time, has its decoder output deleted by one request; the
// uplinks that reach InfluxDB through the live pipeline before each of
// the job's statements (dated among the stored ones) all end with their
// points, and a job stopped after the delete, midway through the groups,
// keeps the status points and is finished by running it again.
func TestRedecodeScopes(t *testing.T) {
	for _, tc := range []struct {
		name string
		live bool // uplinks arrive before each statement
		stop bool // cancelled before the second group's read
	}{
		{"live uplinks", true, false},
		{"stopped midway", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 12, "meter")
			rs := r.readings(1200)
			var hist, live []reading
			for i, rd := range rs {
				if i%2 == 0 {
					hist = append(hist, rd)
				} else {
					live = append(live, rd)
				}
			}
			if !tc.live {
				hist, live = rs, nil
			}
			r.live(r.pipeline("meter", beforeFix), hist)
			d0 := r.devs[0]
			r.writeLines(fmt.Sprintf("device,dev_eui=%s,device=%s,district=north,model=meter,source=cs batteryLevel=80,externalPower=false,margin=7 %d", d0.EUI, d0.Name, t0.Add(30*time.Second).UnixNano()))
			statusBefore := r.snapshot(gateway.MeasurementDevice)

			fixed := r.pipeline("meter", afterFix)
			next := 0
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var statements []string
			hs := &hookStore{Store: &recordStore{Store: testStore{r.client}, seen: &statements}, before: func() {
				if next < len(live) {
					r.live(fixed, live[next:min(next+2, len(live))])
					next += 2
				}
			}}
			var store Store = hs
			if tc.stop {
				// 1 SHOW FIELD KEYS, 2 the counts, 3 SHOW MEASUREMENTS, 4 the
				// status count, 5 the status points, 6 the DELETE, 7 the
				// first group's uplinks, 8 the second's.
				store = &faultStore{Store: hs, n: 8, hook: cancel}
			}
			run := r.runner(fixed, store)
			run.MaxChunk = 200 // groups of 2 devices
			req := Request{Since: t0, Until: t0.Add(24 * time.Hour)}
			rep, err := run.Run(ctx, req, nil)
			if tc.stop {
				if err == nil || !strings.Contains(err.Error(), "run the same command again") {
					t.Fatalf("stopped job: %v; want an error telling to run it again", err)
				}
				if rep.Progress.DevicesDone != 2 || rep.Progress.UplinksDone != 200 {
					t.Fatalf("the stop did not hit after the first group: %+v", rep.Progress)
				}
				r.settle()
				if _, err := r.runner(fixed, nil).Run(context.Background(), req, nil); err != nil {
					t.Fatal(err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if next < len(live) {
				r.live(fixed, live[next:])
			}
			r.settle()
			deletes := 0
			for _, s := range statements {
				if strings.HasPrefix(s, "DELETE") {
					deletes++
				}
			}
			if deletes != 1 {
				t.Errorf("%d DELETE requests, want 1 for the 6 groups", deletes)
			}
			checkFixed(t, r, rs, reading{}, "meter")
			if a, b := diffLines(statusBefore, r.snapshot(gateway.MeasurementDevice)); len(a)+len(b) > 0 {
				t.Errorf("status points changed: gone %v, new %v", a, b)
			}
		})
	}
}

// recordStore records the statements it runs.
type recordStore struct {
	Store
	seen *[]string
}

func (s *recordStore) Query(ctx context.Context, q string) ([]Series, error) {
	*s.seen = append(*s.seen, q)
	return s.Store.Query(ctx, q)
}

func (s *recordStore) Exec(ctx context.Context, stmts string) error {
	*s.seen = append(*s.seen, stmts)
	return s.Store.Exec(ctx, stmts)
}
