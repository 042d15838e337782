package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
)

// TestFeedMessages posts every message of testdata/feeds (the MQTT
// messages, which the network servers post unchanged as webhooks) and
// checks that the handler gets exactly the uplink the feed parser reads,
// or, for a message it refuses, a 400 naming the reason and a dead letter
// holding the body.
func TestFeedMessages(t *testing.T) {
	root := "../../testdata/feeds"
	dirs, _ := filepath.Glob(filepath.Join(root, "*", "source.yaml"))
	bad, _ := filepath.Glob(filepath.Join(root, "bad", "*", "source.yaml"))
	seen, refused := 0, 0
	for _, srcYAML := range append(dirs, bad...) {
		raw, err := os.ReadFile(srcYAML)
		if err != nil {
			t.Fatal(err)
		}
		var mc mqtt.Config
		if err := yaml.Unmarshal(raw, &mc); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(mc.JSON.DeviceID, "topic:") {
			continue // names its device in the topic: no HTTP source can read it
		}
		cfg := testConfig(mc.Format)
		cfg.JSON = mc.JSON
		rec := &recorder{}
		r := startRig(t, cfg, rec.handle)
		parser, err := mqtt.NewParser(cfg.WithDefaults().ParserConfig(), func() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) })
		if err != nil {
			t.Fatal(err)
		}
		msgs, _ := filepath.Glob(filepath.Join(filepath.Dir(srcYAML), "*.json"))
		for _, m := range msgs {
			rel, _ := filepath.Rel(root, m)
			body, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			path := "/hook/" + strings.TrimSuffix(filepath.Base(m), ".json")
			t.Run(rel, func(t *testing.T) {
				seen++
				before, letters := len(rec.all()), len(r.dl.all())
				status, answer, _ := r.post(path, string(body))
				if rel == "bad/tts-v3/join-not-uplink.json" {
					// Not an uplink: a webhook's join-accept event.
					if status != http.StatusNoContent || r.counters.Get("webhook.events.join_accept") == 0 {
						t.Fatalf("join_accept: %d %q, counters %v", status, answer, r.counters.Snapshot())
					}
					return
				}
				want, perr := parser.Parse(path, body)
				if perr != nil {
					refused++
					dls := r.dl.all()
					var pe *mqtt.ParseError
					errors.As(perr, &pe)
					if status != http.StatusBadRequest || !strings.Contains(answer, string(pe.Reason)+": ") || len(dls) != letters+1 {
						t.Fatalf("refused message: %d %q and %d new letters, want 400 naming %s and one letter", status, answer, len(dls)-letters, pe.Reason)
					}
					if dl := dls[len(dls)-1]; dl.Reason != pe.Reason || string(dl.Raw) != string(body) || dl.Source != "hook" || dl.Detail != perr.Error() {
						t.Fatalf("dead letter %+v, want reason %s, the body and the parser's error", dl, pe.Reason)
					}
					return
				}
				got := rec.all()
				if want.Kind == gateway.KindIgnored {
					// An event sensorgate does not use: counted, not handled.
					if status != http.StatusNoContent || len(got) != before {
						t.Fatalf("ignored event: %d %q, %d handled, want 204 and none", status, answer, len(got)-before)
					}
					return
				}
				if status != http.StatusNoContent || len(got) != before+1 {
					t.Fatalf("uplink: %d %q, %d handled, want 204 and one", status, answer, len(got)-before)
				}
				if !reflect.DeepEqual(got[len(got)-1], want) {
					t.Fatalf("uplink differs from the feed parser's:\n got %+v\nwant %+v", got[len(got)-1], want)
				}
			})
		}
		r.stop()
	}
	if seen < 40 || refused < 15 {
		t.Fatalf("checked %d messages, %d refused: the feed folders are missing", seen, refused)
	}
}

// TestEvents posts the network servers' events that are not uplinks
// (testdata/webhooks): each is answered 204 and counted by type. Device
// events the feed parsers read (ChirpStack's status, join and log, The
// Things Stack's join) go to the pipeline as events, as from the MQTT
// feeds; the others are routed through Events. None reaches the pipeline
// as an uplink or becomes a dead letter.
func TestEvents(t *testing.T) {
	toPipeline := map[string]gateway.Kind{"status": gateway.KindStatus, "join": gateway.KindEvent, "log": gateway.KindEvent, "join_accept": gateway.KindEvent}
	for _, format := range []string{mqtt.FormatChirpStackV4, mqtt.FormatTTSV3} {
		files, _ := filepath.Glob(filepath.Join("../../testdata/webhooks", format, "*.json"))
		if len(files) == 0 {
			t.Fatalf("no %s events in testdata/webhooks", format)
		}
		rec := &recorder{}
		var mu sync.Mutex
		routed := map[string]int{}
		events := func(f, typ string) EventHandler {
			return func(_ context.Context, ev Event) error {
				mu.Lock()
				defer mu.Unlock()
				if f != format || ev.Type != typ || ev.Source != "hook" || len(ev.Body) == 0 {
					return fmt.Errorf("event %+v routed as %s/%s", ev, f, typ)
				}
				routed[typ]++
				return nil
			}
		}
		r := startRig(t, testConfig(format), rec.handle, WithEvents(events))
		for _, f := range files {
			typ := strings.TrimSuffix(filepath.Base(f), ".json")
			body, _ := os.ReadFile(f)
			path := "/hook/"
			if format != mqtt.FormatTTSV3 {
				path += "?event=" + typ
			}
			before := len(rec.all())
			status, answer, _ := r.post(path, string(body))
			mu.Lock()
			n := routed[typ]
			mu.Unlock()
			got := rec.all()[before:]
			if status != http.StatusNoContent || r.counters.Get("webhook.events."+typ) != 1 {
				t.Errorf("%s %s: %d %q, counters %v", format, typ, status, answer, r.counters.Snapshot())
			}
			if kind, ok := toPipeline[typ]; ok {
				if n != 0 || len(got) != 1 || got[0].Kind != kind {
					t.Errorf("%s %s: routed %d times, pipeline got %d messages %+v: want it once as kind %d", format, typ, n, len(got), got, kind)
				}
			} else if n != 1 || len(got) != 0 {
				t.Errorf("%s %s: routed %d times, pipeline got %d messages: want it routed once", format, typ, n, len(got))
			}
		}
		for _, up := range rec.all() {
			if up.Kind == gateway.KindUplink {
				t.Errorf("%s: an event reached the pipeline as an uplink: %+v", format, up)
			}
		}
		if len(r.dl.all()) != 0 {
			t.Errorf("%s events became %d dead letters", format, len(r.dl.all()))
		}
	}
}

// TestEventWithoutRoute: by default an event is counted and answered 204
// (a status event after the pipeline took it); an unknown ChirpStack event
// counts as other and is not handed on.
func TestEventWithoutRoute(t *testing.T) {
	rec := &recorder{}
	r := startRig(t, testConfig(mqtt.FormatChirpStackV4), rec.handle)
	body, _ := os.ReadFile("../../testdata/webhooks/chirpstack-v4/status.json")
	for _, q := range []string{"status", "brand-new"} {
		if status, answer, _ := r.post("/hook/?event="+q, string(body)); status != http.StatusNoContent {
			t.Fatalf("event %s: %d %q", q, status, answer)
		}
	}
	if got := rec.all(); r.counters.Get("webhook.events.status") != 1 || r.counters.Get("webhook.events.other") != 1 || len(got) != 1 || got[0].Kind != gateway.KindStatus {
		t.Fatalf("counters %v, %d uplinks", r.counters.Snapshot(), len(rec.all()))
	}
}

func upBody(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../testdata/feeds/chirpstack-v4/docs-example.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAuth: every method takes its credentials and refuses others with
// 401, before the body is read or anything stored.
func TestAuth(t *testing.T) {
	basic := func(u, p string) string {
		req, _ := http.NewRequest("POST", "/", nil)
		req.SetBasicAuth(u, p)
		return "Authorization: " + req.Header.Get("Authorization")
	}
	cases := []struct {
		name      string
		auth      Auth
		good      []string
		bad       [][]string
		challenge string
	}{
		{"header", Auth{Header: "X-Hook-Key", Value: "k3y"}, []string{"X-Hook-Key: k3y"},
			[][]string{{}, {"X-Hook-Key: k3y2"}, {"X-Hook-Key: K3Y"}, {"X-Other: k3y"}, {"Authorization: Bearer k3y"}}, ""},
		{"basic", Auth{Username: "tts", Password: "pw"}, []string{basic("tts", "pw")},
			[][]string{{}, {basic("tts", "pw2")}, {basic("other", "pw")}, {"Authorization: Bearer pw"}}, "Basic"},
		{"bearer", Auth{BearerToken: "t0k"}, []string{"Authorization: Bearer t0k"},
			[][]string{{}, {"Authorization: Bearer t0k2"}, {"Authorization: t0k"}, {basic("x", "t0k")}}, "Bearer"},
		{"none", Auth{None: true}, nil, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(mqtt.FormatChirpStackV4)
			cfg.Auth = c.auth
			rec := &recorder{}
			r := startRig(t, cfg, rec.handle)
			for _, hs := range c.bad {
				status, answer, h := r.post("/hook/", upBody(t), append([]string{"X-Secret: "}, hs...)...)
				if status != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), c.challenge) {
					t.Errorf("credentials %q: %d %q (WWW-Authenticate %q), want 401", hs, status, answer, h.Get("WWW-Authenticate"))
				}
			}
			if n := len(rec.all()); n != 0 || len(r.dl.all()) != 0 {
				t.Fatalf("refused requests reached the pipeline (%d) or the dead letters", n)
			}
			if got := r.counters.Get("webhook.unauthorized"); got != uint64(len(c.bad)) {
				t.Errorf("webhook.unauthorized %d, want %d", got, len(c.bad))
			}
			if status, answer, _ := r.post("/hook/", upBody(t), append([]string{"X-Secret: "}, c.good...)...); status != http.StatusNoContent || len(rec.all()) != 1 {
				t.Fatalf("right credentials: %d %q", status, answer)
			}
		})
	}
}

// TestRequestChecks: path, method, protobuf and body size are refused
// with the status that says which, and nothing is stored.
func TestRequestChecks(t *testing.T) {
	cfg := testConfig(mqtt.FormatChirpStackV4)
	cfg.MaxBodyBytes = 4096
	rec := &recorder{}
	r := startRig(t, cfg, rec.handle)
	big := `{"deviceInfo":{"devEui":"0101010101010101"},"pad":"` + strings.Repeat("x", 5000) + `"}`
	for _, c := range []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		answer                   string
	}{
		{"other path", "POST", "/elsewhere", upBody(t), nil, 404, "post to /hook/"},
		{"GET", "GET", "/hook/", "", nil, 405, "use POST"},
		{"protobuf", "POST", "/hook/?event=up", "\x0a\x10", []string{"Content-Type: application/octet-stream"}, 415, "payload encoding to JSON"},
		{"too large", "POST", "/hook/?event=up", big, nil, 413, "max_body_bytes 4096"},
	} {
		req, _ := http.NewRequest(c.method, r.url+c.path, strings.NewReader(c.body))
		req.Header.Set("X-Secret", "s3cret")
		for _, h := range c.headers {
			k, v, _ := strings.Cut(h, ": ")
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		b := make([]byte, 512)
		n, _ := res.Body.Read(b)
		res.Body.Close()
		if res.StatusCode != c.status || !strings.Contains(string(b[:n]), c.answer) {
			t.Errorf("%s: %d %q, want %d with %q", c.name, res.StatusCode, b[:n], c.status, c.answer)
		}
	}
	if len(rec.all()) != 0 || len(r.dl.all()) != 0 {
		t.Fatalf("refused requests reached the pipeline or the dead letters")
	}
}

// TestChunkedBodyOverLimit: a body without a declared length is cut off
// at the bound, answered 413, and the connection closed.
func TestChunkedBodyOverLimit(t *testing.T) {
	cfg := testConfig(mqtt.FormatChirpStackV4)
	cfg.MaxBodyBytes = 1 << 16
	r := startRig(t, cfg, (&recorder{}).handle)
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /hook/ HTTP/1.1\r\nHost: x\r\nX-Secret: s3cret\r\nTransfer-Encoding: chunked\r\n\r\n")
	answered := make(chan string, 1)
	go func() {
		b := make([]byte, 256)
		n, _ := conn.Read(b)
		answered <- string(b[:n])
	}()
	chunk := fmt.Sprintf("%x\r\n%s\r\n", 1<<14, strings.Repeat("x", 1<<14))
	sent := 0
	for sent < 64<<20 {
		if _, err := conn.Write([]byte(chunk)); err != nil {
			break // closed after the answer
		}
		sent += 1 << 14
		select {
		case a := <-answered:
			answered <- a
			sent = 64 << 20
		default:
		}
	}
	a := <-answered
	if !strings.HasPrefix(a, "HTTP/1.1 413") {
		t.Fatalf("answer %q, want 413", a)
	}
	if got := r.counters.Get("webhook.too_large"); got != 1 {
		t.Fatalf("webhook.too_large %d", got)
	}
}

// TestNotTakenThenRetry: when the pipeline does not take an uplink (the
// spool refused it), the answer is 503 with Retry-After, and the same
// request sent again is taken once.
func TestNotTakenThenRetry(t *testing.T) {
	var mu sync.Mutex
	calls, taken := 0, 0
	h := func(_ context.Context, up gateway.Uplink) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			return errors.New("spool: append: no space left on device")
		}
		taken++
		return nil
	}
	cfg := testConfig(mqtt.FormatChirpStackV4)
	cfg.RetryAfter = 1500 * time.Millisecond
	r := startRig(t, cfg, h)
	status, answer, hdr := r.post("/hook/?event=up", upBody(t))
	if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") != "2" || !strings.Contains(answer, "no space left") {
		t.Fatalf("first try: %d %q Retry-After %q, want 503, Retry-After 2 and the reason", status, answer, hdr.Get("Retry-After"))
	}
	if status, answer, _ := r.post("/hook/?event=up", upBody(t)); status != http.StatusNoContent {
		t.Fatalf("retry: %d %q", status, answer)
	}
	if taken != 1 || calls != 2 {
		t.Fatalf("%d calls, %d taken", calls, taken)
	}
}

// TestDeadLetterNotKept: a malformed message whose dead letter the store
// refuses is answered 503, so the sender tries again.
func TestDeadLetterNotKept(t *testing.T) {
	r := startRig(t, testConfig(mqtt.FormatChirpStackV4), (&recorder{}).handle)
	r.dl.err = errors.New("deadletter: write queue full")
	if status, answer, hdr := r.post("/hook/", `{"deviceInfo":{}}`); status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("%d %q, want 503 with Retry-After", status, answer)
	}
}

// blocker is a handler that holds every uplink until released.
type blocker struct {
	entered chan struct{}
	release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (b *blocker) handle(ctx context.Context, _ gateway.Uplink) error {
	b.entered <- struct{}{}
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// TestBusy: past max_in_flight requests are answered 503 at once.
func TestBusy(t *testing.T) {
	cfg := testConfig(mqtt.FormatChirpStackV4)
	cfg.MaxInFlight = 2
	b := newBlocker()
	r := startRig(t, cfg, b.handle)
	var wg sync.WaitGroup
	statuses := make(chan int, 2)
	for range 2 {
		wg.Go(func() {
			s, _, _ := r.post("/hook/", upBody(t))
			statuses <- s
		})
	}
	<-b.entered
	<-b.entered
	status, answer, hdr := r.post("/hook/", upBody(t))
	if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") != "10" || !strings.Contains(answer, "max_in_flight") {
		t.Fatalf("third request: %d %q Retry-After %q", status, answer, hdr.Get("Retry-After"))
	}
	close(b.release)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusNoContent {
			t.Fatalf("held request answered %d", s)
		}
	}
	if r.counters.Get("webhook.busy") != 1 {
		t.Fatalf("counters %v", r.counters.Snapshot())
	}
}

// TestDrain: at shutdown a request in flight finishes and is answered
// 204, while new requests get 503 with Retry-After; then Run returns.
func TestDrain(t *testing.T) {
	b := newBlocker()
	r := startRig(t, testConfig(mqtt.FormatChirpStackV4), b.handle)
	first := make(chan int, 1)
	go func() {
		s, _, _ := r.post("/hook/", upBody(t))
		first <- s
	}()
	<-b.entered
	r.cancel()
	for {
		status, answer, hdr := r.post("/hook/", upBody(t))
		if status == http.StatusServiceUnavailable {
			if hdr.Get("Retry-After") == "" || !strings.Contains(answer, "shutting down") {
				t.Fatalf("during the drain: %d %q Retry-After %q", status, answer, hdr.Get("Retry-After"))
			}
			break
		}
		// Before the source saw the cancellation: this one is held too.
		<-b.entered
		go func() { <-first; first <- status }()
	}
	close(b.release)
	if s := <-first; s != http.StatusNoContent {
		t.Fatalf("request in flight at shutdown answered %d, want 204", s)
	}
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	r.cancel = nil
	if _, err := http.Post(r.url+"/hook/", "application/json", strings.NewReader("{}")); err == nil {
		t.Fatal("the source still listens after Run returned")
	}
}

// TestDrainTimeout: a request still in flight at the drain timeout has its
// context ended, and Run returns.
func TestDrainTimeout(t *testing.T) {
	cfg := testConfig(mqtt.FormatChirpStackV4)
	cfg.DrainTimeout = 100 * time.Millisecond
	b := newBlocker()
	r := startRig(t, cfg, b.handle)
	answered := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, r.url+"/hook/", strings.NewReader(upBody(t)))
		req.Header.Set("X-Secret", "s3cret")
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode != http.StatusServiceUnavailable {
				err = fmt.Errorf("answered %d", res.StatusCode)
			}
		}
		answered <- err
	}()
	<-b.entered
	r.cancel()
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	r.cancel = nil
	// Either 503 (the handler returned before the connection closed) or no
	// answer: never a 2xx.
	if err := <-answered; err != nil && strings.Contains(err.Error(), "answered") {
		t.Fatal(err)
	}
}

// TestSlowClients: a client that sends its headers, or its body, too
// slowly is cut off, and the slot it held is free again.
func TestSlowClients(t *testing.T) {
	short := func(s *Source) { s.headerTimeout, s.readTimeout = 200*time.Millisecond, 400*time.Millisecond }
	cfg := testConfig(mqtt.FormatChirpStackV4)
	cfg.MaxInFlight = 1
	r := startRig(t, cfg, (&recorder{}).handle, short)
	addr := strings.TrimPrefix(r.url, "http://")
	for _, c := range []struct{ name, send string }{
		{"headers", "POST /hook/ HTTP/1.1\r\nHost: x\r\n"},
		{"body", "POST /hook/ HTTP/1.1\r\nHost: x\r\nX-Secret: s3cret\r\nContent-Length: 100\r\n\r\n{"},
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte(c.send)); err != nil {
			t.Fatal(err)
		}
		// The server closes the connection, so the reads end (an answer
		// to the cut-off body may come first).
		if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 512)
		for {
			if _, err := conn.Read(b); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("slow %s: not cut off within 30s", c.name)
				}
				break
			}
		}
		conn.Close()
	}
	if status, answer, _ := r.post("/hook/", upBody(t)); status != http.StatusNoContent {
		t.Fatalf("after the slow clients: %d %q", status, answer)
	}
}
