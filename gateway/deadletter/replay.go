package deadletter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
)

// Result is the outcome of replaying one dead letter.
type Result struct {
	ID     uint64         `json:"id"`
	Status string         `json:"status"` // StatusReplayed, StatusFailed or StatusSkipped
	Reason gateway.Reason `json:"reason,omitempty"`
	Detail string         `json:"detail,omitempty"`
	Points int            `json:"points,omitempty"`
}

// Replayer runs dead letters through the current pipeline, after a fix
// (a decoder, a registry entry, a field type).
//
// A replayed letter is kept and marked, never deleted: the store is the
// audit trail. A replay that still fails adds no new dead letter (the
// original is still there); its letter gets a failed mark with the new
// reason. Replaying is idempotent: the pipeline writes byte-identical
// points for the same message, and a feed message without a time of its
// own is replayed at the time it was dead-lettered, not at "now".
type Replayer struct {
	Store *File
	// Parse turns a letter's raw message back into an uplink with its
	// source's feed parser; an error means the source has none or the
	// message is still malformed.
	Parse func(dl gateway.DeadLetter) (gateway.Uplink, error)
	// Resend re-sends the line protocol of a rejected_by_influx letter
	// (held by the letter in place of a feed message). Nil: such letters
	// are reported as failed.
	Resend func(ctx context.Context, lines []byte) error
	// Pipeline is the daemon's pipeline. Replay runs a copy that keeps
	// rejections instead of dead-lettering them again and has no
	// Observer, so history does not count as live device health.
	Pipeline *gateway.Pipeline
	// Now stamps the marks (tests set it).
	Now func() time.Time

	mu sync.Mutex // one replay at a time: marks follow results
}

// replayPage is how many letters a replay reads at a time, so replaying
// a large store does not hold it all in memory.
const replayPage = 256

// Replay replays the letters matching f, oldest first (f.Limit, if set,
// bounds how many). Letters replayed before are skipped unless force.
// The error is for a failure that stops the replay (the sink is down,
// the store cannot be read or marked); the results up to it are
// returned with it.
func (r *Replayer) Replay(ctx context.Context, f Filter, force bool) ([]Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var results []Result
	limit := f.Limit
	f.Newest = false
	for {
		f.Limit = replayPage
		if limit > 0 {
			f.Limit = min(replayPage, limit-len(results))
		}
		letters, err := r.Store.List(ctx, f)
		if err != nil {
			return results, err
		}
		for _, l := range letters {
			f.After = l.ID
			if l.ReplayedAt != nil && !force {
				results = append(results, Result{ID: l.ID, Status: StatusSkipped, Detail: "replayed at " + l.ReplayedAt.UTC().Format(time.RFC3339) + "; replay with force to run it again"})
				continue
			}
			res, err := r.one(ctx, l)
			if err != nil {
				return results, fmt.Errorf("deadletter: replay letter %d: %w (it stays unreplayed; retry when the sink is back)", l.ID, err)
			}
			if err := r.Store.mark(ctx, l.ID, res.Status, r.now(), res.Reason, res.Detail); err != nil {
				return results, err
			}
			r.count(res)
			results = append(results, res)
		}
		if len(letters) < f.Limit || limit > 0 && len(results) >= limit {
			return results, nil
		}
	}
}

// Replay events counted in the pipeline's counters
// (sensorgate_pipeline_events_total). A replay is neither a new uplink
// nor a new dead letter: the letter was counted when it was stored, so
// a replay that fails again counts here and nowhere else.
const (
	EventReplayed     = "dead_letters_replayed"
	EventReplayFailed = "dead_letters_replay_failed"
)

func (r *Replayer) count(res Result) {
	if r.Pipeline == nil || r.Pipeline.Counters == nil {
		return
	}
	switch res.Status {
	case StatusReplayed:
		r.Pipeline.Counters.Inc(EventReplayed)
	case StatusFailed:
		r.Pipeline.Counters.Inc(EventReplayFailed)
	}
}

func (r *Replayer) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// one replays a letter. The error is a transient failure (the letter
// stays as it was); a message that still cannot become points is a
// failed Result.
func (r *Replayer) one(ctx context.Context, l Letter) (Result, error) {
	res := Result{ID: l.ID}
	if l.Reason == gateway.ReasonRejected {
		if r.Resend == nil {
			res.Status, res.Reason, res.Detail = StatusFailed, l.Reason, "this process cannot re-send line protocol"
			return res, nil
		}
		if err := r.Resend(ctx, l.Raw); err != nil {
			return res, err
		}
		res.Status = StatusReplayed
		return res, nil
	}
	up, err := r.Parse(l.DeadLetter)
	if err != nil {
		res.Status, res.Reason, res.Detail = StatusFailed, gateway.ReasonMalformed, err.Error()
		// A feed parser's error may carry another reason (bad_time, device_mismatch).
		var why interface{ DeadLetterReason() gateway.Reason }
		if errors.As(err, &why) {
			res.Reason = why.DeadLetterReason()
		}
		return res, nil
	}
	kept := &keeper{}
	p := r.Pipeline.Clone()
	// No Observer and no Counters: the uplink and its rejection were
	// counted when the message first came in; Replay counts the outcome.
	p.DeadLetters, p.Observer, p.Counters = kept, nil, nil
	count := &pointCounter{Sink: p.Sink}
	p.Sink = count
	if err := p.Handle(ctx, up); err != nil {
		return res, err
	}
	if kept.dl != nil {
		res.Status, res.Reason, res.Detail = StatusFailed, kept.dl.Reason, kept.dl.Detail
		return res, nil
	}
	res.Status, res.Points = StatusReplayed, count.n
	return res, nil
}

// keeper takes the pipeline's dead letter during a replay instead of
// storing a second copy of a message the file already holds.
type keeper struct{ dl *gateway.DeadLetter }

func (k *keeper) Put(_ context.Context, dl gateway.DeadLetter) error {
	k.dl = &dl
	return nil
}

// pointCounter counts the points a replay wrote, for its result.
type pointCounter struct {
	gateway.Sink
	n int
}

func (c *pointCounter) Write(ctx context.Context, pts []gateway.Point) error {
	if err := c.Sink.Write(ctx, pts); err != nil {
		return err
	}
	c.n += len(pts)
	return nil
}

// ErrNoParser is what a Parse function returns for a letter whose source
// has no parser in this process (a source removed from the config, or a
// kind of source replay does not cover).
var ErrNoParser = errors.New("deadletter: no parser for the letter's source")
