package redecode

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Job states.
const (
	StateRunning     = "running"
	StateDone        = "done"
	StateFailed      = "failed"
	StateInterrupted = "interrupted" // cancelled or the daemon stopped: run it again
)

// maxJobs bounds the jobs a Jobs remembers; the oldest finished go first.
const maxJobs = 16

// ErrBusy is returned by Start while a job runs: two jobs deleting and
// writing one device's history at once would undo each other's work.
var ErrBusy = errors.New("redecode: a re-decode job is running; wait for it or cancel it")

// JobStatus is a job as the API and the status page show it.
type JobStatus struct {
	ID       int        `json:"id"`
	State    string     `json:"state"`
	Request  Request    `json:"request"`
	Started  time.Time  `json:"started"`
	Finished *time.Time `json:"finished,omitempty"`
	Progress Progress   `json:"progress"`
	// Rate is uplinks per second so far; ETA seconds to go at that rate
	// (absent until there is a rate).
	Rate  float64  `json:"uplinks_per_second"`
	ETA   *float64 `json:"eta_s,omitempty"`
	Error string   `json:"error,omitempty"`
	// Report is the finished job's report (skipped devices, decode
	// errors, a dry run's diffs).
	Report *Report `json:"report,omitempty"`
}

// Jobs runs one re-decode at a time in the background and remembers the
// last few.
type Jobs struct {
	runner *Runner
	now    func() time.Time

	mu     sync.Mutex
	jobs   []*entry
	nextID int
	wg     sync.WaitGroup
	closed bool
}

type entry struct {
	status JobStatus
	cancel context.CancelFunc
	done   chan struct{}
}

// NewJobs returns a job list running r.
func NewJobs(r *Runner) *Jobs {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	return &Jobs{runner: r, now: now, nextID: 1}
}

// Start checks req and starts it; Until is clamped to now. It returns
// ErrBusy while another job runs, and the request's error when it
// cannot run.
func (js *Jobs) Start(req Request) (JobStatus, error) {
	now := js.now()
	if req.Until.IsZero() || req.Until.After(now) {
		req.Until = now
	}
	if err := req.Check(); err != nil {
		return JobStatus{}, err
	}
	js.mu.Lock()
	defer js.mu.Unlock()
	if js.closed {
		return JobStatus{}, errors.New("redecode: the daemon is stopping")
	}
	for _, e := range js.jobs {
		if e.status.State == StateRunning {
			return e.status, ErrBusy
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &entry{status: JobStatus{ID: js.nextID, State: StateRunning, Request: req, Started: now}, cancel: cancel, done: make(chan struct{})}
	js.nextID++
	js.jobs = append(js.jobs, e)
	if len(js.jobs) > maxJobs {
		js.jobs = js.jobs[len(js.jobs)-maxJobs:]
	}
	js.wg.Add(1)
	go js.run(ctx, e)
	return e.status, nil
}

func (js *Jobs) run(ctx context.Context, e *entry) {
	defer js.wg.Done()
	defer close(e.done)
	defer e.cancel()
	log := js.runner.Log.With().Int("job", e.status.ID).Logger()
	log.Info().Time("since", e.status.Request.Since).Time("until", e.status.Request.Until).Bool("dry_run", e.status.Request.DryRun).Msg("redecode: job started")
	rep, err := js.runner.Run(ctx, e.status.Request, func(p Progress) {
		js.mu.Lock()
		e.status.Progress = p
		js.mu.Unlock()
	})
	js.mu.Lock()
	defer js.mu.Unlock()
	t := js.now()
	e.status.Finished, e.status.Report, e.status.Progress = &t, rep, rep.Progress
	switch {
	case err == nil:
		e.status.State = StateDone
		log.Info().Int64("uplinks", rep.Progress.UplinksDone).Int64("points", rep.Progress.PointsWritten).Int("skipped", rep.Progress.Skipped).
			Int64("decode_errors", rep.Progress.DecodeErrors).Msg("redecode: job done")
	case ctx.Err() != nil:
		e.status.State, e.status.Error = StateInterrupted, err.Error()
		log.Warn().Err(err).Msg("redecode: job interrupted")
	default:
		e.status.State, e.status.Error = StateFailed, err.Error()
		log.Error().Err(err).Msg("redecode: job failed")
	}
}

// List returns the remembered jobs, newest first, without their
// reports (Get has them).
func (js *Jobs) List() []JobStatus {
	js.mu.Lock()
	defer js.mu.Unlock()
	out := make([]JobStatus, 0, len(js.jobs))
	for i := len(js.jobs) - 1; i >= 0; i-- {
		st := js.snapshot(js.jobs[i])
		st.Report = nil
		out = append(out, st)
	}
	return out
}

// Running returns the running jobs (at most one), without reports.
func (js *Jobs) Running() []JobStatus {
	var out []JobStatus
	for _, st := range js.List() {
		if st.State == StateRunning {
			out = append(out, st)
		}
	}
	return out
}

// Get returns job id with its report.
func (js *Jobs) Get(id int) (JobStatus, bool) {
	js.mu.Lock()
	defer js.mu.Unlock()
	for _, e := range js.jobs {
		if e.status.ID == id {
			return js.snapshot(e), true
		}
	}
	return JobStatus{}, false
}

// Cancel stops job id and waits until it has stopped.
func (js *Jobs) Cancel(id int) (JobStatus, bool) {
	js.mu.Lock()
	var e *entry
	for _, x := range js.jobs {
		if x.status.ID == id {
			e = x
		}
	}
	js.mu.Unlock()
	if e == nil {
		return JobStatus{}, false
	}
	e.cancel()
	<-e.done
	return js.Get(id)
}

// Close interrupts a running job and waits for it. A nil Jobs has
// nothing to close.
func (js *Jobs) Close() {
	if js == nil {
		return
	}
	js.mu.Lock()
	js.closed = true
	for _, e := range js.jobs {
		e.cancel()
	}
	js.mu.Unlock()
	js.wg.Wait()
}

// snapshot is e's status with rate and ETA (js.mu held).
func (js *Jobs) snapshot(e *entry) JobStatus {
	st := e.status
	end := js.now()
	if st.Finished != nil {
		end = *st.Finished
	}
	if el := end.Sub(st.Started).Seconds(); el > 0 && st.Progress.UplinksDone > 0 {
		st.Rate = float64(st.Progress.UplinksDone) / el
		if st.State == StateRunning {
			eta := float64(max(0, st.Progress.Uplinks-st.Progress.UplinksDone)) / st.Rate
			st.ETA = &eta
		}
	}
	if st.Report != nil {
		r := *st.Report
		st.Report = &r
	}
	return st
}
