package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/gateway/httpapi"
	"github.com/sensorgate/sensorgate/gateway/redecode"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// TestStatusPageShowsRedecode: a re-decode job started through the API
// shows on the status page while it runs, with its progress, and then as
// done. The job is held running deterministically: InfluxDB (behind a
// proxy) refuses writes, so the spool keeps a record from before the job
// and the job waits for it to be delivered before it deletes anything.
func TestStatusPageShowsRedecode(t *testing.T) {
	r := newFaultRig(t, 23, 3)
	var refuse atomic.Bool
	proxy := testserver.StartInfluxProxy(t, r.db.URL(), func(testserver.WriteRequest) (int, http.Header) {
		if refuse.Load() {
			return http.StatusServiceUnavailable, nil
		}
		return 0, nil
	})
	cfgPath := r.writeConfig(rigConfig{influxURL: proxy.URL})
	d := r.runInProcess(cfgPath)
	msgs := r.stream(120)
	publishAll(t, r.mq.URL(), msgs[:119])
	awaitUplinks(t, r.db, 119, time.Minute, r.daemonState(d))
	refuse.Store(true)
	publishAll(t, r.mq.URL(), msgs[119:])
	for deadline := time.Now().Add(time.Minute); d.spool.Stats().Pending == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the last uplink did not reach the spool\n%s", r.daemonState(d)())
		}
	}

	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := dialAPI(context.Background(), cfgPath, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body, _ := json.Marshal(httpapi.RedecodeRequest{Since: "2026-03-01T00:00:00Z"})
	b, err := c.call(context.Background(), http.MethodPost, "/api/v1/redecode", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	var job redecode.JobStatus
	if err := json.Unmarshal(b, &job); err != nil || job.State != redecode.StateRunning {
		t.Fatalf("started job: %s, %v", b, err)
	}
	if _, err := c.call(context.Background(), http.MethodPost, "/api/v1/redecode", "application/json", body); err == nil || !strings.Contains(err.Error(), "HTTP 409") {
		t.Errorf("a second job while one runs: %v, want 409", err)
	}

	ctx := browser(t)
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 40*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	waitFor := func(what, predicate string) {
		t.Helper()
		run(what, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(30*time.Second)))
	}
	rowText := func(state string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		s, err := chromedp.Run(sctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector('#redecode tr[data-state=%s]').textContent`, state)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	token, err := clientToken(cfg, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + cfg.HTTP.Listen
	run("open the page", chromedp.Navigate(base+"/status"), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	run("sign in", chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
	waitFor("the running job", `!document.querySelector('#card-redecode').hidden && document.querySelector('#redecode tr[data-state=running]') !== null`)
	if s := rowText("running"); !strings.Contains(s, "0 / 119") || !strings.Contains(s, "0 / 3") {
		t.Errorf("running job row %q: want 0 of 119 uplinks and 0 of 3 devices", s)
	}
	if dir := os.Getenv("SENSORGATE_SCREENSHOT_DIR"); dir != "" {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		cancel()
		if err == nil {
			_ = os.WriteFile(filepath.Join(dir, "status-redecode.png"), png, 0o644)
		}
	}

	refuse.Store(false) // the spool drains, the job goes on
	waitFor("the finished job", `document.querySelector('#redecode tr[data-state=done]') !== null`)
	// The uplink spooled before the job was delivered after its count.
	if s := rowText("done"); !strings.Contains(s, "120 / 120") || !strings.Contains(s, "3 / 3") {
		t.Errorf("finished job row %q: want 120 of 120 uplinks and 3 of 3 devices", s)
	}
	awaitUplinks(t, r.db, len(msgs), time.Minute, r.daemonState(d))
	want := expectSet{}
	want.add(msgs...)
	assertExactly(t, r.db, want)
}
