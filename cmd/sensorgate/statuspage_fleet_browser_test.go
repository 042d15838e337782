package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// browserPage drives one Chromium tab in a test: every action with a
// deadline, failures fatal.
type browserPage struct {
	t   *testing.T
	ctx context.Context
}

func (p browserPage) step(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

func (p browserPage) eval(expr string, out any) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	remarshal(p.t, v, out)
}

func (p browserPage) text(sel string) string {
	p.t.Helper()
	var s string
	p.eval(fmt.Sprintf(`document.querySelector(%q).textContent`, sel), &s)
	return strings.TrimSpace(s)
}

// waitFor polls predicate in the page until it holds.
func (p browserPage) waitFor(what, predicate string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 70*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		p.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// fleetDeviceEUI is device i of the 100,000: EUIs in the order of i.
func fleetDeviceEUI(i int) devices.EUI {
	e := devices.EUI{0x70, 0xb3, 0xd5, 0x7e}
	binary.BigEndian.PutUint32(e[4:], uint32(i)+1)
	return e
}

// TestStatusPageFleetInBrowser: the status page stays usable with
// 100,000 registered devices. A daemon imports them from a CSV at start
// into its real (SQLite) registry, hears 1,000 of them (half of those
// silent now), and the page in headless Chromium shows the first page
// of the device table, the server's counts per health colour, pages on
// and back, and finds one device by name through the server's search.
// The times to the first page and to the search's answer are logged
// (BENCHMARKS.md), not asserted.
func TestStatusPageFleetInBrowser(t *testing.T) {
	const n = 100_000
	db := testserver.StartInfluxDB(t)
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "devices.csv"))
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "dev_eui,name,model")
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, "%s,bin-%06d,%s\n", fleetDeviceEUI(i), i, simulate.Model)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	port := testserver.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfgText := fmt.Sprintf(`
log: {level: warn, format: json}
http: {listen: "127.0.0.1:%[4]d", token: %[5]q}
state_dir: %[1]s/state
sources:
  - {name: udp-gw, type: semtech-udp, listen: %[2]q}
influx: {url: %[3]q, bucket: sensors/autogen, flush_interval: 20ms}
devices: {import: %[1]s/devices.csv}
`, dir, freeUDPAddr(t), db.URL(), port, rigToken)
	cfgPath := filepath.Join(dir, "sensorgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	imported := time.Now()
	d := startDaemon(t, cfg, zerolog.ErrorLevel)
	api := opsAPI{t: t, base: base, token: rigToken}
	api.waitReady()
	t.Logf("daemon ready with %d devices imported in %v", n, time.Since(imported).Round(time.Millisecond))
	if got := d.Devices.Len(); got != n {
		t.Fatalf("registry holds %d devices, want %d", got, n)
	}
	// Every 100th device is heard: every 200th reporting now, the others
	// silent for three hours after reporting every ten minutes.
	now := time.Now()
	for i := 0; i < n; i += 100 {
		end := now
		if i%200 != 0 {
			end = now.Add(-3 * time.Hour)
		}
		for k := 1; k >= 0; k-- {
			d.ops.health.Observe(devices.Observation{EUI: fleetDeviceEUI(i), Time: end.Add(-time.Duration(k) * 10 * time.Minute),
				Name: fmt.Sprintf("bin-%06d", i), Model: simulate.Model, Source: "udp-gw", FCnt: uint32(10 - k), HasFCnt: true})
		}
	}

	p := browserPage{t: t, ctx: browser(t)}
	p.step("open the page", chromedp.Navigate(base+"/status"), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	p.step("sign in", chromedp.SendKeys(chromedp.CSS("#token"), rigToken), chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
	p.waitFor("the first refresh", `document.body.dataset.refreshes >= 1`)

	// Load the page again, signed in, and time it to the first page of
	// the device table: what an operator opening the page waits for.
	start := time.Now()
	p.step("reload", chromedp.Navigate(base+"/status"))
	p.waitFor("the first page of devices", `document.querySelectorAll('#devices tbody tr[data-eui]').length > 0`)
	wall := time.Since(start)
	var pageMs string
	p.eval(`document.querySelector('#devices').dataset.firstRenderMs`, &pageMs)
	t.Logf("first page of %d devices rendered %s ms after navigation (page clock), %v from the test's Navigate", n, pageMs, wall.Round(time.Millisecond))

	var rows []pageRow
	p.eval(rowsJS, &rows)
	if len(rows) != 50 || rows[0].EUI != fleetDeviceEUI(0).String() || rows[49].EUI != fleetDeviceEUI(49).String() {
		t.Fatalf("first page: %d rows %+v", len(rows), rows)
	}
	if rows[0].Health != "green" || rows[1].Health != "grey" {
		t.Errorf("first page's health: %+v, %+v", rows[0], rows[1])
	}
	p.waitFor("the overview", `document.body.dataset.refreshes >= 1`)
	want := map[string]string{
		"#devices-registered": "100000",
		"#devices-silent":     "500",
		"#devices-green":      "500",
		"#devices-amber":      "0",
		"#devices-red":        "500",
		"#devices-grey":       "99000",
		"#devices-count":      "1–50 of 100000 devices",
	}
	for sel, w := range want {
		if got := p.text(sel); got != w {
			t.Errorf("%s = %q, want %q", sel, got, w)
		}
	}

	// Next and back.
	p.step("next page", chromedp.Click(chromedp.CSS("#devices-next")))
	p.waitFor("the second page", fmt.Sprintf(`document.querySelector('#devices tbody tr[data-eui]').dataset.eui === %q`, fleetDeviceEUI(50).String()))
	if got := p.text("#devices-count"); got != "51–100 of 100000 devices" {
		t.Errorf("second page count %q", got)
	}
	p.step("previous page", chromedp.Click(chromedp.CSS("#devices-prev")))
	p.waitFor("the first page again", fmt.Sprintf(`document.querySelector('#devices tbody tr[data-eui]').dataset.eui === %q`, fleetDeviceEUI(0).String()))

	// The server's search finds one device of 100,000 by name.
	target := fleetDeviceEUI(77_777).String()
	start = time.Now()
	p.step("search", chromedp.SendKeys(chromedp.CSS("#device-search"), "bin-077777"))
	p.waitFor("the searched device", fmt.Sprintf(`(() => { const r = document.querySelectorAll('#devices tbody tr[data-eui]'); return r.length === 1 && r[0].dataset.eui === %q; })()`, target))
	t.Logf("search for one device of %d answered on the page %v after typing (250 ms of it the typing pause)", n, time.Since(start).Round(time.Millisecond))
	if got := p.text("#devices-count"); got != "1–1 of 1 matching of 100000" {
		t.Errorf("search count %q", got)
	}
	var nextDisabled bool
	p.eval(`document.querySelector('#devices-next').disabled`, &nextDisabled)
	if !nextDisabled {
		t.Error("Next is enabled on the search's only page")
	}
}
