package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// TestHealthcheckCommand: exit 0 while the config's daemon answers
// /healthz, 1 with a reason when nothing listens, when something else
// answers with an error, and when the answer never comes; 2 on bad flags.
func TestHealthcheckCommand(t *testing.T) {
	mq := testserver.StartMosquitto(t)
	dir := t.TempDir()
	port := testserver.FreePort(t)
	cfgText := fmt.Sprintf(`
log: {level: warn, format: json}
http: {listen: "0.0.0.0:%[3]d", token: "t0ken"}
state_dir: %[1]s/state
sources:
  - {name: cs4, type: mqtt, format: chirpstack-v4, broker: %[2]q, topics: ["application/+/device/+/event/up"], client_id: hc-cs4}
influx: {url: "http://127.0.0.1:9", bucket: sensors/autogen}
`, dir, mq.URL(), port)
	cfgPath := filepath.Join(dir, "sensorgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), append([]string{"healthcheck"}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}

	// Nothing listens yet.
	if code, _, errs := run("-c", cfgPath); code != 1 || !strings.Contains(errs, "does not answer") {
		t.Fatalf("no daemon: exit %d, %q; want 1 and 'does not answer'", code, errs)
	}
	// The daemon listens on every interface: asked on loopback.
	startDaemon(t, cfg, zerolog.WarnLevel)
	want := fmt.Sprintf("http://127.0.0.1:%d/healthz: ok", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out, errs := run("-c", cfgPath)
		if code == 0 && strings.Contains(out, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("running daemon: exit %d, %q %q; want 0 and %q", code, out, errs, want)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The Dockerfile's HEALTHCHECK runs the image's binary with these
	// arguments: with the config moved to this test's, they pass.
	argv := dockerHealthcheck(t)
	if len(argv) < 2 || argv[0] != dockerEntrypoint(t) || argv[1] != "healthcheck" {
		t.Fatalf("Dockerfile HEALTHCHECK %q: want the ENTRYPOINT binary's healthcheck", argv)
	}
	args := slices.Clone(argv[2:])
	if i := slices.Index(args, "-c"); i >= 0 && i+1 < len(args) {
		args[i+1] = cfgPath
	} else {
		t.Fatalf("Dockerfile HEALTHCHECK %q names no config (-c)", argv)
	}
	if code, out, errs := run(args...); code != 0 {
		t.Fatalf("Dockerfile's HEALTHCHECK arguments: exit %d, %q %q", code, out, errs)
	}

	// Something else answers 503 with an endless body: 1, the status
	// named, the body cut.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for i := 0; i < 1<<10; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	code, _, errs := run("-addr", l.Addr().String())
	if code != 1 || !strings.Contains(errs, "503") || len(errs) > 2048 {
		t.Fatalf("503: exit %d, %d bytes %.300q; want 1 naming 503, short", code, len(errs), errs)
	}

	// A server that accepts and never answers: the timeout ends it.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	if code, _, errs := run("-addr", silent.Addr().String(), "-timeout", "300ms"); code != 1 || !strings.Contains(errs, "does not answer") {
		t.Fatalf("silent server: exit %d, %q; want 1", code, errs)
	}

	for _, args := range [][]string{{"-timeout", "0s"}, {"-bogus"}} {
		if code, _, _ := run(args...); code != 2 {
			t.Errorf("healthcheck %v: exit %d, want 2", args, code)
		}
	}
	if code, _, errs := run("-addr", "no-port"); code != 1 || !strings.Contains(errs, "not host:port") {
		t.Errorf("-addr no-port: exit %d, %q", code, errs)
	}
}

// dockerHealthcheck is the exec-form command of the Dockerfile's
// HEALTHCHECK (the image has no shell, so only the exec form works).
func dockerHealthcheck(t *testing.T) []string {
	t.Helper()
	return dockerfileJSON(t, regexp.MustCompile(`(?s)\nHEALTHCHECK [^\n]*?(?:\\\n[^\n]*?)*CMD (\[[^\n]*\])`))
}

func dockerEntrypoint(t *testing.T) string {
	t.Helper()
	ep := dockerfileJSON(t, regexp.MustCompile(`\nENTRYPOINT (\[[^\n]*\])`))
	if len(ep) != 1 {
		t.Fatalf("Dockerfile ENTRYPOINT %q: want the binary alone", ep)
	}
	return ep[0]
}

func dockerfileJSON(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := re.FindSubmatch(b)
	if m == nil {
		t.Fatalf("Dockerfile has no %s in exec form", re)
	}
	var argv []string
	if err := json.Unmarshal(m[1], &argv); err != nil {
		t.Fatalf("Dockerfile %s: %v", m[1], err)
	}
	return argv
}
