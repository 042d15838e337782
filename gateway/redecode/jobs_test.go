package redecode

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestJobs: one job at a time in the background, its progress while it
// runs, cancelling it (state interrupted, with the error saying to run it
// again), and the next job after it, against a real InfluxDB.
func TestJobs(t *testing.T) {
	r := newRig(t, 2, "meter")
	r.live(r.pipeline("meter", beforeFix), r.readings(50))
	run := r.runner(r.pipeline("meter", afterFix), nil)
	entered := make(chan struct{})
	run.Barrier = func(ctx context.Context) error {
		close(entered)
		<-ctx.Done() // held here until cancelled
		return ctx.Err()
	}
	js := NewJobs(run)
	defer js.Close()
	req := Request{Since: t0, Until: t0.Add(24 * time.Hour)}
	st, err := js.Start(req)
	if err != nil || st.ID != 1 || st.State != StateRunning {
		t.Fatalf("start: %+v, %v", st, err)
	}
	<-entered
	if busy, err := js.Start(req); !errors.Is(err, ErrBusy) || busy.ID != 1 {
		t.Fatalf("a second job: %+v, %v; want ErrBusy naming job 1", busy, err)
	}
	if got, _ := js.Get(1); got.Progress.Uplinks != 50 || got.Progress.Devices != 2 || got.State != StateRunning {
		t.Fatalf("running job: %+v", got)
	}
	st, ok := js.Cancel(1)
	if !ok || st.State != StateInterrupted || !strings.Contains(st.Error, "context canceled") || st.Finished == nil || st.Report == nil {
		t.Fatalf("cancelled job: %+v", st)
	}
	run.Barrier = nil
	st, err = js.Start(req)
	if err != nil || st.ID != 2 {
		t.Fatalf("the next job: %+v, %v", st, err)
	}
	for st.State == StateRunning {
		st, _ = js.Get(2)
		time.Sleep(10 * time.Millisecond)
	}
	if st.State != StateDone || st.Progress.UplinksDone != 50 || st.Rate <= 0 || st.ETA != nil {
		t.Fatalf("finished job: %+v", st)
	}
	list := js.List()
	if len(list) != 2 || list[0].ID != 2 || list[1].ID != 1 || list[0].Report != nil {
		t.Fatalf("list: %+v", list)
	}
	if _, err := js.Start(Request{Since: t0, Until: t0}); err == nil {
		t.Fatal("an empty range was started")
	}
}
