package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestValidateCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("state_dir: "+dir+"\nsources:\n  - {name: a, type: mqtt, format: chirpstack-v4, broker: \"tcp://127.0.0.1:1883\", topics: [\"x/+\"]}\ninflux: {url: \"http://127.0.0.1:8086\", bucket: sensors/autogen}\n"), 0o644)
	if code, out, errs := runMain(t, "validate", "-c", good); code != 0 || !strings.Contains(out, "ok (1 sources)") {
		t.Fatalf("valid config: code %d, out %q, err %q", code, out, errs)
	}
	// A literal secret in a file others can read: valid, with a warning.
	secret := filepath.Join(dir, "secret.yaml")
	os.WriteFile(secret, []byte("http: {token: s3cret-t0ken}\nstate_dir: "+dir+"\nsources:\n  - {name: a, type: mqtt, format: chirpstack-v4, broker: \"tcp://127.0.0.1:1883\", topics: [\"x/+\"]}\ninflux: {url: \"http://127.0.0.1:8086\", bucket: sensors/autogen}\n"), 0o600)
	os.Chmod(secret, 0o644)
	if code, out, errs := runMain(t, "validate", "-c", secret); code != 0 || !strings.Contains(out, "ok") || !strings.Contains(errs, "warning: config file "+secret+" (mode 0644) is readable by others") || strings.Contains(errs, "s3cret") {
		t.Fatalf("readable config with a token: code %d, out %q, err %q", code, out, errs)
	}
	os.Chmod(secret, 0o600)
	if code, _, errs := runMain(t, "validate", "-c", secret); code != 0 || errs != "" {
		t.Fatalf("0600 config with a token: code %d, err %q", code, errs)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("log: {level: loud}\nsources:\n  - name: a\n    type: mqtt\n    format: chirpstak-v4\ninflux: {url: \"http://127.0.0.1:8086\", bukcet: x}\n"), 0o644)
	code, _, errs := runMain(t, "validate", "-c", bad)
	if code != 1 {
		t.Fatalf("invalid config: exit code %d, want 1", code)
	}
	// Every problem, each with its line.
	for _, want := range []string{"bad.yaml:1: log.level", "bad.yaml:5: sources[0].format", "bad.yaml:3", "bad.yaml:6: influx.bukcet"} {
		if !strings.Contains(errs, want) {
			t.Errorf("validate output lacks %q:\n%s", want, errs)
		}
	}
	// The documented example validates (with the variables it names set).
	ex := filepath.Join(dir, "example.yaml")
	os.WriteFile(ex, config.Example, 0o644)
	for _, v := range []string{"INFLUX_TOKEN", "SENSORGATE_TOKEN", "TTS_API_KEY", "MQTT_PASSWORD", "CHIRPSTACK_MQTT_PASSWORD",
		"TTS_WEBHOOK_SECRET", "CHIRPSTACK_HOOK_TOKEN", "KIOSK_HOOK_PASSWORD", "TTS_STORAGE_API_KEY"} {
		t.Setenv(v, "secret")
	}
	t.Setenv("PG_DSN", "postgres://sensorgate:secret@db.example:5432/sensorgate")
	if _, err := config.Load(ex); err != nil {
		t.Fatalf("config/example.yaml: %v", err)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"nope"}, {"run", "extra-arg"}, {"simulate", "-count", "x"}} {
		if code, _, _ := runMain(t, args...); code != 2 {
			t.Errorf("%v: exit code %d, want 2", args, code)
		}
	}
	if code, out, _ := runMain(t, "version"); code != 0 || !strings.HasPrefix(out, "sensorgate ") || !strings.Contains(out, fmt.Sprintf("(InfluxDB schema %d)", gateway.SchemaVersion)) {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, errs := runMain(t, "run", "-c", filepath.Join(t.TempDir(), "missing.yaml")); code != 1 || !strings.Contains(errs, "missing.yaml") {
		t.Errorf("run with a missing config: %d %q", code, errs)
	}
}

// TestSimulateCommand publishes through a real broker and checks that the
// stream is what was asked for and repeats exactly for the same seed.
func TestSimulateCommand(t *testing.T) {
	mq := testserver.StartMosquitto(t)
	run := func(seed string) []string {
		var mu sync.Mutex
		var got []string
		c := paho.NewClient(paho.NewClientOptions().AddBroker(mq.URL()).SetClientID("sim-listener"))
		if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		defer c.Disconnect(50)
		tok := c.Subscribe("#", 1, func(_ paho.Client, m paho.Message) {
			mu.Lock()
			got = append(got, m.Topic()+" "+string(m.Payload()))
			mu.Unlock()
		})
		if tok.Wait(); tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		code, out, errs := runMain(t, "simulate", "-broker", mq.URL(), "-format", "tts-v3", "-devices", "4", "-count", "30", "-rate", "0",
			"-seed", seed, "-start", "2026-02-01T00:00:00Z")
		if code != 0 || !strings.Contains(out, "published 30 tts-v3 uplinks") {
			t.Fatalf("simulate: %d %q %q", code, out, errs)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if n == 30 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("received %d of 30 messages", n)
			}
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
	a, b := run("5"), run("5")
	if strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Fatal("the same seed published different streams")
	}
	if !strings.HasPrefix(a[0], "v3/weather@ttn/devices/eui-") || !strings.Contains(a[0], `"received_at":"2026-02-01T00:00:00`) {
		t.Fatalf("unexpected first message %.200s", a[0])
	}
	devs := filepath.Join(t.TempDir(), "devices.yaml")
	if code, _, errs := runMain(t, "simulate", "-write-devices", devs, "-devices", "4"); code != 0 {
		t.Fatalf("-write-devices: %s", errs)
	}
	if b, _ := os.ReadFile(devs); strings.Count(string(b), "dev_eui:") != 4 {
		t.Fatalf("devices file:\n%s", b)
	}
}

// TestConsoleLogNoColourInFile: format console writes no ANSI escape codes
// into a file or pipe the log is redirected to (nor with NO_COLOR set).
func TestConsoleLogNoColourInFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    func(t *testing.T) io.Writer
	}{
		{"file", func(t *testing.T) io.Writer {
			f, err := os.Create(filepath.Join(t.TempDir(), "log"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return f
		}},
		{"buffer", func(*testing.T) io.Writer { return &bytes.Buffer{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.w(t)
			log, err := newLogger(config.LogConfig{Format: "console", Level: "info"}, w)
			if err != nil {
				t.Fatal(err)
			}
			log.Error().Str("k", "v").Msg("hello")
			var got []byte
			switch w := w.(type) {
			case *os.File:
				got, _ = os.ReadFile(w.Name())
			case *bytes.Buffer:
				got = w.Bytes()
			}
			if !bytes.Contains(got, []byte("hello")) || bytes.Contains(got, []byte("\x1b[")) {
				t.Fatalf("console log %q: want the message without ANSI escape codes", got)
			}
		})
	}
}

// TestREADMECommandsMatchUsage: every command the usage text lists is in
// the README's Commands block, and the README lists none the binary lacks.
func TestREADMECommandsMatchUsage(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "\n## Commands\n\n```\n")
	if !ok {
		t.Fatal("README has no Commands block")
	}
	block, _, _ = strings.Cut(block, "```")
	cmd := regexp.MustCompile(`(?m)^\s*sensorgate ([a-z]+(?: (?:list|import)\b)?)`)
	names := func(s string) []string {
		var out []string
		for _, m := range cmd.FindAllStringSubmatch(s, -1) {
			out = append(out, m[1])
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	if got, want := names(block), names(usage); !slices.Equal(got, want) {
		t.Fatalf("README's Commands list %v, the usage text %v", got, want)
	}
}
