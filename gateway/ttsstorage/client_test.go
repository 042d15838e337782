package ttsstorage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/internal/testserver"
)

const (
	testApp = "city-sensors"
	testKey = "NNSXS.TESTKEYID4STORAGE.SECRETPARTTHATMUSTNEVERSHOW"
)

var t0 = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

// storedUp is a minimal ApplicationUp of device dev, frame fcnt, received
// by the Application Server at at.
func storedUp(dev string, fcnt int, at time.Time) []byte {
	return fmt.Appendf(nil, `{"end_device_ids":{"device_id":%q,"application_ids":{"application_id":%q},"dev_eui":"70B3D57ED00000%02X"},`+
		`"received_at":%q,"uplink_message":{"f_port":2,"f_cnt":%d,"frm_payload":"AWcA6w==","received_at":%q}}`,
		dev, testApp, fcnt%256, at.Add(20*time.Millisecond).Format(time.RFC3339Nano), fcnt, at.Format(time.RFC3339Nano))
}

// testClient is a Client of srv with quick retries.
func testClient(t *testing.T, srv *testserver.TTSStorage, tune func(*Config)) *Client {
	t.Helper()
	cfg := Config{URL: srv.URL(), APIKey: NewAPIKey(testKey), ApplicationID: testApp, RequestInterval: time.Millisecond, Timeout: 5 * time.Second}
	if tune != nil {
		tune(&cfg)
	}
	c, err := New("tts", cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	c.backoff = time.Millisecond
	return c
}

// collect fetches r and returns the f_cnt of every message fn saw, in order.
func collect(t *testing.T, c *Client, r Range) ([]int, Stats, error) {
	t.Helper()
	var got []int
	st, err := c.Fetch(context.Background(), r, func(_ context.Context, m Message) error {
		var up struct {
			UplinkMessage struct {
				FCnt int `json:"f_cnt"`
			} `json:"uplink_message"`
		}
		if err := json.Unmarshal(m.Up, &up); err != nil {
			t.Errorf("fn got %q: %v", m.Up, err)
		}
		got = append(got, up.UplinkMessage.FCnt)
		return nil
	})
	return got, st, err
}

// TestFetchPages: a range is read page by page from its start, a page
// boundary inside a run of equal received_at times loses nothing, and
// only the boundary message is seen twice.
func TestFetchPages(t *testing.T) {
	srv := testserver.StartTTSStorage(t, testApp, testKey)
	for i := range 10 {
		at := t0.Add(time.Duration(i) * time.Second)
		if i == 4 {
			at = t0.Add(3 * time.Second) // 3 and 4 share a received_at across the first page boundary
		}
		if err := srv.Store(storedUp("dev", i, at)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		r        Range
		pageSize int
		want     []int
		requests int
	}{
		{"whole, one page", Range{}, 1000, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 1},
		{"whole, pages of 4", Range{}, 4, []int{0, 1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 9}, 4},
		{"a gap from 2.5s", Range{After: t0.Add(2500 * time.Millisecond)}, 4, []int{3, 4, 5, 6, 6, 7, 8, 9, 9}, 3},
		{"before 6s", Range{Before: t0.Add(6 * time.Second)}, 4, []int{0, 1, 2, 3, 3, 4, 5}, 2},
		{"exactly one full page", Range{After: t0.Add(5500 * time.Millisecond)}, 4, []int{6, 7, 8, 9, 9}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testClient(t, srv, func(c *Config) { c.PageSize = tc.pageSize })
			before := len(srv.Requests())
			got, st, err := collect(t, c, tc.r)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("messages %v, want %v", got, tc.want)
			}
			if n := len(srv.Requests()) - before; n != tc.requests || st.Requests != tc.requests {
				t.Errorf("%d requests (stats %d), want %d", n, st.Requests, tc.requests)
			}
			last := tc.want[len(tc.want)-1]
			if want := t0.Add(time.Duration(last) * time.Second).Add(20 * time.Millisecond); !st.Last.Equal(want) {
				t.Errorf("Last %s, want %s", st.Last, want)
			}
		})
	}
	q := srv.Requests()[0]
	if q.Get("order") != "received_at" || q.Get("limit") != "1000" {
		t.Errorf("first request's query %v: want order=received_at and limit=1000", q)
	}
}

// TestFetchRevokedKey: an expired or revoked key stops at once (no retry)
// with an error naming the key by its id only and saying what to do.
func TestFetchRevokedKey(t *testing.T) {
	srv := testserver.StartTTSStorage(t, testApp, testKey)
	if err := srv.Store(storedUp("dev", 1, t0)); err != nil {
		t.Fatal(err)
	}
	srv.Revoke(true)
	c := testClient(t, srv, nil)
	got, st, err := collect(t, c, Range{})
	if !IsAuth(err) {
		t.Fatalf("error %v, want an AuthError", err)
	}
	msg := err.Error()
	for _, want := range []string{"NNSXS.TESTKEYID4STORAGE.***", `"tts"`, "storage.api_key", "Read application traffic", "401", "API key not found", "nothing is lost"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "SECRETPART") {
		t.Errorf("error %q shows the key's secret", msg)
	}
	if len(got) != 0 || st.Requests != 1 {
		t.Errorf("%d messages after %d requests: want none after one", len(got), st.Requests)
	}
}

// TestFetchStall: a server that stops sending is given up on after
// timeout. What came before a stall is handed on and the next request
// resumes after it, so a server that stalls now and then still gets
// through; one that stalls before anything new is reported.
func TestFetchStall(t *testing.T) {
	srv := testserver.StartTTSStorage(t, testApp, testKey)
	for i := range 5 {
		if err := srv.Store(storedUp("dev", i, t0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	c := testClient(t, srv, func(c *Config) { c.Timeout = 300 * time.Millisecond })

	// Two lines per response, each next request starting just before the
	// last one taken: 0 1, 1 2, 2 3, and 3 4 ends the range.
	srv.StallAfter(2)
	got, st, err := collect(t, c, Range{})
	if err != nil || fmt.Sprint(got) != "[0 1 1 2 2 3 3 4]" || st.Requests != 4 {
		t.Errorf("messages %v in %d requests, error %v: want [0 1 1 2 2 3 3 4] in 4, no error", got, st.Requests, err)
	}

	// One line per response: the first request takes message 0, and the
	// retries never get past it.
	srv.StallAfter(1)
	got, st, err = collect(t, c, Range{})
	if err == nil || !strings.Contains(err.Error(), "sent nothing for 300ms") {
		t.Fatalf("error %v, want a stall (messages %v, %d requests)", err, got, st.Requests)
	}
	if fmt.Sprint(got) != "[0 0 0 0 0 0]" || st.Requests != 1+maxAttempts || !st.Last.Equal(t0.Add(20*time.Millisecond)) {
		t.Errorf("messages %v in %d requests, last %s: want [0 0 0 0 0 0] in %d, last %s", got, st.Requests, st.Last, 1+maxAttempts, t0.Add(20*time.Millisecond))
	}
}

// TestFetchCancelledWhileStalled: shutdown cancels a request the server
// holds open.
func TestFetchCancelledWhileStalled(t *testing.T) {
	srv := testserver.StartTTSStorage(t, testApp, testKey)
	if err := srv.Store(storedUp("dev", 1, t0), storedUp("dev", 2, t0.Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	srv.StallAfter(1)
	c := testClient(t, srv, func(c *Config) { c.Timeout = time.Hour })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Fetch(ctx, Range{}, func(context.Context, Message) error { cancel(); return nil })
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Fetch did not return after its context was cancelled")
	}
}

// TestFetchRateLimited: 429 answers are waited out as the server asks,
// and the fetch then completes.
func TestFetchRateLimited(t *testing.T) {
	srv := testserver.StartTTSStorage(t, testApp, testKey)
	if err := srv.Store(storedUp("dev", 7, t0)); err != nil {
		t.Fatal(err)
	}
	srv.RateLimit(2)
	c := testClient(t, srv, nil)
	got, st, err := collect(t, c, Range{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[7]" || st.Requests != 3 {
		t.Errorf("messages %v in %d requests, want [7] in 3", got, st.Requests)
	}
}

// TestFetchBadLines: lines that are no stored uplink (too long, not JSON,
// a result that is no object, a bad time) are skipped and counted; the
// uplinks around them arrive.
func TestFetchBadLines(t *testing.T) {
	srv := testserver.StartTTSStorage(t, testApp, testKey)
	for i := range 3 {
		if err := srv.Store(storedUp("dev", i, t0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	huge := append(append([]byte(`{"result":{"x":"`), bytes.Repeat([]byte("A"), 2*MaxLineBytes)...), `"}}`...)
	srv.ExtraLines(huge, []byte("not json"), []byte(`{"result":5}`), []byte(`{"result":{"received_at":"yesterday"}}`), []byte(""))
	c := testClient(t, srv, nil)
	got, st, err := collect(t, c, Range{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[0 1 2]" || st.Skipped != 4 {
		t.Errorf("messages %v, %d skipped: want [0 1 2], 4 skipped", got, st.Skipped)
	}
}

// TestFetchStreamError: an {"error": …} line ends the response; the
// request is retried from the last message taken, and a server that
// keeps failing is reported.
func TestFetchStreamError(t *testing.T) {
	srv := testserver.StartTTSStorage(t, testApp, testKey)
	if err := srv.Store(storedUp("dev", 1, t0)); err != nil {
		t.Fatal(err)
	}
	srv.ExtraLines([]byte(`{"error":{"code":14,"message":"error:pkg/redis:unavailable"}}`))
	c := testClient(t, srv, nil)
	_, st, err := collect(t, c, Range{})
	if err == nil || !strings.Contains(err.Error(), "pkg/redis:unavailable") || st.Requests != maxAttempts {
		t.Errorf("error %v after %d requests: want the stream's error after %d", err, st.Requests, maxAttempts)
	}
}

// TestFetchNotFound: a wrong application id is reported with what to check.
func TestFetchNotFound(t *testing.T) {
	srv := testserver.StartTTSStorage(t, testApp, testKey)
	c := testClient(t, srv, func(c *Config) { c.ApplicationID = "other-app" })
	_, st, err := collect(t, c, Range{})
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "Storage Integration is activated") || st.Requests != 1 {
		t.Errorf("error %v after %d requests", err, st.Requests)
	}
}

// TestFetchSlowHandler: time the handler takes (a full spool holding the
// pipeline up) is not the server stalling. The page is larger than the
// read buffer, so the response is still being read after the slow call.
func TestFetchSlowHandler(t *testing.T) {
	srv := testserver.StartTTSStorage(t, testApp, testKey)
	for i := range 999 {
		if err := srv.Store(storedUp("dev", i, t0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	c := testClient(t, srv, func(c *Config) { c.Timeout = 500 * time.Millisecond })
	var got int
	st, err := c.Fetch(context.Background(), Range{}, func(context.Context, Message) error {
		got++
		if got == 1 {
			time.Sleep(time.Second) // the pipeline waiting on a full spool
		}
		return nil
	})
	if err != nil || got != 999 || st.Requests != 1 {
		t.Errorf("%d messages in %d requests, error %v: want 999 in 1, no error", got, st.Requests, err)
	}
}

// TestFetchBoundsResponses: a response is read up to the limit asked for,
// whatever the server sends after it, and a response of nothing but lines
// that are no uplink ends with an error instead of being read forever.
func TestFetchBoundsResponses(t *testing.T) {
	srv := testserver.StartTTSStorage(t, testApp, testKey)
	for i := range 10 {
		if err := srv.Store(storedUp("dev", i, t0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	srv.IgnoreLimit(true)
	c := testClient(t, srv, func(c *Config) { c.PageSize = 4 })
	got, st, err := collect(t, c, Range{})
	if err != nil || fmt.Sprint(got) != "[0 1 2 3 3 4 5 6 6 7 8 9 9]" || st.Requests != 4 {
		t.Errorf("messages %v in %d requests, error %v: want pages of 4 as asked", got, st.Requests, err)
	}

	srv.IgnoreLimit(false)
	junk := make([][]byte, 5)
	for i := range junk {
		junk[i] = []byte("<html>not the API</html>")
	}
	srv.ExtraLines(junk...)
	got, st, err = collect(t, c, Range{})
	if err == nil || !strings.Contains(err.Error(), "more than 4 lines that are no stored uplink") || len(got) != 0 || st.Requests != 1 {
		t.Errorf("messages %v in %d requests, error %v: want the junk refused at once", got, st.Requests, err)
	}
}

// TestLineReaderEndlessLine: a line that never ends is read through up to
// a bound, then the response is abandoned.
func TestLineReaderEndlessLine(t *testing.T) {
	lr := newLineReader(io.LimitReader(endless{}, 1<<40), 1024)
	lr.skipMax = 1 << 20
	line, long, err := lr.next()
	if err != errEndlessLine || line != nil || long <= lr.skipMax || long > lr.skipMax+64<<10 {
		t.Errorf("line %d bytes, long %d, error %v: want errEndlessLine just past %d", len(line), long, err, lr.skipMax)
	}
}

// endless reads as an endless run of 'x'.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}
