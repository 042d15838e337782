package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// The http sources end to end (issue 19.1): real HTTP requests into the
// daemon, points in a real InfluxDB.

const hookSecret = "hook-s3cret"

// hookSource is the YAML of a chirpstack-v4 http source on port, with
// header auth and extra keys (", key: value").
func hookSource(name string, port int, extra string) string {
	return fmt.Sprintf("  - {name: %s, type: http, format: chirpstack-v4, listen: \"127.0.0.1:%d\", path: /cs, auth: {header: X-Hook-Secret, value: %q}%s}\n",
		name, port, hookSecret, extra)
}

// hookPost posts body to url with the hook's secret and the extra
// headers; it returns the status, the answer and Retry-After.
func hookPost(c *http.Client, url string, body []byte, headers ...string) (int, string, string, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		return 0, "", "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hook-Secret", hookSecret)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	return res.StatusCode, string(b), res.Header.Get("Retry-After"), nil
}

// TestWebhookSources: concurrent senders post ChirpStack v4 uplinks and
// The Things Stack webhooks; every 204 is exactly one uplink in InfluxDB.
// Wrong credentials are refused with 401 and write nothing; a malformed
// message is answered 400 and kept as a dead letter; protobuf is refused
// with 415; a status event is answered 204 and counted.
func TestWebhookSources(t *testing.T) {
	t.Parallel()
	const csN, ttsN, senders = 400, 100, 8
	r := newFaultRig(t, 1901, 40)
	tts, err := simulate.NewFleet(simulate.Options{Format: simulate.TTSV3, Devices: 10, Seed: 1902,
		Start: time.Date(2026, 3, 3, 6, 0, 0, 0, time.UTC), Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r.devs = append(r.devs, tts.Devices()...)
	csPort, ttsPort := testserver.FreePort(t), testserver.FreePort(t)
	sources := hookSource("cs-hook", csPort, "") +
		fmt.Sprintf("  - {name: tts-hook, type: http, format: tts-v3, listen: \"127.0.0.1:%d\", path: /tts/, auth: {username: tts, password: pw}}\n", ttsPort)
	d := r.runInProcess(r.writeConfig(rigConfig{sources: sources}))
	diag := r.daemonState(d)
	for _, w := range d.webhooks {
		<-w.Ready()
	}
	csURL := fmt.Sprintf("http://127.0.0.1:%d/cs?event=up", csPort)
	ttsURL := fmt.Sprintf("http://127.0.0.1:%d/tts/up", ttsPort)
	basic := func(user, pw string) string {
		req, _ := http.NewRequest("POST", "/", nil)
		req.SetBasicAuth(user, pw)
		return "Authorization: " + req.Header.Get("Authorization")
	}

	want := expectSet{}
	type post struct {
		url     string
		body    []byte
		headers []string
	}
	var posts []post
	for _, m := range r.stream(csN) {
		want.add(m)
		posts = append(posts, post{csURL, m.Payload, nil})
	}
	for range ttsN {
		m := tts.Next()
		want.add(m)
		posts = append(posts, post{ttsURL, m.Payload, []string{"X-Hook-Secret: ", basic("tts", "pw")}})
	}
	// Refused: wrong or missing credentials, on messages never expected.
	refused := r.stream(4)
	refusedTTS := tts.Next()
	client := &http.Client{Timeout: 30 * time.Second}
	for _, c := range []struct {
		url     string
		body    []byte
		headers []string
	}{
		{csURL, refused[0].Payload, []string{"X-Hook-Secret: wrong"}},
		{csURL, refused[1].Payload, []string{"X-Hook-Secret: "}},
		{csURL, refused[2].Payload, []string{"X-Hook-Secret: " + hookSecret + "x"}},
		{csURL, refused[3].Payload, []string{"X-Hook-Secret: ", basic("tts", "pw")}}, // the other source's credentials
		{ttsURL, refusedTTS.Payload, []string{"X-Hook-Secret: ", basic("tts", "wrong")}},
		{ttsURL, refusedTTS.Payload, nil}, // the other source's secret header only
	} {
		status, answer, _, err := hookPost(client, c.url, c.body, c.headers...)
		if err != nil || status != http.StatusUnauthorized {
			t.Fatalf("credentials %q: %d %q %v, want 401", c.headers, status, answer, err)
		}
	}

	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for range senders {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(posts) {
					return
				}
				p := posts[i]
				status, answer, _, err := hookPost(client, p.url, p.body, p.headers...)
				if err != nil || status != http.StatusNoContent {
					errs <- fmt.Errorf("post %d: %d %q %v", i, status, answer, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// A malformed message: 400 with the reason, and a dead letter.
	status, answer, _, err := hookPost(client, csURL, []byte(`{"deviceInfo":{"devEui":"not-an-eui"},"fCnt":1}`))
	if err != nil || status != http.StatusBadRequest || !strings.Contains(answer, "malformed: chirpstack-v4: deviceInfo.devEui") {
		t.Fatalf("malformed: %d %q %v, want 400 with the reason", status, answer, err)
	}
	// Protobuf: 415 with the fix.
	status, answer, _, err = hookPost(client, csURL, []byte("\x0a\x24\x33"), "Content-Type: application/octet-stream")
	if err != nil || status != http.StatusUnsupportedMediaType || !strings.Contains(answer, "payload encoding to JSON") {
		t.Fatalf("protobuf: %d %q %v, want 415 with the fix", status, answer, err)
	}
	// A status event: 204, counted, nothing written.
	statusEvent, err := os.ReadFile("../../testdata/webhooks/chirpstack-v4/status.json")
	if err != nil {
		t.Fatal(err)
	}
	status, answer, _, err = hookPost(client, strings.Replace(csURL, "event=up", "event=status", 1), statusEvent)
	if err != nil || status != http.StatusNoContent || d.counter("webhook.events.status") != 1 {
		t.Fatalf("status event: %d %q %v, counters %v", status, answer, err, d.Counters.Snapshot())
	}

	awaitUplinks(t, r.db, csN+ttsN, 2*time.Minute, diag)
	waitFor(t, 30*time.Second, "spool delivered", func() bool { return d.spool.Stats().Pending == 0 }, diag)
	assertExactly(t, r.db, want)
	if got := d.counter("webhook.unauthorized"); got != 6 {
		t.Errorf("webhook.unauthorized = %d, want 6", got)
	}
	d.stop(t)
	var malformed []gateway.DeadLetter
	for _, dl := range r.deadLetters() {
		if dl.Source == "cs-hook" && dl.Reason == gateway.ReasonMalformed && strings.Contains(string(dl.Raw), "not-an-eui") {
			malformed = append(malformed, dl)
		}
	}
	if len(malformed) != 1 || len(r.deadLetters()) != 1 {
		t.Fatalf("dead letters %+v, want the one malformed message", r.deadLetters())
	}
	// Secrets are never logged, not even those of refused requests.
	if log, err := os.ReadFile(r.log); err != nil || strings.Contains(string(log), hookSecret) {
		t.Fatalf("the daemon's log holds a webhook secret (or cannot be read: %v)", err)
	}
}

// TestWebhookRetryAcrossRestart: senders post uplinks and retry whatever
// was not answered 2xx (503, honouring Retry-After, or a refused
// connection) while the daemon is shut down and started again. A request
// whose body is still arriving at shutdown is drained and answered 204;
// meanwhile new requests get 503 with Retry-After. In the end InfluxDB
// holds exactly one point per uplink.
func TestWebhookRetryAcrossRestart(t *testing.T) {
	t.Parallel()
	const n, senders = 600, 4
	r := newFaultRig(t, 1903, 30)
	port := testserver.FreePort(t)
	cfgPath := r.writeConfig(rigConfig{sources: hookSource("cs-hook", port, ", retry_after: 1s, drain_timeout: 30s")})
	d := r.runInProcess(cfgPath)
	diag := r.daemonState(d)
	<-d.webhooks[0].Ready()
	url := fmt.Sprintf("http://127.0.0.1:%d/cs?event=up", port)

	msgs := r.stream(n + 1)
	slow, msgs := msgs[0], msgs[1:]
	want := expectSet{}
	want.add(slow)
	want.add(msgs...)

	var acked, unavailable atomic.Int64
	var next atomic.Int64
	// Each post holds gate for reading; the test takes it to pause the
	// senders while it starts the slow request.
	var gate sync.RWMutex
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	client := &http.Client{Timeout: 30 * time.Second}
	for range senders {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(msgs) {
					return
				}
				for attempt := 0; ; attempt++ {
					if attempt > 600 {
						errs <- fmt.Errorf("uplink %d: not taken after %d tries", i, attempt)
						return
					}
					gate.RLock()
					status, answer, retryAfter, err := hookPost(client, url, msgs[i].Payload)
					gate.RUnlock()
					switch {
					case err != nil: // the daemon is between runs
						time.Sleep(50 * time.Millisecond)
						continue
					case status == http.StatusServiceUnavailable:
						unavailable.Add(1)
						secs, err := strconv.Atoi(retryAfter)
						if err != nil || secs != 1 {
							errs <- fmt.Errorf("503 %q with Retry-After %q, want 1", answer, retryAfter)
							return
						}
						time.Sleep(time.Duration(secs) * time.Second)
						continue
					case status != http.StatusNoContent:
						errs <- fmt.Errorf("uplink %d: %d %q", i, status, answer)
						return
					}
					acked.Add(1)
					break
				}
			}
		})
	}

	// A request whose body arrives slowly: half of it now, the rest once
	// shutdown has begun.
	waitFor(t, time.Minute, "a third acknowledged", func() bool { return acked.Load() >= n/3 }, diag)
	gate.Lock() // no sender's request in flight now
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /cs?event=up HTTP/1.1\r\nHost: x\r\nX-Hook-Secret: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", hookSecret, len(slow.Payload))
	half := len(slow.Payload) / 2
	if _, err := conn.Write(slow.Payload[:half]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the slow request in flight", func() bool { return d.webhooks[0].InFlight() == 1 }, diag)
	d.cancel() // SIGTERM
	gate.Unlock()
	waitFor(t, time.Minute, "503 while draining", func() bool { return d.counter("webhook.unavailable") > 0 }, diag)
	if _, err := conn.Write(slow.Payload[half:]); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 204") {
		t.Fatalf("the request in flight at shutdown: %q %v, want 204", line, err)
	}
	if err := <-d.done; err != nil {
		t.Fatal(err)
	}
	d.cancel = nil
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d.logf.Close()
	stoppedAt := acked.Load()

	d = r.runInProcess(cfgPath)
	diag = r.daemonState(d)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if stoppedAt >= n || acked.Load() != n {
		t.Fatalf("%d acknowledged before the restart, %d in all; want some after it and %d in all", stoppedAt, acked.Load(), n)
	}
	awaitUplinks(t, r.db, n+1, 2*time.Minute, diag)
	waitFor(t, 30*time.Second, "spool delivered", func() bool { return d.spool.Stats().Pending == 0 }, diag)
	assertExactly(t, r.db, want)
	t.Logf("%d uplinks: %d answered 503 while draining and retried, %d acknowledged before the restart", n, unavailable.Load(), stoppedAt)
	if len(r.deadLetters()) != 0 {
		t.Fatalf("dead letters: %+v", r.deadLetters())
	}
}

// TestWebhookHugeBody: a 100 MB body is answered 413 after the first MiB
// at most, declared or chunked, and the daemon's memory does not follow
// it; the next uplink is taken as usual.
func TestWebhookHugeBody(t *testing.T) {
	t.Parallel()
	const huge = 100 << 20
	r := newFaultRig(t, 1904, 5)
	port := testserver.FreePort(t)
	p := r.startProcess(r.writeConfig(rigConfig{sources: hookSource("cs-hook", port, "")}))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitFor(t, time.Minute, "the http source listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, r.logTail)
	hwm := func() int64 {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.cmd.Process.Pid), "status"))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				return kb << 10
			}
		}
		t.Fatal("no VmHWM")
		return 0
	}
	before := hwm()
	for _, chunked := range []bool{false, true} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		head := "POST /cs?event=up HTTP/1.1\r\nHost: x\r\nX-Hook-Secret: " + hookSecret + "\r\nContent-Type: application/json\r\n"
		if chunked {
			head += "Transfer-Encoding: chunked\r\n\r\n"
		} else {
			head += fmt.Sprintf("Content-Length: %d\r\n\r\n", huge)
		}
		answered := make(chan string, 1)
		go func() {
			line, _ := bufio.NewReader(conn).ReadString('\n')
			answered <- line
		}()
		if _, err := conn.Write([]byte(head)); err != nil {
			t.Fatal(err)
		}
		block := []byte("{\"pad\":\"" + strings.Repeat("x", 64<<10-10) + "\"}")
		sent := 0
	send:
		for sent < huge {
			chunk := block
			if chunked {
				chunk = append([]byte(fmt.Sprintf("%x\r\n", len(block))), append(block, "\r\n"...)...)
			}
			if _, err := conn.Write(chunk); err != nil {
				break // the daemon answered and closed
			}
			sent += len(block)
			select {
			case line := <-answered:
				answered <- line
				break send
			default:
			}
		}
		line := <-answered
		conn.Close()
		if !strings.HasPrefix(line, "HTTP/1.1 413") {
			t.Fatalf("100 MB body (chunked %v): answer %q, want 413", chunked, line)
		}
		if sent >= huge {
			t.Fatalf("100 MB body (chunked %v): all of it was sent before the answer", chunked)
		}
		t.Logf("100 MB body (chunked %v): 413 after %d bytes sent", chunked, sent)
	}
	after := hwm()
	t.Logf("daemon peak RSS %d MiB before the 100 MB bodies, %d MiB after", before>>20, after>>20)
	if after-before > 16<<20 {
		t.Fatalf("peak RSS grew by %d MiB for two refused 100 MB bodies", (after-before)>>20)
	}
	m := r.stream(1)[0]
	status, answer, _, err := hookPost(&http.Client{Timeout: 30 * time.Second}, "http://"+addr+"/cs?event=up", m.Payload)
	if err != nil || status != http.StatusNoContent {
		t.Fatalf("uplink after the huge bodies: %d %q %v", status, answer, err)
	}
	want := expectSet{}
	want.add(m)
	awaitUplinks(t, r.db, 1, time.Minute, func() string { return r.logTail() })
	assertExactly(t, r.db, want)
	if err := p.terminate(); err != nil {
		t.Fatal(err)
	}
}

// TestWebhookDeadLetterReplay: an uplink posted to an http source that
// cannot become points (its device names a model no decoder has) is
// answered 204, since sending it again would not help, and kept as a dead
// letter; once the device is fixed, replaying the letter through the API
// reads it with the source's parser and writes it.
func TestWebhookDeadLetterReplay(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t, 1905, 2)
	r.devs[0].Model = "acme-missing"
	port := testserver.FreePort(t)
	cfgPath := r.writeConfig(rigConfig{sources: hookSource("cs-hook", port, "")})
	d := r.runInProcess(cfgPath)
	<-d.webhooks[0].Ready()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var m simulate.Message
	for m = r.stream(1)[0]; m.DevEUI != r.devs[0].EUI; m = r.stream(1)[0] {
	}
	status, answer, _, err := hookPost(&http.Client{Timeout: 30 * time.Second}, fmt.Sprintf("http://127.0.0.1:%d/cs?event=up", port), m.Payload)
	if err != nil || status != http.StatusNoContent {
		t.Fatalf("uplink of a device without a decoder: %d %q %v, want 204", status, answer, err)
	}
	token, err := os.ReadFile(filepath.Join(cfg.StateDir, tokenFileName))
	if err != nil {
		t.Fatal(err)
	}
	api := opsAPI{t: t, base: "http://" + cfg.HTTP.Listen, token: strings.TrimSpace(string(token))}
	api.waitFor("the dead letter", func() bool {
		return api.call("GET", "/api/v1/deadletters?source=cs-hook&reason=unknown_model", nil, 200)["count"] == float64(1)
	})
	dev := r.devs[0]
	api.call("PUT", "/api/v1/devices/"+dev.EUI.String(), map[string]any{"name": dev.Name, "model": simulate.Model, "tags": dev.Tags}, 200)
	if res := api.call("POST", "/api/v1/deadletters/replay", map[string]any{"source": "cs-hook"}, 200); res["replayed"] != float64(1) {
		t.Fatalf("replay: %v, want the letter replayed", res)
	}
	want := expectSet{}
	want.add(m)
	awaitUplinks(t, r.db, 1, time.Minute, r.daemonState(d))
	assertExactly(t, r.db, want)
}
