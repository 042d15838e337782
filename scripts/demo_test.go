// Package scripts holds the tests of the shell scripts behind the Makefile.
package scripts

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/internal/testserver"
)

// binDir holds the sensorgate binary the demo runs use.
var binDir string

func TestMain(m *testing.M) {
	var err error
	if binDir, err = os.MkdirTemp("", "sensorgate-demo-test"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildErr  error
	buildOut  []byte
)

// buildSensorgate builds the binary once for every demo run, so that runs
// do not each link it.
func buildSensorgate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(binDir, "sensorgate")
	buildOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", bin, "../cmd/sensorgate")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, buildOut)
	}
	return bin
}

// runDemo runs scripts/demo.sh with the variables added and returns its
// combined output.
func runDemo(t *testing.T, env ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "demo.sh")
	// SIGTERM lets the script's trap stop what it started.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var startedRE = regexp.MustCompile(`started (mosquitto|influxd) \(PID (\d+)\) on 127\.0\.0\.1:(\d+)`)

// assertStopped checks that every server the demo reported starting is
// gone once the script has exited.
func assertStopped(t *testing.T, out string) {
	t.Helper()
	m := startedRE.FindAllStringSubmatch(out, -1)
	if len(m) != 2 {
		t.Fatalf("demo reported %d started servers, want mosquitto and influxd:\n%s", len(m), out)
	}
	for _, s := range m {
		pid, _ := strconv.Atoi(s[2])
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (PID %d) still runs after the demo exited (kill -0: %v)", s[1], pid, err)
		}
	}
}

// TestDemoParallelRuns runs the demo twice at once with different counts:
// each must start its own servers on its own ports and report its own
// count, which it could not if one run's InfluxDB answered the other.
func TestDemoParallelRuns(t *testing.T) {
	bin := buildSensorgate(t)
	counts := []int{7, 11}
	outs := make([]string, len(counts))
	errs := make([]error, len(counts))
	var wg sync.WaitGroup
	for i, n := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = runDemo(t, "DEMO_SENSORGATE="+bin, fmt.Sprintf("DEMO_COUNT=%d", n))
		}()
	}
	wg.Wait()
	ports := map[string]int{}
	for i, n := range counts {
		if errs[i] != nil {
			t.Fatalf("demo run %d (DEMO_COUNT=%d): %v\n%s", i, n, errs[i], outs[i])
		}
		want := fmt.Sprintf("InfluxDB holds %d uplinks (published %d)", n, n)
		if !strings.Contains(outs[i], want) {
			t.Errorf("demo run %d: output lacks %q:\n%s", i, want, outs[i])
		}
		assertStopped(t, outs[i])
		for _, s := range startedRE.FindAllStringSubmatch(outs[i], -1) {
			if j, dup := ports[s[3]]; dup {
				t.Errorf("runs %d and %d both report a server on port %s", j, i, s[3])
			}
			ports[s[3]] = i
		}
	}
}

// decoy is an HTTP server that answers like an InfluxDB holding other
// data: /ping with 204, /query with a count and a district no demo run
// produces. It counts the queries it answers.
type decoy struct {
	queries atomic.Int64
}

const decoyCount = 987654

func (d *decoy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/ping":
		w.WriteHeader(http.StatusNoContent)
	case "/query":
		d.queries.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"results":[{"statement_id":0,"series":[{"name":"uplink","tags":{"district":"decoy-district"},"columns":["time","count"],"values":[["1970-01-01T00:00:00Z",%d]]}]}]}`, decoyCount)
	default:
		http.NotFound(w, r)
	}
}

// serveDecoy serves d on 127.0.0.1:port until the test ends; it reports
// false when the port is taken (then something else already sits there,
// which is what the decoy stands for).
func serveDecoy(t *testing.T, d *decoy, port int) bool {
	t.Helper()
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Logf("decoy on port %d: %v (another process holds it)", port, err)
		return false
	}
	srv := &http.Server{Handler: d, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return true
}

// TestDemoIgnoresDecoy puts a server that answers like InfluxDB on the
// port the old demo used (18086) and on the port this run tries first
// (DEMO_INFLUX_PORT): influxd cannot bind there, so the demo must notice
// that its process does not hold the port, start on another one, and
// report its own count, never asking the decoy anything.
func TestDemoIgnoresDecoy(t *testing.T) {
	bin := buildSensorgate(t)
	d := &decoy{}
	serveDecoy(t, d, 18086)
	first := testserver.FreePort(t)
	if !serveDecoy(t, d, first) {
		t.Fatalf("decoy could not take the free port %d", first)
	}
	out, err := runDemo(t, "DEMO_SENSORGATE="+bin, "DEMO_COUNT=5", fmt.Sprintf("DEMO_INFLUX_PORT=%d", first))
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	if want := "InfluxDB holds 5 uplinks (published 5)"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	for _, bad := range []string{strconv.Itoa(decoyCount), "decoy-district"} {
		if strings.Contains(out, bad) {
			t.Errorf("output shows the decoy's %q:\n%s", bad, out)
		}
	}
	if want := fmt.Sprintf("influxd exited (port %d", first); !strings.Contains(out, want) {
		t.Errorf("output does not say influxd could not take port %d (%q):\n%s", first, want, out)
	}
	if n := d.queries.Load(); n != 0 {
		t.Errorf("the demo sent %d queries to the decoy", n)
	}
	assertStopped(t, out)
}

// TestDemoFailsWithServerLog gives the demo an influxd that cannot start:
// the demo must fail, name the server and print the tail of its log.
func TestDemoFailsWithServerLog(t *testing.T) {
	bin := buildSensorgate(t)
	dir := t.TempDir()
	fake := "#!/bin/sh\necho 'run: open server: the disk is on fire' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(dir, "influxd"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := runDemo(t, "DEMO_SENSORGATE="+bin, "DEMO_COUNT=5", "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("demo with a failing influxd: err %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{"demo: influxd exited during start three times", "the disk is on fire"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "InfluxDB holds") {
		t.Errorf("a failed demo reports InfluxDB's content:\n%s", out)
	}
	// The broker had started: it must be stopped, and the run directory
	// kept for the operator to read (removed here).
	m := startedRE.FindAllStringSubmatch(out, -1)
	if len(m) != 1 || m[0][1] != "mosquitto" {
		t.Fatalf("want only mosquitto reported started, got %q:\n%s", m, out)
	}
	pid, _ := strconv.Atoi(m[0][2])
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("mosquitto (PID %d) still runs after the failed demo (kill -0: %v)", pid, err)
	}
	kept := regexp.MustCompile(`demo files: (\S+)`).FindStringSubmatch(out)
	if kept == nil {
		t.Fatalf("a failed demo does not say where its files are:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(kept[1], "influxd.log")); err != nil {
		t.Errorf("the failed run's influxd log is not kept: %v", err)
	}
	_ = os.RemoveAll(kept[1])
}
