package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

func TestAPIToken(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{StateDir: dir}
	var warnings []string
	warn := func(s string) { warnings = append(warnings, s) }

	if _, err := clientToken(cfg, warn); err == nil || !strings.Contains(err.Error(), "run this as the daemon's user") {
		t.Fatalf("the CLI without a token file: %v", err)
	}
	tok, err := apiToken(cfg, warn)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, tokenFileName)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || len(tok) != 64 || strings.Trim(tok, "0123456789abcdef") != "" {
		t.Fatalf("generated %q into a file of mode %04o", tok, st.Mode().Perm())
	}
	if again, err := apiToken(cfg, warn); err != nil || again != tok {
		t.Fatalf("second start: %q %v, want the first token", again, err)
	}
	if cli, err := clientToken(cfg, warn); err != nil || cli != tok {
		t.Fatalf("CLI: %q %v", cli, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("state_dir holds %d files, want the token file only", len(entries))
	}
	if len(warnings) != 0 {
		t.Fatalf("warnings for a 0600 file: %q", warnings)
	}

	// A configured token wins and no file is read or written.
	if got, err := apiToken(&config.Config{StateDir: t.TempDir(), HTTP: config.HTTPConfig{Token: "conf-token"}}, warn); err != nil || got != "conf-token" {
		t.Fatalf("configured: %q %v", got, err)
	}

	// A file others can read still works, and is warned about.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := apiToken(cfg, warn); err != nil || got != tok || len(warnings) != 1 || !strings.Contains(warnings[0], "chmod 600") {
		t.Fatalf("readable file: %q %v, warnings %q", got, err, warnings)
	}

	// A file an operator wrote by hand: the line break is not the
	// token; anything else that is not a token is refused with a way out.
	for content, want := range map[string]string{
		"hand-written\n":          "",
		"  hand-written \r\n":     "",
		"":                        "no bearer token",
		"two words\n":             "at byte 3",
		strings.Repeat("x", 5000): "over 4096 bytes",
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := apiToken(cfg, nil)
		switch {
		case want == "" && (err != nil || got != "hand-written"):
			t.Errorf("file %q: %q %v", content, got, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "delete")):
			t.Errorf("file %q: %q %v, want an error with %q", content, got, err, want)
		}
	}
}

// TestAPITokenRace: starts racing on a fresh state_dir agree on one token.
func TestAPITokenRace(t *testing.T) {
	cfg := &config.Config{StateDir: t.TempDir()}
	toks := make([]string, 8)
	var wg sync.WaitGroup
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := apiToken(cfg, nil)
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok
		}()
	}
	wg.Wait()
	for _, tok := range toks[1:] {
		if tok != toks[0] {
			t.Fatalf("racing starts generated different tokens: %q", toks)
		}
	}
	if entries, _ := os.ReadDir(cfg.StateDir); len(entries) != 1 {
		t.Errorf("state_dir holds %d files, want the token file only", len(entries))
	}
}

// tokenlessRig is a daemon whose config has no http.token, with a real
// Mosquitto (InfluxDB is not needed: nothing here is delivered), holding
// one registered device and one dead letter.
type tokenlessRig struct {
	d        *Daemon
	base     string
	cfgPath  string
	stateDir string
	token    string // read from the file the daemon generated
}

func startTokenlessRig(t *testing.T) *tokenlessRig {
	t.Helper()
	mq := testserver.StartMosquitto(t)
	dir := t.TempDir()
	port := testserver.FreePort(t)
	r := &tokenlessRig{base: fmt.Sprintf("http://127.0.0.1:%d", port), cfgPath: filepath.Join(dir, "sensorgate.yaml"), stateDir: filepath.Join(dir, "state")}
	if err := os.WriteFile(filepath.Join(dir, "devices.csv"), []byte("dev_eui,name,model\n0101010101010101,bin-1,cayenne-lpp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgText := fmt.Sprintf(`
log: {level: error, format: json}
http: {listen: "127.0.0.1:%[3]d"}
state_dir: %[1]s/state
sources:
  - {name: cs4, type: mqtt, format: chirpstack-v4, broker: %[2]q, topics: ["application/+/device/+/event/up"], client_id: tokenless}
influx: {url: "http://127.0.0.1:1", bucket: b}
devices: {import: %[1]s/devices.csv}
`, dir, mq.URL(), port)
	if err := os.WriteFile(r.cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(r.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	r.d = startDaemon(t, cfg, zerolog.ErrorLevel)
	b, err := os.ReadFile(filepath.Join(r.stateDir, tokenFileName))
	if err != nil {
		t.Fatalf("the daemon generated no token file: %v", err)
	}
	r.token = strings.TrimSpace(string(b))
	api := opsAPI{t: t, base: r.base, token: r.token}
	api.waitFor("the broker connection", func() bool { return r.d.sources[0].(interface{ Ready() bool }).Ready() })
	publishAll(t, mq.URL(), []simulate.Message{{Topic: "application/x/device/0202020202020202/event/up", Payload: []byte("{not json")}})
	api.waitFor("the dead letter", func() bool {
		return api.call("GET", "/api/v1/deadletters", nil, 200)["count"] == float64(1)
	})
	return r
}

// get calls the rig's API with a token ("" for none) and Host (""
// for the URL's).
func (r *tokenlessRig) get(t *testing.T, path, token, host string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", r.base+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestGeneratedToken runs a daemon without http.token: it generated a
// token file of mode 0600; the API wants that token, the CLI finds it on
// its own, and a request with a foreign Host (DNS rebinding) gets no
// export, token or not.
func TestGeneratedToken(t *testing.T) {
	r := startTokenlessRig(t)
	st, err := os.Stat(filepath.Join(r.stateDir, tokenFileName))
	if err != nil || st.Mode().Perm() != 0o600 || len(r.token) != 64 {
		t.Fatalf("token file: %v %v, token of %d bytes", st, err, len(r.token))
	}
	if code, body := r.get(t, "/api/v1/devices/export?format=csv", "", ""); code != 401 {
		t.Fatalf("export without a token: %d %s", code, body)
	}
	if code, body := r.get(t, "/api/v1/devices/export?format=csv", r.token, ""); code != 200 || !strings.Contains(body, "bin-1") {
		t.Fatalf("export with the generated token: %d %s", code, body)
	}
	port := strings.TrimPrefix(r.base, "http://127.0.0.1:")
	for _, host := range []string{"attacker.example:" + port, "127.0.0.1.nip.example:" + port} {
		if code, body := r.get(t, "/api/v1/devices/export?format=csv", r.token, host); code != http.StatusMisdirectedRequest || strings.Contains(body, "bin-1") {
			t.Fatalf("export with Host %s: %d %s", host, code, body)
		}
	}
	for _, host := range []string{"localhost:" + port, "[::1]:" + port} {
		if code, body := r.get(t, "/api/v1/devices/export?format=csv", r.token, host); code != 200 {
			t.Fatalf("export with Host %s: %d %s", host, code, body)
		}
	}
	// Probes and metrics stay public.
	for _, p := range []string{"/healthz", "/metrics"} {
		if code, body := r.get(t, p, "", ""); code != 200 {
			t.Errorf("GET %s without a token: %d %.200s", p, code, body)
		}
	}

	// The CLI talks to the running daemon with the token from state_dir.
	run := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), args, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	sheet := filepath.Join(t.TempDir(), "more.csv")
	if err := os.WriteFile(sheet, []byte("dev_eui,name,model\n0303030303030303,bin-3,cayenne-lpp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := run("devices", "import", "-c", r.cfgPath, sheet); code != 0 || strings.Contains(out, "working on") {
		t.Fatalf("devices import: %d\n%s", code, out)
	}
	if code, out := run("devices", "list", "-c", r.cfgPath); code != 0 || !strings.Contains(out, "bin-3") {
		t.Fatalf("devices list: %d\n%s", code, out)
	}
	if code, out := run("deadletters", "replay", "-c", r.cfgPath); code != 1 || !strings.Contains(out, "1 failed") {
		t.Fatalf("deadletters replay: %d\n%s", code, out)
	}
	// Without the file (another user's state_dir) the CLI says what to do.
	if err := os.Rename(filepath.Join(r.stateDir, tokenFileName), filepath.Join(r.stateDir, "moved")); err != nil {
		t.Fatal(err)
	}
	if code, out := run("devices", "list", "-c", r.cfgPath); code != 1 || !strings.Contains(out, "run this as the daemon's user") {
		t.Fatalf("devices list without the token file: %d\n%s", code, out)
	}
}
