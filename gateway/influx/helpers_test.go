package influx

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/spool"
)

// syncSink is delivery as a caller that waits for InfluxDB sees it: Write
// spools the points through a Writer and returns once the Deliverer has
// settled their record, nil when InfluxDB took it, the refusal when it
// became a dead letter; ctx.Err() when ctx ends first. The status policy
// tests drive delivery through it.
type syncSink struct {
	w     *Writer
	d     *Deliverer
	sp    *spool.Spool
	dl    *memDL
	mu    sync.Mutex
	waits map[string][]chan error // by the record's bytes, in order
}

// startSink runs Writer and Deliverer over a fresh spool for the test and
// stops them at its end, checking that Run returns cleanly. Every Write
// that returned nil was delivered; a record whose Write gave up stays in
// the spool, so the stop does not wait for it.
func startSink(t testing.TB, cfg Config, tm timing) (*syncSink, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	c, err := newClient(cfg, zerolog.New(logs), tm)
	if err != nil {
		t.Fatal(err)
	}
	sp := openQuickSpool(t, t.TempDir())
	s := &syncSink{w: NewWriter(sp), sp: sp, dl: &memDL{}, waits: map[string][]chan error{}}
	s.d = NewDeliverer(c, sp, s.dl, zerolog.New(logs))
	s.d.settled = s.settled
	stop := s.d.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := stop(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := sp.Close(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("delivery log:\n%s", logs)
		}
	})
	return s, logs
}

func (s *syncSink) settled(data []byte, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := string(data)
	if q := s.waits[k]; len(q) > 0 {
		q[0] <- err
		s.waits[k] = q[1:]
	}
}

func (s *syncSink) Write(ctx context.Context, pts []gateway.Point) error {
	var rec []byte
	var encErr error
	for _, p := range pts {
		var err error
		if rec, err = AppendPoint(rec, p); err != nil {
			encErr = fmt.Errorf("%w: %w", ErrRejected, err)
		}
	}
	if len(rec) == 0 {
		return s.w.Write(ctx, pts)
	}
	ch := make(chan error, 1)
	s.mu.Lock()
	s.waits[string(rec)] = append(s.waits[string(rec)], ch)
	s.mu.Unlock()
	if err := s.w.Write(ctx, pts); err != nil && !errors.Is(err, ErrRejected) {
		return err
	}
	select {
	case err := <-ch:
		return errors.Join(err, encErr)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pending is how many records wait in the spool.
func (s *syncSink) pending() int { return int(s.sp.Stats().Pending) }
