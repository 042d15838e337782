package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

func TestStatusPage(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, path string
		status     int
		ctype      string
		body       string
	}{
		{"root redirects", "/", http.StatusFound, "", ""},
		{"page is public", "/status", 200, "text/html", `id="login-form"`},
		{"script", "/status/status.js", 200, "text/javascript", "sessionStorage"},
		{"style", "/status/status.css", 200, "text/css", "--green"},
		{"icon", "/status/favicon.svg", 200, "image/svg+xml", "<svg"},
		{"the template is not an asset", "/status/page.html", 404, "application/json", "no status page asset"},
		{"no such asset", "/status/nope.js", 404, "application/json", "no status page asset"},
		{"no traversal", "/status/..%2fpage.html", 404, "application/json", ""},
		{"metrics are public, 503 unwired", "/metrics", 503, "application/json", "metrics registry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do(t, "GET", tt.path, "", "", nil)
			if rec.Code != tt.status || !strings.HasPrefix(rec.Header().Get("Content-Type"), tt.ctype) || !strings.Contains(rec.Body.String(), tt.body) {
				t.Fatalf("GET %s: %d %q\n%.300s", tt.path, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
			}
			if rec.Code == 200 && !strings.Contains(rec.Header().Get("Content-Security-Policy"), "script-src 'self'") {
				t.Errorf("no CSP: %v", rec.Header())
			}
		})
	}
	if loc := f.do(t, "GET", "/", "", "", nil).Header().Get("Location"); loc != "/status" {
		t.Errorf("/ redirects to %q", loc)
	}
	// The page loads nothing from another origin.
	for _, p := range []string{"/status", "/status/status.js", "/status/status.css"} {
		if b := f.do(t, "GET", p, "", "", nil).Body.String(); strings.Contains(b, "http://") && !strings.Contains(b, "http://www.w3.org/2000/svg") || strings.Contains(b, "https://") {
			t.Errorf("%s refers to another origin", p)
		}
	}
}

func TestStatusOverview(t *testing.T) {
	f := newFixture(t)
	bearer := "Bearer " + token
	if rec := f.do(t, "GET", "/api/v1/status", bearer, "", nil); rec.Code != 503 {
		t.Fatalf("unwired status: %d", rec.Code)
	}
	connected := true
	f.srv.opt.Status = func(context.Context) Status {
		return Status{Version: "v1", Sources: []SourceStatus{{Name: "cs", Type: "mqtt", Format: "chirpstack-v4", Connected: &connected}},
			Throughput: ThroughputStatus{LastMinute: 6, PerSecond: 0.1, Total: 9}, Spool: &SpoolStatus{Bytes: 100, Records: 2}}
	}
	f.srv.opt.Metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("sensorgate_up 1\n")) })
	ctx := context.Background()
	for _, d := range []devices.Device{{EUI: devices.EUI{1}, Name: "a"}, {EUI: devices.EUI{2}, Name: "b"}} {
		if err := f.store.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	f.unknowns.Observe(devices.UnknownObservation{EUI: devices.EUI{9}, Time: now, Source: "cs"})
	f.health.Observe(devices.Observation{EUI: devices.EUI{1}, Time: now.Add(-2 * time.Hour), FCnt: 1, HasFCnt: true})
	f.health.Observe(devices.Observation{EUI: devices.EUI{1}, Time: now.Add(-time.Hour - 50*time.Minute), FCnt: 2, HasFCnt: true}) // 10 min interval, silent now

	if rec := f.do(t, "GET", "/api/v1/status", "", "", nil); rec.Code != 401 {
		t.Fatalf("status without a token: %d", rec.Code)
	}
	rec := f.do(t, "GET", "/api/v1/status", bearer, "", nil)
	var st Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || rec.Code != 200 {
		t.Fatalf("%d %s %v", rec.Code, rec.Body, err)
	}
	// The tiles' counts come from the server: one device silent (red),
	// one registered and never heard from (grey).
	wantDevs := DeviceSummary{Registered: 2, Unknown: 1, Silent: 1, Heard: 1,
		Colours: map[devices.Colour]int{devices.Green: 0, devices.Amber: 0, devices.Red: 1, devices.Grey: 1}}
	if !reflect.DeepEqual(st.Devices, wantDevs) || st.Throughput.LastMinute != 6 || len(st.Sources) != 1 || !*st.Sources[0].Connected {
		t.Errorf("status %+v", st)
	}
	if rec := f.do(t, "GET", "/metrics", "", "", nil); rec.Code != 200 || rec.Body.String() != "sensorgate_up 1\n" {
		t.Errorf("metrics: %d %s", rec.Code, rec.Body)
	}
	// The health report carries the hourly series for the sparkline.
	rec = f.do(t, "GET", "/api/v1/devices/0100000000000000/health", bearer, "", nil)
	var h struct {
		Hourly []int `json:"uplinks_hourly"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil || len(h.Hourly) != 24 || h.Hourly[21] != 2 {
		t.Errorf("health: %s", rec.Body)
	}
}

// TestDevicePageWithHealth: a page of devices asked for with health=true
// carries the health of its devices heard from, and only of those: what
// the status page's table shows, in one request per page.
func TestDevicePageWithHealth(t *testing.T) {
	f := newFixture(t)
	seedFleet(t, f, 30)
	for _, i := range []int{1, 12, 25} {
		f.health.Observe(devices.Observation{EUI: fleetEUI(0x10, i), Time: now.Add(-time.Minute), FCnt: 1, HasFCnt: true})
	}
	var body struct {
		Devices []struct {
			DevEUI string `json:"dev_eui"`
		} `json:"devices"`
		Health     map[string]devices.DeviceHealth `json:"health"`
		NextCursor string                          `json:"next_cursor"`
	}
	get := func(path string) {
		t.Helper()
		body.Health = nil
		rec := f.do(t, "GET", path, "Bearer "+token, "", nil)
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 200 {
			t.Fatalf("%s: %d %s %v", path, rec.Code, rec.Body, err)
		}
	}
	get("/api/v1/devices?limit=10&health=true")
	if len(body.Devices) != 10 || len(body.Health) != 1 || body.Health[fleetEUI(0x10, 1).String()].Uplinks24h != 1 {
		t.Errorf("first page: %d devices, health %+v", len(body.Devices), body.Health)
	}
	get("/api/v1/devices?limit=10&health=true&cursor=" + body.NextCursor)
	if _, ok := body.Health[fleetEUI(0x10, 12).String()]; !ok || len(body.Health) != 1 {
		t.Errorf("second page's health: %+v", body.Health)
	}
	get("/api/v1/devices?limit=10")
	if body.Health != nil {
		t.Errorf("health without health=true: %+v", body.Health)
	}
	if rec := f.do(t, "GET", "/api/v1/devices?limit=10&health=maybe", "Bearer "+token, "", nil); rec.Code != 400 {
		t.Errorf("health=maybe: %d %s", rec.Code, rec.Body)
	}
}

func TestDeadLettersNewest(t *testing.T) {
	f := newFixture(t)
	bearer := "Bearer " + token
	ctx := context.Background()
	for i, r := range []gateway.Reason{gateway.ReasonMalformed, gateway.ReasonDecode, gateway.ReasonUnknownDevice} {
		if err := f.dl.Put(ctx, gateway.DeadLetter{Time: now.Add(time.Duration(i) * time.Minute), Source: "cs", Reason: r, Detail: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(path string) []uint64 {
		t.Helper()
		rec := f.do(t, "GET", path, bearer, "", nil)
		var resp struct {
			DeadLetters []struct {
				ID uint64 `json:"id"`
			} `json:"dead_letters"`
			Limit int `json:"limit"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || rec.Code != 200 {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		var out []uint64
		for _, l := range resp.DeadLetters {
			out = append(out, l.ID)
		}
		return out
	}
	for path, want := range map[string]string{
		"/api/v1/deadletters":                                  "[1 2 3]",
		"/api/v1/deadletters?limit=2":                          "[1 2]",
		"/api/v1/deadletters?order=newest":                     "[3 2 1]",
		"/api/v1/deadletters?order=newest&limit=2":             "[3 2]",
		"/api/v1/deadletters?order=newest&reason=decode_error": "[2]",
	} {
		if got := fmt.Sprint(ids(path)); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
	if rec := f.do(t, "GET", "/api/v1/deadletters?order=sideways", bearer, "", nil); rec.Code != 400 || !strings.Contains(errorOf(t, rec), "oldest or newest") {
		t.Errorf("bad order: %d %s", rec.Code, rec.Body)
	}
}
