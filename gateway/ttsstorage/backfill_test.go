package ttsstorage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

type recorder struct {
	mu      sync.Mutex
	ups     []gateway.Uplink
	letters []gateway.DeadLetter
	failAt  int // the handler refuses its failAt-th uplink (1-based; 0: never)
}

func (r *recorder) handle(_ context.Context, up gateway.Uplink) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failAt > 0 && len(r.ups)+1 == r.failAt {
		return errors.New("spool full")
	}
	r.ups = append(r.ups, up)
	return nil
}

func (r *recorder) Put(_ context.Context, dl gateway.DeadLetter) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.letters = append(r.letters, dl)
	return nil
}

func testBackfill(t *testing.T, srv *testserver.TTSStorage, rec *recorder) *Backfill {
	t.Helper()
	parser, err := mqtt.NewParser(mqtt.Config{Name: "tts", Format: mqtt.FormatTTSV3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Backfill{Client: testClient(t, srv, nil), Parser: parser, Handler: rec.handle, DeadLetters: rec, Log: zerolog.Nop()}
}

// TestBackfill: stored uplinks reach the handler as the source's own
// uplinks, one the parser refuses is a dead letter under the source with
// its raw message, and progress follows what is durable.
func TestBackfill(t *testing.T) {
	srv := testserver.StartTTSStorage(t, testApp, testKey)
	bad := []byte(`{"end_device_ids":{"device_id":"x","dev_eui":"not-hex"},"received_at":"2026-05-04T10:00:05Z","uplink_message":{"f_port":1,"frm_payload":"AA=="}}`)
	if err := srv.Store(storedUp("a", 1, t0), storedUp("b", 2, t0.Add(time.Second)), bad, storedUp("a", 3, t0.Add(9*time.Second))); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	var progress []time.Time
	res, err := testBackfill(t, srv, rec).Run(context.Background(), Range{}, func(at time.Time) { progress = append(progress, at) })
	if err != nil {
		t.Fatal(err)
	}
	if res.Uplinks != 3 || res.DeadLetters != 1 || len(rec.ups) != 3 || len(rec.letters) != 1 {
		t.Fatalf("result %+v, %d uplinks, %d letters", res, len(rec.ups), len(rec.letters))
	}
	for _, up := range rec.ups {
		if up.Source != "tts" || up.Topic != "storage/"+testApp || len(up.Raw) == 0 {
			t.Errorf("uplink source %q topic %q raw %d bytes", up.Source, up.Topic, len(up.Raw))
		}
	}
	if dl := rec.letters[0]; dl.Source != "tts" || dl.Reason != gateway.ReasonMalformed || string(dl.Raw) != string(bad) || !strings.Contains(dl.Detail, "dev_eui") {
		t.Errorf("dead letter %+v", dl)
	}
	last := t0.Add(9*time.Second + 20*time.Millisecond)
	if !res.Durable.Equal(last) || len(progress) != 1 || !progress[0].Equal(last) {
		t.Errorf("durable %s, progress %v: want %s once", res.Durable, progress, last)
	}
}

// TestBackfillRefused: when the pipeline refuses an uplink the run stops
// with the error, and Durable stays before the batch it was in.
func TestBackfillRefused(t *testing.T) {
	srv := testserver.StartTTSStorage(t, testApp, testKey)
	for i := range 3 {
		if err := srv.Store(storedUp("a", i, t0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	rec := &recorder{failAt: 2}
	res, err := testBackfill(t, srv, rec).Run(context.Background(), Range{}, nil)
	if err == nil || !strings.Contains(err.Error(), "spool full") {
		t.Fatalf("error %v, want the pipeline's", err)
	}
	if !res.Durable.IsZero() || res.Uplinks != 0 {
		t.Errorf("durable %s after %d uplinks: want nothing durable reported", res.Durable, res.Uplinks)
	}
}

// TestCursors: a connection holds the saved cursor where it was while
// live uplinks arrive, the refill's progress moves it, its end releases
// it, and a reopened file resumes; other sources' entries are dropped.
func TestCursors(t *testing.T) {
	path := filepath.Join(t.TempDir(), CursorFile)
	c, err := OpenCursors(path, map[string]string{"tts": "app"})
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	if _, ok := c.Begin("tts", now); ok {
		t.Fatal("a first connection has nothing to refill")
	}
	if got := c.Resume("tts"); !got.Equal(now) {
		t.Fatalf("resume %s after the first connection, want %s", got, now)
	}
	c.Seen("tts", t0.Add(time.Minute))
	from, ok := c.Begin("tts", t0.Add(time.Hour)) // a reconnection
	if !ok || !from.Equal(t0.Add(time.Minute)) {
		t.Fatalf("begin %s %v, want %s", from, ok, t0.Add(time.Minute))
	}
	c.Seen("tts", t0.Add(2*time.Hour)) // live again, past the gap
	if got := c.Resume("tts"); !got.Equal(from) {
		t.Fatalf("resume %s while refilling, want %s", got, from)
	}
	c.Progress("tts", t0.Add(30*time.Minute))
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	// A crash now: the next start resumes at the refill's progress.
	re, err := OpenCursors(path, map[string]string{"tts": "app", "new": "other"})
	if err != nil {
		t.Fatal(err)
	}
	if got := re.Resume("tts"); !got.Equal(t0.Add(30 * time.Minute)) {
		t.Errorf("reopened resume %s, want %s", got, t0.Add(30*time.Minute))
	}
	c.Done("tts")
	if got := c.Resume("tts"); !got.Equal(t0.Add(2 * time.Hour)) {
		t.Errorf("resume %s after the refill, want the newest live uplink %s", got, t0.Add(2*time.Hour))
	}
	// A reconnection while a backfill runs: that backfill may end before
	// the new gap, so Done leaves the next one to start there.
	if from, ok := c.Begin("tts", t0.Add(3*time.Hour)); !ok || !from.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("begin %s %v, want %s", from, ok, t0.Add(2*time.Hour))
	}
	c.Seen("tts", t0.Add(4*time.Hour))
	if _, ok := c.Begin("tts", t0.Add(5*time.Hour)); !ok { // again, while it runs
		t.Fatal("a reconnection during a backfill has something to refill")
	}
	c.Progress("tts", t0.Add(150*time.Minute))
	if got := c.Resume("tts"); !got.Equal(t0.Add(150 * time.Minute)) {
		t.Errorf("resume %s during the backfill, want its progress %s", got, t0.Add(150*time.Minute))
	}
	c.Done("tts")
	if got := c.Resume("tts"); !got.Equal(t0.Add(4 * time.Hour)) {
		t.Errorf("resume %s after the first backfill, want the second gap's start %s", got, t0.Add(4*time.Hour))
	}
	c.Done("tts")
	if got := c.Resume("tts"); !got.Equal(t0.Add(4 * time.Hour)) {
		t.Errorf("resume %s after the second backfill, want %s", got, t0.Add(4*time.Hour))
	}

	// Another application under the same name starts afresh.
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	moved, err := OpenCursors(path, map[string]string{"tts": "moved-app"})
	if err != nil {
		t.Fatal(err)
	}
	if got := moved.Resume("tts"); !got.IsZero() {
		t.Errorf("resume %s for a source now reading another application, want none", got)
	}
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCursors(path, nil); err == nil || !strings.Contains(err.Error(), "delete the file") {
		t.Errorf("a damaged file: %v", err)
	}
}

// TestBackfillBatches: uplinks are taken in batches of fillBatch, on at
// most fillWorkers workers, and progress moves once per batch, when all of
// it is durable.
func TestBackfillBatches(t *testing.T) {
	srv := testserver.StartTTSStorage(t, testApp, testKey)
	n := 2*fillBatch + 100
	for i := range n {
		if err := srv.Store(storedUp(string(rune('a'+i%26)), i, t0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	inFlight, peak, taken := 0, 0, 0
	var progress []int
	b := testBackfill(t, srv, &recorder{})
	b.Handler = func(context.Context, gateway.Uplink) error {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		runtime.Gosched() // let the other workers in
		mu.Lock()
		inFlight--
		taken++
		mu.Unlock()
		return nil
	}
	res, err := b.Run(context.Background(), Range{}, func(time.Time) {
		mu.Lock()
		progress = append(progress, taken)
		mu.Unlock()
	})
	total := n + 1 // the first page's last uplink begins the second page too
	if err != nil || res.Uplinks != total {
		t.Fatalf("%d uplinks, %v: want %d", res.Uplinks, err, total)
	}
	if want := []int{fillBatch, 2 * fillBatch, total}; len(progress) != 3 || progress[0] != want[0] || progress[1] != want[1] || progress[2] != want[2] {
		t.Errorf("progress after %v uplinks taken, want %v", progress, want)
	}
	if peak > fillWorkers {
		t.Errorf("%d uplinks in the handler at once, want at most %d", peak, fillWorkers)
	}
}
