package main

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// attackPage is what a site the operator happens to visit can do against
// the daemon's API at api from the browser: fetches with the content
// types a page may send cross-origin without asking (text/plain, no
// type), a JSON fetch without CORS (the browser drops the type), a fetch
// with credentials (needs a preflight), replay triggers, a DELETE, and
// two form posts importing a device. It has no token: nothing in the
// browser holds one for it.
func attackPage(api string) string {
	csvField := html.EscapeString("dev_eui,name,model\n0909090909090909,evil-form,cayenne-lpp\nx")
	return `<!doctype html><html><head><title>cute cats</title></head><body>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe>
<form id="plain" method="POST" enctype="text/plain" target="sink1" action="` + api + `/api/v1/devices/import?format=csv">
<input type="hidden" name="` + csvField + `" value="y"></form>
<form id="urlenc" method="POST" target="sink2" action="` + api + `/api/v1/devices/import?format=csv">
<input type="hidden" name="csv" value="` + csvField + `"></form>
<script>
const api = ` + fmt.Sprintf("%q", api) + `;
const dev = JSON.stringify({dev_eui: "0808080808080808", name: "evil", model: "cayenne-lpp"});
const attempts = {
  "text/plain create, no-cors": () => fetch(api + "/api/v1/devices", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: dev}),
  "text/plain create, cors": () => fetch(api + "/api/v1/devices", {method: "POST", body: dev}),
  "JSON create, no-cors": () => fetch(api + "/api/v1/devices", {method: "POST", mode: "no-cors", headers: {"Content-Type": "application/json"}, body: dev}),
  "JSON create with credentials": () => fetch(api + "/api/v1/devices", {method: "POST", credentials: "include", headers: {"Content-Type": "application/json"}, body: dev}),
  "replay all, no body": () => fetch(api + "/api/v1/deadletters/replay", {method: "POST", mode: "no-cors"}),
  "replay one, text body": () => fetch(api + "/api/v1/deadletters/1/replay?force=true", {method: "POST", mode: "no-cors", body: "{}"}),
  "replay with credentials": () => fetch(api + "/api/v1/deadletters/replay", {method: "POST", credentials: "include", headers: {"Content-Type": "application/json"}, body: '{"force": true}'}),
  "delete, no-cors": () => fetch(api + "/api/v1/devices/0101010101010101", {method: "DELETE", mode: "no-cors"}),
};
window.outcomes = {};
Promise.allSettled(Object.entries(attempts).map(([name, f]) => Promise.resolve().then(f).then(
  r => { window.outcomes[name] = "answered (" + r.type + " " + r.status + ")"; },
  e => { window.outcomes[name] = "failed: " + e; }))).then(() => {
  document.getElementById("plain").submit();
  document.getElementById("urlenc").submit();
  window.done = true;
});
</script></body></html>`
}

// TestForeignPageCannotChangeAnything opens a page served from another
// loopback port in headless Chromium; it tries to create devices, import
// devices by form, and replay dead letters on a daemon without
// http.token (which generated one). Nothing changes: the registry and the
// dead letters read through the API with the token are what they were,
// and every request of the page that reached the daemon was refused.
func TestForeignPageCannotChangeAnything(t *testing.T) {
	r := startTokenlessRig(t)
	snapshot := func() string {
		t.Helper()
		code, devs := r.get(t, "/api/v1/devices/export?format=csv", r.token, "")
		code2, letters := r.get(t, "/api/v1/deadletters", r.token, "")
		if code != 200 || code2 != 200 {
			t.Fatalf("snapshot: %d %s / %d %s", code, devs, code2, letters)
		}
		return devs + "\n" + letters
	}
	before := snapshot()
	if !strings.Contains(before, "bin-1") || !strings.Contains(before, `"count":1`) {
		t.Fatalf("the rig should hold a device and a dead letter:\n%s", before)
	}

	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, attackPage(r.base))
	}))
	defer attacker.Close()
	if strings.TrimPrefix(attacker.URL, "http://") == strings.TrimPrefix(r.base, "http://") {
		t.Fatal("the attacker's page must come from another origin")
	}

	// What reached the daemon, from the browser's network log: method and
	// URL by request, and the status the daemon answered.
	type seen struct {
		method, url string
		status      int64 // 0: no answer (the browser stopped it)
		failed      string
	}
	var (
		mu   sync.Mutex
		reqs = map[network.RequestID]*seen{}
	)
	at := func(id network.RequestID) *seen {
		if reqs[id] == nil {
			reqs[id] = &seen{}
		}
		return reqs[id]
	}
	ctx, cancel := chromedp.NewContext(browser(t), chromedp.WithListener(func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			s := at(e.RequestID)
			s.method, s.url = e.Request.Method, e.Request.URL
		case *network.EventResponseReceived:
			at(e.RequestID).status = e.Response.Status
		case *network.EventResponseReceivedExtraInfo:
			at(e.RequestID).status = e.StatusCode
		case *network.EventLoadingFailed:
			at(e.RequestID).failed = e.ErrorText
		}
	}))
	defer cancel()
	sctx, scancel := context.WithTimeout(ctx, 60*time.Second)
	defer scancel()
	if err := chromedp.Do(sctx, chromedp.Navigate(attacker.URL)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(sctx, chromedp.Poll[chromedp.Void](`window.done === true`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("the attack page did not finish: %v", err)
	}
	outcomes, err := chromedp.Run(sctx, chromedp.Evaluate[map[string]string](`window.outcomes`))
	if err != nil {
		t.Fatal(err)
	}
	for name, o := range outcomes {
		t.Logf("%s: %s", name, o)
	}
	for _, name := range []string{"JSON create with credentials", "replay with credentials", "text/plain create, cors"} {
		if !strings.HasPrefix(outcomes[name], "failed") {
			t.Errorf("%s: %s; the page must not read an answer of the API", name, outcomes[name])
		}
	}

	// Wait until the form posts were answered too: every POST to the API
	// the browser sent has a status or failed.
	apiPosts := func() (answered []seen, pending int) {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range reqs {
			if s.method != "POST" || !strings.HasPrefix(s.url, r.base+"/api/") {
				continue
			}
			if s.status == 0 && s.failed == "" {
				pending++
			}
			answered = append(answered, *s)
		}
		return answered, pending
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		posts, pending := apiPosts()
		forms := 0
		for _, p := range posts {
			if strings.Contains(p.url, "/devices/import") && p.status != 0 {
				forms++
			}
		}
		if pending == 0 && forms >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page's requests did not all finish: %+v", posts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	posts, _ := apiPosts()
	refused := 0
	for _, p := range posts {
		t.Logf("daemon saw POST %s: status %d %s", strings.TrimPrefix(p.url, r.base), p.status, p.failed)
		switch {
		case p.status >= 200 && p.status < 400:
			t.Errorf("POST %s was answered %d", p.url, p.status)
		case p.status == http.StatusUnsupportedMediaType:
			refused++
		}
	}
	// The no-cors fetches (3 creates, 2 replays; the DELETE is not
	// sendable without CORS) and the 2 forms reached the daemon and were
	// refused for their Content-Type.
	if refused < 7 {
		t.Errorf("%d requests of the page were refused with 415, want at least 7: %+v", refused, posts)
	}

	if after := snapshot(); after != before {
		t.Fatalf("a foreign page changed the daemon:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// The snapshot does show changes: the same calls with the token, as
	// the API's clients make them, change it.
	api := opsAPI{t: t, base: r.base, token: r.token}
	api.call("POST", "/api/v1/deadletters/replay", map[string]any{"force": true}, 200)
	api.call("POST", "/api/v1/devices", map[string]any{"dev_eui": "0808080808080808", "name": "legit", "model": "cayenne-lpp"}, 201)
	after := snapshot()
	if after == before || !strings.Contains(after, "legit") {
		t.Fatalf("the snapshot misses changes:\n%s", after)
	}
}

// TestStatusPageAsksForGeneratedToken: with no http.token the page still
// asks for a token first, and the generated one opens it.
func TestStatusPageAsksForGeneratedToken(t *testing.T) {
	r := startTokenlessRig(t)
	ctx, cancel := context.WithTimeout(browser(t), 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(r.base+"/status"), chromedp.WaitVisible(chromedp.CSS("#login-form"))); err != nil {
		t.Fatalf("the page does not ask for the token: %v", err)
	}
	refreshes, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.dataset.refreshes || "0"`))
	if err != nil || refreshes != "0" {
		t.Fatalf("the page called the API before it had a token: %q %v", refreshes, err)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#token"), " "+r.token+"\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`document.body.dataset.refreshes >= 1 && document.querySelector('#devices-registered').textContent === "1"`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("the generated token did not open the page: %v", err)
	}
}
