package webhook

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
)

// rig is one source listening on a free loopback port with h as its
// pipeline; letters and uplinks are what it was handed.
type rig struct {
	t        *testing.T
	src      *Source
	url      string // http://127.0.0.1:port
	counters *gateway.Counters
	dl       *letters
	cancel   context.CancelFunc
	done     chan error
}

// letters keeps dead letters in memory.
type letters struct {
	mu  sync.Mutex
	out []gateway.DeadLetter
	err error // returned by Put when set
}

func (l *letters) Put(_ context.Context, dl gateway.DeadLetter) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	l.out = append(l.out, dl)
	return nil
}

func (l *letters) all() []gateway.DeadLetter {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]gateway.DeadLetter(nil), l.out...)
}

// recorder is a handler that keeps what it was given.
type recorder struct {
	mu  sync.Mutex
	ups []gateway.Uplink
}

func (r *recorder) handle(_ context.Context, up gateway.Uplink) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ups = append(r.ups, up)
	return nil
}

func (r *recorder) all() []gateway.Uplink {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]gateway.Uplink(nil), r.ups...)
}

// testConfig is a valid source of format with header auth.
func testConfig(format string) Config {
	return Config{Name: "hook", Format: format, Listen: "127.0.0.1:0", Path: "/hook/",
		Auth: Auth{Header: "X-Secret", Value: "s3cret"}, DrainTimeout: 10 * time.Second}
}

func startRig(t *testing.T, cfg Config, h gateway.Handler, opts ...Option) *rig {
	t.Helper()
	r := &rig{t: t, counters: &gateway.Counters{}, dl: &letters{}, done: make(chan error, 1)}
	clock := func() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }
	src, err := New(cfg, r.dl, r.counters, zerolog.Nop(), append([]Option{WithClock(clock)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	r.src = src
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- src.Run(ctx, h) }()
	select {
	case <-src.Ready():
	case err := <-r.done:
		t.Fatalf("source did not start: %v", err)
	}
	r.url = "http://" + src.Addr().String()
	t.Cleanup(r.stop)
	return r
}

func (r *rig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	if err := <-r.done; err != nil {
		r.t.Errorf("Run: %v", err)
	}
}

// post sends body to path with the rig's secret header and extra headers
// ("Name: value"); it returns the status, the answer and the headers.
func (r *rig) post(path, body string, headers ...string) (int, string, http.Header) {
	r.t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.url+path, strings.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Secret", "s3cret")
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}
