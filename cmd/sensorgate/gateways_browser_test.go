package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// TestGatewaysEndToEnd runs the daemon with a gateway-bridge source
// against a real Mosquitto and InfluxDB: stats of a configured gateway
// (fresh), of one only heard (ten minutes old: silent) and a configured
// one never heard from. It checks the gateway points in InfluxDB (with the
// gateways file's tags), /api/v1/gateways (paging, search), /metrics,
// tags set through the API on the next points, and the gateway table of
// the status page in headless Chromium.
func TestGatewaysEndToEnd(t *testing.T) {
	mq := testserver.StartMosquitto(t)
	db := testserver.StartInfluxDB(t)
	dir := t.TempDir()
	port := testserver.FreePort(t)
	const roof, mast, depot = "0016c001f153a14c", "b827ebfffe8a1c02", "b827ebfffe8a1c09"
	gwFile := fmt.Sprintf("- {id: %s, name: townhall-roof, tags: {site: townhall, district: centre}}\n- {id: %s, name: depot}\n", roof, depot)
	if err := os.WriteFile(filepath.Join(dir, "gateways.yaml"), []byte(gwFile), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgText := fmt.Sprintf(`
log: {level: warn, format: json}
http: {listen: "127.0.0.1:%[4]d", token: %[5]q}
state_dir: %[1]s/state
sources:
  - name: bridge
    type: mqtt
    format: gateway-bridge
    broker: %[2]q
    topics: ["eu868/gateway/+/event/up", "eu868/gateway/+/event/stats", "eu868/gateway/+/state/conn"]
    client_id: gw-bridge
influx: {url: %[3]q, bucket: sensors/autogen, flush_interval: 20ms}
gateways: {file: %[1]s/gateways.yaml, tags: [site]}
`, dir, mq.URL(), db.URL(), port, rigToken)
	d := startDaemon(t, loadConfigText(t, dir, cfgText), zerolog.ErrorLevel)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	api := opsAPI{t: t, base: base, token: rigToken}
	api.waitReady()

	now := time.Now().UTC().Truncate(time.Millisecond)
	stats := func(id string, at time.Time, rx int) simulate.Message {
		return simulate.Message{Topic: "eu868/gateway/" + id + "/event/stats", Payload: []byte(fmt.Sprintf(
			`{"gatewayId":%q,"time":%q,"rxPacketsReceived":%d,"rxPacketsReceivedOk":%d,"txPacketsReceived":1,"txPacketsEmitted":1,"location":{"latitude":52.37,"longitude":4.91,"altitude":3}}`,
			id, at.Format(time.RFC3339Nano), rx, rx-1))}
	}
	publishAll(t, mq.URL(), []simulate.Message{
		stats(roof, now.Add(-30*time.Second), 20), stats(roof, now, 25),
		stats(mast, now.Add(-10*time.Minute), 4),
		stats(roof, now, 25), // a redelivery
		{Topic: "eu868/gateway/" + roof + "/state/conn", Payload: []byte(`{"gatewayId":"` + roof + `","state":"ONLINE"}`)},
	})
	api.waitFor("the stats taken", func() bool {
		return d.Counters.Get("gateway_stats") == 4 && d.Counters.Get("events_ignored") == 1
	})
	api.waitFor("the spool delivered", func() bool { return d.spool.Stats().Pending == 0 })

	pts := rowsOf(db.Query(t, `SELECT * FROM "gateway"`))
	byGW := map[string][]row{}
	for _, r := range pts {
		byGW[r.str("gateway_id")] = append(byGW[r.str("gateway_id")], r)
	}
	if len(byGW[roof]) != 2 || len(byGW[mast]) != 1 || len(pts) != 3 {
		t.Fatalf("gateway points %+v", pts)
	}
	last := byGW[roof][1]
	if last.str("site") != "townhall" || last.str("district") != "" || last.str("source") != "bridge" || last.float("rx") != 25 ||
		last.float("rx_ok") != 24 || last.float("latitude") != 52.37 || !last.time.Equal(now) {
		t.Errorf("roof's latest point %+v at %v", last.values, last.time)
	}

	list := api.call("GET", "/api/v1/gateways", nil, 200)
	if list["count"] != 3.0 || list["silent"] != 1.0 {
		t.Fatalf("gateways %v", list)
	}
	health := map[string]map[string]any{}
	for _, g := range list["gateways"].([]any) {
		m := g.(map[string]any)
		health[m["id"].(string)] = m
	}
	if g := health[roof]; g["silent"] != false || g["name"] != "townhall-roof" || g["stats_interval_s"] != 30.0 || g["rx"] != 25.0 {
		t.Errorf("roof %v", g)
	}
	if g := health[mast]; g["silent"] != true || g["configured"] != false {
		t.Errorf("mast %v", g)
	}
	if g := health[depot]; g["last_seen"] != nil || g["silent"] != false || g["configured"] != true {
		t.Errorf("depot %v", g)
	}
	page := api.call("GET", "/api/v1/gateways?limit=2", nil, 200)
	if page["count"] != 2.0 || page["next_cursor"] != mast {
		t.Errorf("first page %v", page)
	}
	if page = api.call("GET", "/api/v1/gateways?limit=2&cursor="+mast, nil, 200); page["count"] != 1.0 || page["next_cursor"] != "" {
		t.Errorf("second page %v", page)
	}
	if q := api.call("GET", "/api/v1/gateways?q=TOWNHALL", nil, 200); q["count"] != 1.0 {
		t.Errorf("search townhall: %v", q)
	}

	metrics := scrapeMetrics(t, base)
	for name, want := range map[string]float64{
		`sensorgate_gateway_silent{gateway_id="` + mast + `"}`:                      1,
		`sensorgate_gateway_silent{gateway_id="` + roof + `"}`:                      0,
		`sensorgate_gateways{state="never_heard"}`:                                  1,
		`sensorgate_gateways{state="silent"}`:                                       1,
		`sensorgate_gateways{state="reporting"}`:                                    1,
		`sensorgate_state_entries{table="gateways"}`:                                3,
		`sensorgate_gateway_last_seen_timestamp_seconds{gateway_id="` + roof + `"}`: float64(now.UnixNano()) / 1e9,
	} {
		if got, ok := metrics[name]; !ok || got != want {
			t.Errorf("/metrics %s = %v (present %v), want %v", name, got, ok, want)
		}
	}

	browserGatewayTable(t, base, map[string]string{roof: "green", mast: "red", depot: "grey"})

	// Tags set through the API go onto the mast's next points.
	api.call("PUT", "/api/v1/gateways/"+mast, map[string]any{"name": "harbour-mast", "tags": map[string]string{"site": "harbour"}}, 201)
	api.call("PUT", "/api/v1/gateways/"+mast, map[string]any{"name": "harbour-mast", "tags": map[string]string{"site": "harbour", "x": "\x01"}}, 422)
	publishAll(t, mq.URL(), []simulate.Message{stats(mast, now, 9)})
	api.waitFor("the mast's new stats", func() bool { return d.Counters.Get("gateway_stats") == 5 && d.spool.Stats().Pending == 0 })
	tagged := rowsOf(db.Query(t, `SELECT "rx", "site" FROM "gateway" WHERE "gateway_id" = '`+mast+`' AND "site" = 'harbour'`))
	if len(tagged) != 1 || tagged[0].float("rx") != 9 {
		t.Errorf("the mast's point after PUT: %+v", tagged)
	}
	if g := api.call("GET", "/api/v1/gateways/"+mast, nil, 200); g["silent"] != false || g["name"] != "harbour-mast" {
		t.Errorf("the mast after its fresh stats: %v", g)
	}
	api.call("DELETE", "/api/v1/gateways/"+depot, nil, 204)
	api.call("GET", "/api/v1/gateways/"+depot, nil, 404)
}

// browserGatewayTable signs in to the status page in headless Chromium
// and checks the gateway table's rows and colours, and that it fits a
// phone's width by scrolling inside its card.
func browserGatewayTable(t *testing.T, base string, want map[string]string) {
	t.Helper()
	ctx := browser(t)
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 40*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(expr string, out any) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		v, err := chromedp.Run(sctx, chromedp.Evaluate[any](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		remarshal(t, v, out)
	}
	run("open the page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	run("sign in", chromedp.SendKeys(chromedp.CSS("#token"), rigToken), chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
	run("the gateway table", chromedp.Poll[chromedp.Void](`document.querySelectorAll('#gateways tbody tr[data-gateway]').length === 3`, chromedp.WithPollingTimeout(30*time.Second)))
	var rows []struct {
		ID, Health, Name, Tags string
	}
	eval(`Array.from(document.querySelectorAll('#gateways tbody tr[data-gateway]')).map(tr => ({
		ID: tr.dataset.gateway, Health: tr.dataset.health, Name: tr.cells[1].textContent, Tags: tr.cells[3].textContent}))`, &rows)
	got := map[string]string{}
	for _, r := range rows {
		got[r.ID] = r.Health
		if r.Health == "green" && (r.Name != "townhall-roof" || !strings.Contains(r.Tags, "site=townhall")) {
			t.Errorf("the roof's row %+v", r)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("gateway rows by colour %v, want %v", got, want)
	}
	var count string
	eval(`document.querySelector('#gateways-count').textContent`, &count)
	if count != "3 gateways · 1 silent" {
		t.Errorf("gateway count %q", count)
	}
	run("phone width", chromedp.EmulateViewport(390, 844))
	var l pageLayout
	eval(layoutJS, &l)
	if l.ScrollWidth > l.ClientWidth {
		t.Errorf("390 px: the page is %d px wide in a %d px window", l.ScrollWidth, l.ClientWidth)
	}
	for _, tb := range l.Tables {
		if tb.ID == "gateways" && (tb.Overflow != "auto" || !tb.Fits || tb.TallestRow > 200) {
			t.Errorf("390 px: the gateway table %+v", tb)
		}
	}
	if dir := os.Getenv("SENSORGATE_SCREENSHOT_DIR"); dir != "" {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100)); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "status-gateways-390.png"), png, 0o644)
		}
	}
}
