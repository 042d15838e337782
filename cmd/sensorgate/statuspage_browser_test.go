package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// chromiumPath finds Debian's chromium (or $SENSORGATE_CHROMIUM). The
// browser test never skips: without a browser it fails and says how to
// get one, so CI cannot pass without running it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SENSORGATE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	t.Fatal("headless Chromium is needed for the status page test: apt-get install chromium (scripts/test.sh installs it when run as root), or set SENSORGATE_CHROMIUM")
	return ""
}

// browser starts a headless Chromium for the test, with a fresh profile
// and every background service off (this machine has no network beyond
// loopback, and an idle Chromium keeps trying it otherwise). The cleanup
// cancels the allocator, which kills the browser, and checks that no
// process of this profile is left.
func browser(t *testing.T) context.Context {
	t.Helper()
	profile := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(profile),
		chromedp.NoSandbox, // root in CI: Chromium refuses its sandbox there
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		chromedp.WindowSize(1440, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // kills the browser and waits for it
		if pids := processesWith(profile); len(pids) > 0 {
			t.Errorf("Chromium processes of profile %s left running: %v", profile, pids)
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	// The first Run starts the browser; it lives as long as ctx.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// processesWith lists the processes whose command line names dir.
func processesWith(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), dir) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && strings.Contains(string(stat), ") Z ") {
			continue // a zombie holds no resources; its parent reaps it
		}
		pids = append(pids, pid)
	}
	return pids
}

// pageRow is a device row as the page shows it.
type pageRow struct {
	EUI    string `json:"eui"`
	Name   string `json:"name"`
	Health string `json:"health"`
	Bars   int    `json:"bars"`
	Total  int    `json:"total"`
}

const rowsJS = `Array.from(document.querySelectorAll('#devices tbody tr[data-eui]')).map(tr => ({
	eui: tr.dataset.eui, name: tr.cells[1].textContent, health: tr.dataset.health,
	bars: tr.querySelectorAll('svg.spark rect').length,
	total: Array.from(tr.querySelectorAll('svg.spark rect')).reduce((a, r) => a + Number(r.dataset.count), 0)}))`

// TestStatusPageInBrowser opens the status page in headless Chromium
// against a daemon that took a day of uplinks through a real Mosquitto
// into a real InfluxDB: it signs in with the token, checks the overview,
// the device table (health colours, sparklines, search), adopts the
// unknown device, replays a dead letter, and saves screenshots.
func TestStatusPageInBrowser(t *testing.T) {
	r := startObservedRig(t)
	ctx := browser(t)
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
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
	text := func(sel string) string {
		t.Helper()
		var s string
		eval(fmt.Sprintf(`document.querySelector(%q).textContent`, sel), &s)
		return strings.TrimSpace(s)
	}
	waitFor := func(what, predicate string) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 40*time.Second)
		defer cancel()
		if _, err := chromedp.Run(sctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}

	dir := os.Getenv("SENSORGATE_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	screenshot := func(name string) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	// The daemon has a token: the page asks for it first.
	step("open the page", chromedp.Navigate(r.base+"/"), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	step("phone width", chromedp.EmulateViewport(390, 844))
	var widths [2]int
	eval(`[document.documentElement.scrollWidth, document.documentElement.clientWidth]`, &widths)
	if widths[0] > widths[1] || widths[1] > 390 {
		t.Errorf("sign-in at 390 px: the page is %d px wide in a %d px window", widths[0], widths[1])
	}
	screenshot("status-login-390.png")
	step("reset the viewport", chromedp.EmulateReset())
	step("sign in with a wrong token", chromedp.SendKeys(chromedp.CSS("#token"), "wrong"), chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
	waitFor("the refusal", `!document.querySelector('#login-error').hidden`)
	if msg := text("#login-error"); !strings.Contains(msg, "refused") {
		t.Errorf("wrong token: %q", msg)
	}
	step("sign in", chromedp.SendKeys(chromedp.CSS("#token"), r.token), chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
	waitFor("the first refresh", `document.body.dataset.refreshes >= 1`)

	// Overview.
	taken := r.written + r.decodeErrors
	want := map[string]string{
		"#sources-connected":  "1 / 1 connected",
		"#throughput-total":   fmt.Sprint(taken),
		"#spool-records":      "0",
		"#spool-bytes":        "0",
		"#devices-registered": "4",
		"#devices-unknown":    "1",
		"#devices-silent":     "1",
		// Counted by the daemon over the heard devices (the unknown one
		// reporting too) and the registered ones never heard from.
		"#devices-green": "2",
		"#devices-amber": "1",
		"#devices-red":   "1",
		"#devices-grey":  "1",
		"#dead-since":    fmt.Sprint(r.decodeErrors + 1), // and the malformed message
	}
	for sel, w := range want {
		if got := text(sel); got != w {
			t.Errorf("%s = %q, want %q", sel, got, w)
		}
	}
	// The minute's count is all of them unless the machine took a minute
	// to get here; some must be in it either way.
	rate, minute := text("#throughput-rate"), text("#throughput-minute")
	if n, err := strconv.Atoi(minute); err != nil || n <= 0 || n > taken || rate == "0" || rate == "–" {
		t.Errorf("throughput %q msg/s, %q in the last minute, after %d uplinks", rate, minute, taken)
	}
	if errs := text("#errors-list"); !strings.Contains(errs, "decode_error") || !strings.Contains(errs, "malformed") {
		t.Errorf("last errors: %q", errs)
	}

	// Devices: colours and a day of sparkline.
	var rows []pageRow
	eval(rowsJS, &rows)
	health := map[string]string{}
	for _, row := range rows {
		health[row.EUI] = row.Health
		if row.Bars != 24 {
			t.Errorf("%s: %d sparkline bars, want 24", row.Name, row.Bars)
		}
	}
	for eui, w := range map[string]string{r.good.EUI.String(): "green", r.flaky.EUI.String(): "amber", r.gone.EUI.String(): "red", r.never.EUI.String(): "grey"} {
		if health[eui] != w {
			t.Errorf("device %s is %q, want %q (rows %+v)", eui, health[eui], w, rows)
		}
	}
	for _, row := range rows {
		if row.EUI == r.good.EUI.String() && row.Total < 10 {
			t.Errorf("the good device's sparkline holds %d uplinks", row.Total)
		}
	}

	// Search filters the table as one types.
	// Search asks the daemon once typing pauses.
	step("search", chromedp.SendKeys(chromedp.CSS("#device-search"), "river"))
	waitFor("the search's answer", `document.querySelectorAll('#devices tbody tr[data-eui]').length === 1`)
	eval(rowsJS, &rows)
	if len(rows) != 1 || rows[0].EUI != r.gone.EUI.String() {
		t.Errorf("search 'river': %+v", rows)
	}
	step("clear the search", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector('#device-search'); s.value = ''; s.dispatchEvent(new Event('input')); })()`)(ctx, tg)
		return err
	}))
	waitFor("every device again", `document.querySelectorAll('#devices tbody tr[data-eui]').length === 4`)

	screenshot("status-page.png")
	// checkLayout measures the page on a laptop and on a phone: nothing
	// wider than the window, tables scrolling inside their card, the
	// overview's numbers on screen.
	checkLayout := func(stage string) {
		t.Helper()
		for _, vp := range []struct {
			name string
			w, h int64
		}{{"1280", 1280, 900}, {"390", 390, 844}} {
			step("viewport "+vp.name, chromedp.EmulateViewport(vp.w, vp.h))
			what := strings.TrimSpace(vp.name + " px " + strings.TrimPrefix(stage, "-"))
			var l pageLayout
			eval(layoutJS, &l)
			if l.ScrollWidth > l.ClientWidth || l.ClientWidth > int(vp.w) {
				t.Errorf("%s: the page is %d px wide in a %d px window", what, l.ScrollWidth, l.ClientWidth)
			}
			if len(l.Overflowing) > 0 {
				t.Errorf("%s: elements past the window's edge: %v", what, l.Overflowing)
			}
			if len(l.Hidden) > 0 {
				t.Errorf("%s: overview numbers not on screen: %v", what, l.Hidden)
			}
			for _, tb := range l.Tables {
				if tb.Overflow != "auto" || !tb.Fits || tb.TallestRow > 200 {
					t.Errorf("%s: table %s neither scrolls inside its container nor keeps its rows low (a column squeezed to a letter a line): %+v", what, tb.ID, tb)
				}
				// A laptop shows every column, the Adopt and Replay
				// buttons included, without scrolling.
				if vp.w >= 1280 && tb.Scrolls {
					t.Errorf("%s: table %s is wider than its card", what, tb.ID)
				}
			}
			screenshot("status-page-" + vp.name + stage + ".png")
		}
		step("reset the viewport", chromedp.EmulateReset())
	}
	checkLayout("")

	// Adopt the unknown device under a name and model of our choosing.
	stranger := r.stranger.EUI.String()
	unknownRow := fmt.Sprintf(`#unknown tbody tr[data-eui=%q]`, stranger)
	step("fill in the adoption", chromedp.WaitVisible(chromedp.CSS(unknownRow+" button.adopt")), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
			const tr = document.querySelector(%q);
			tr.querySelector('.adopt-name').value = 'weather-park-4';
			tr.querySelector('.adopt-model').value = 'cayenne-lpp';
		})()`, unknownRow))(ctx, tg)
		return err
	}), chromedp.Click(chromedp.CSS(unknownRow+" button.adopt")))
	waitFor("the adopted device in the device table", fmt.Sprintf(`document.querySelector('#devices tbody tr[data-eui=%q]') !== null && document.querySelector(%q) === null`, stranger, unknownRow))
	dev, ok := r.d.Devices.Lookup(r.stranger.EUI)
	if !ok || dev.Name != "weather-park-4" || dev.Model != "cayenne-lpp" {
		t.Errorf("registry after adoption: %+v %v", dev, ok)
	}
	if got := text("#devices-registered"); got != "5" {
		t.Errorf("registered after adoption: %q", got)
	}
	eval(rowsJS, &rows)
	for _, row := range rows {
		if row.EUI == stranger && (row.Name != "weather-park-4" || row.Health != "green" || row.Total == 0) {
			t.Errorf("adopted row: %+v", row)
		}
	}

	// Replay the decode error: it still does not decode, and says so.
	letter := `#deadletters tbody tr[data-reason="decode_error"]`
	step("replay", chromedp.Click(chromedp.CSS(letter+" button.replay")))
	waitFor("the replay's outcome", fmt.Sprintf(`document.querySelector(%q).textContent.includes('failed')`, letter+" .result"))
	if res := text(letter + " .result"); !strings.Contains(res, "decode_error") {
		t.Errorf("replay result: %q", res)
	}
	screenshot("status-page-adopted.png")

	// The spool figure in human units, checked in Chromium's own engine.
	for _, tc := range []struct {
		n    string
		want string
	}{
		{"0", "0"}, {"1", "1 B"}, {"999", "999 B"}, {"1000", "0.977 KiB"}, {"1024", "1 KiB"}, {"1536", "1.5 KiB"},
		{"10291", "10 KiB"}, {"1023487", "999 KiB"}, {"1023900", "0.977 MiB"}, {"1048575", "1 MiB"},
		{"5242880", "5 MiB"}, {"123456789", "118 MiB"}, {"1342177280", "1.25 GiB"},
		{"-1", "–"}, {"NaN", "–"}, {"undefined", "–"},
	} {
		var got string
		eval("window.sensorgateFormat.bytes("+tc.n+")", &got)
		if got != tc.want {
			t.Errorf("bytes(%s) = %q, want %q", tc.n, got, tc.want)
		}
	}

	checkLayout("-replayed")
}

// pageLayout is what layoutJS measures.
type pageLayout struct {
	ScrollWidth int      `json:"scrollWidth"`
	ClientWidth int      `json:"clientWidth"`
	Overflowing []string `json:"overflowing"`
	Hidden      []string `json:"hidden"`
	Tables      []struct {
		ID       string `json:"id"`
		Overflow string `json:"overflow"`
		Fits     bool   `json:"fits"`
		// Scrolls is whether the table is wider than its card.
		Scrolls bool `json:"scrolls"`
		// TallestRow is the highest body row in px: a few wrapped
		// lines of detail fit in 200, a column squeezed to a letter a
		// line (the detail of a dead letter at 390 px) takes 700.
		TallestRow float64 `json:"tallestRow"`
	} `json:"tables"`
}

// layoutJS measures the page against the window: the document's width,
// the elements reaching past either edge (those inside a table's
// scrolling container excepted), the overview numbers not fully on
// screen, and each table's container (does it scroll, is it wider than
// the window) and tallest row.
const layoutJS = `(() => {
	const de = document.documentElement, w = de.clientWidth;
	const name = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : '');
	const overflowing = [];
	for (const e of document.querySelectorAll('body *')) {
		const r = e.getBoundingClientRect();
		if (r.width === 0 || r.height === 0) continue;
		const wrap = e.closest('.table-wrap');
		if (wrap && wrap !== e) continue;
		if (r.right > w + 0.5 || r.left < -0.5) overflowing.push(name(e) + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
	}
	const hidden = ['#sources-connected', '#throughput-rate', '#throughput-total', '#spool-bytes', '#spool-records', '#devices-registered', '#dead-since'].filter(sel => {
		const e = document.querySelector(sel), r = e.getBoundingClientRect();
		return r.width === 0 || r.height === 0 || r.left < 0 || r.right > w || getComputedStyle(e).visibility !== 'visible';
	});
	const tables = Array.from(document.querySelectorAll('table.grid')).map(t => {
		const c = t.parentElement, r = c.getBoundingClientRect();
		const tallestRow = Math.max(0, ...Array.from(t.tBodies[0].rows).map(tr => tr.getBoundingClientRect().height));
		return {id: t.id, overflow: getComputedStyle(c).overflowX, fits: r.left >= 0 && r.right <= w + 0.5, tallestRow, scrolls: c.scrollWidth > c.clientWidth};
	});
	return {scrollWidth: de.scrollWidth, clientWidth: w, overflowing: overflowing.slice(0, 20), hidden, tables};
})()`

// remarshal converts a value Evaluate decoded into the test's type.
func remarshal(t *testing.T, v, out any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err == nil {
		err = json.Unmarshal(b, out)
	}
	if err != nil {
		t.Fatalf("page value %v: %v", v, err)
	}
}

// TestStatusPageInstancesInBrowser runs two daemons on a shared
// subscription of a real Mosquitto with one registry in a real PostgreSQL,
// publishes a fleet's uplinks (each daemon handles a share), and opens
// instance A's status page in headless Chromium: it lists both instances
// with version, a recent heartbeat and their source connected, marks A as
// the one serving the page, and shows every device with all its uplinks
// and 0.0 % loss, though A handled only part of them.
func TestStatusPageInstancesInBrowser(t *testing.T) {
	mq := testserver.StartMosquitto(t)
	db := testserver.StartInfluxDB(t)
	dsn := testserver.PostgresDB(t)
	dir := t.TempDir()
	const devicesN, uplinks = 6, 120
	fleet, err := simulate.NewFleet(simulate.Options{Format: simulate.ChirpStackV4, Devices: devicesN, Seed: 23,
		Start: time.Now().UTC().Add(-uplinks * 10 * time.Second), Interval: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	writeYAML(t, filepath.Join(dir, "devices.yaml"), map[string]any{"devices": fleet.Devices()})
	var msgs []simulate.Message
	perDevice := map[string]int{}
	for range uplinks {
		m := fleet.Next()
		msgs = append(msgs, m)
		perDevice[m.DevEUI.String()]++
	}
	start := func(name string) (*Daemon, string) {
		port := testserver.FreePort(t)
		clientID := "status-" + name
		presubscribe(t, mq.URL(), clientID, []string{"$share/page/" + csTopic})
		cfgPath := filepath.Join(dir, name+".yaml")
		text := fmt.Sprintf(`log: {level: warn, format: json}
http: {listen: "127.0.0.1:%[1]d", token: %[2]q}
state_dir: %[3]s/%[4]s
registry: {driver: postgres, dsn: %[5]q, health_sync_interval: 200ms}
sources:
  - {name: cs4, type: mqtt, format: chirpstack-v4, broker: %[6]q, topics: [%[7]q], share_group: page, client_id: %[8]s}
influx: {url: %[9]q, bucket: sensors/autogen, flush_interval: 20ms}
devices: {import: %[3]s/devices.yaml}
`, port, rigToken, dir, name, dsn, mq.URL(), csTopic, clientID, db.URL())
		if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		d := startDaemon(t, cfg, zerolog.ErrorLevel)
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		opsAPI{t: t, base: base, token: rigToken}.waitReady()
		return d, base
	}
	a, base := start("a")
	b, _ := start("b")
	publishAll(t, mq.URL(), msgs)
	api := opsAPI{t: t, base: base, token: rigToken}
	api.waitFor("every uplink taken by the two", func() bool {
		return a.Counters.Get("uplinks_written")+b.Counters.Get("uplinks_written") == uplinks
	})
	if a.Counters.Get("uplinks_written") == 0 || b.Counters.Get("uplinks_written") == 0 {
		t.Fatalf("the shared subscription did not split: A took %d, B %d", a.Counters.Get("uplinks_written"), b.Counters.Get("uplinks_written"))
	}

	ctx := browser(t)
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	run("open the page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	run("sign in", chromedp.SendKeys(chromedp.CSS("#token"), rigToken), chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
	type instanceRow struct {
		ID, Self, Text, Heartbeat, Sources string
	}
	type page struct {
		Shown     bool          `json:"shown"`
		Instances []instanceRow `json:"instances"`
		Devices   [][]string    `json:"devices"`
		Refreshes int           `json:"refreshes"`
	}
	const pageJS = `({
		shown: !document.querySelector('#card-instances').hidden,
		refreshes: Number(document.body.dataset.refreshes || 0),
		instances: Array.from(document.querySelectorAll('#instances tbody tr')).map(tr => ({
			ID: tr.dataset.instance, Self: tr.dataset.self, Text: tr.cells[0].textContent,
			Heartbeat: tr.cells[2].textContent, Sources: tr.cells[3].textContent})),
		devices: Array.from(document.querySelectorAll('#devices tbody tr[data-eui]')).map(tr =>
			[tr.dataset.eui, tr.cells[6].textContent, tr.cells[7].textContent]),
	})`
	var p page
	deadline := time.Now().Add(time.Minute)
	for {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		v, err := chromedp.Run(sctx, chromedp.Evaluate[any](pageJS))
		cancel()
		if err != nil {
			t.Fatalf("read the page: %v", err)
		}
		remarshal(t, v, &p)
		ok := p.Shown && len(p.Instances) == 2 && len(p.Devices) == devicesN
		for _, d := range p.Devices {
			ok = ok && d[1] == fmt.Sprint(perDevice[d[0]]) && d[2] == "0.0 %"
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page after a minute: %+v; want both instances and every device with all its uplinks (%v) and 0.0 %% loss", p, perDevice)
		}
		// The page refreshes itself; wait for its next refresh.
		run("the next refresh", chromedp.Poll[chromedp.Void](fmt.Sprintf(`Number(document.body.dataset.refreshes || 0) > %d`, p.Refreshes), chromedp.WithPollingTimeout(20*time.Second)))
	}
	ids := map[string]instanceRow{}
	for _, in := range p.Instances {
		ids[in.ID] = in
	}
	self, other := ids["status-a"], ids["status-b"]
	if self.Self != "true" || !strings.Contains(self.Text, "this one") || other.Self != "false" || other.ID != "status-b" {
		t.Errorf("instances %+v: want status-a marked as this one and status-b", p.Instances)
	}
	for _, in := range p.Instances {
		if !strings.HasSuffix(in.Heartbeat, " s ago") || in.Sources != "1 / 1" {
			t.Errorf("instance %s: heartbeat %q, sources %q: want seconds ago and 1 / 1 connected", in.ID, in.Heartbeat, in.Sources)
		}
	}
	if dir := os.Getenv("SENSORGATE_SCREENSHOT_DIR"); dir != "" {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "status-page-instances.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// On a phone the instances card stays within the window, its table
	// scrolling inside it.
	run("phone width", chromedp.EmulateViewport(390, 844))
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	v, err := chromedp.Run(sctx, chromedp.Evaluate[any](layoutJS))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	var l pageLayout
	remarshal(t, v, &l)
	if l.ScrollWidth > l.ClientWidth || len(l.Overflowing) > 0 {
		t.Errorf("390 px: the page is %d px wide in %d, past the edge: %v", l.ScrollWidth, l.ClientWidth, l.Overflowing)
	}
	for _, tb := range l.Tables {
		if tb.ID == "instances" && (tb.Overflow != "auto" || !tb.Fits || tb.TallestRow > 200) {
			t.Errorf("390 px: the instances table neither scrolls in its card nor keeps its rows low: %+v", tb)
		}
	}
}
