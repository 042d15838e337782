package scripts

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/internal/testserver"
)

const (
	unitPath = "/lib/systemd/system/sensorgate.service"
	confPath = "/etc/sensorgate/sensorgate.yaml"
)

// unitKeys reads a systemd unit's Key=Value lines (the last one of a key
// wins, as for most keys).
func unitKeys(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			keys[k] = v
		}
	}
	return keys
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestDebPackage builds the package with `make deb`'s script, installs it
// with dpkg on this machine (root needed), checks what an IT team relies on
// (binary, conffile, service user, hardened unit that systemd-analyze
// accepts) and, systemd not being PID 1 here, starts the unit's ExecStart
// line as the unit's user against a test broker until /healthz answers.
// It purges the package afterwards.
func TestDebPackage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("installing the package with dpkg needs root: run the suite as root (as CI does)")
	}
	if exec.Command("dpkg", "-s", "sensorgate").Run() == nil {
		t.Fatal("a sensorgate package is already installed on this machine: this test installs and purges its own")
	}
	cmd := exec.Command("sh", "deb.sh")
	cmd.Env = append(os.Environ(), "DEB_SENSORGATE="+buildSensorgate(t))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("deb.sh: %v\n%s", err, stderr.String())
	}
	deb := filepath.Join("..", strings.TrimSpace(string(out)))
	if _, err := os.Stat(deb); err != nil {
		t.Fatalf("deb.sh printed %q: %v", out, err)
	}
	_, stateExisted := os.Stat("/var/lib/sensorgate")
	t.Cleanup(func() {
		if out, err := exec.Command("dpkg", "--purge", "sensorgate").CombinedOutput(); err != nil {
			t.Errorf("dpkg --purge: %v\n%s", err, out)
		}
		_ = exec.Command("userdel", "sensorgate").Run()
		_ = exec.Command("groupdel", "sensorgate").Run()
		if stateExisted != nil {
			_ = os.RemoveAll("/var/lib/sensorgate")
		}
	})
	run(t, "dpkg", "-i", deb)

	// The binary, the conffile, the user.
	if v := run(t, "/usr/bin/sensorgate", "version"); !strings.HasPrefix(v, "sensorgate ") {
		t.Errorf("installed binary's version: %q", v)
	}
	if v := run(t, "dpkg-query", "-W", "-f=${Version}", "sensorgate"); !strings.HasPrefix(v, "0.0.0~git") {
		t.Errorf("package version %q, want 0.0.0~git<commit>", v)
	}
	// The README's links into docs/ resolve in the installed copy too.
	for _, doc := range []string{"README.md", "docs/delivery.md", "docs/schema.md", "docs/ARCHITECTURE.md", "docs/status-page.png"} {
		if _, err := os.Stat(filepath.Join("/usr/share/doc/sensorgate", doc)); err != nil {
			t.Errorf("the package lacks its documentation: %v", err)
		}
	}
	if c := run(t, "dpkg-query", "-W", "-f=${Conffiles}", "sensorgate"); !strings.Contains(c, confPath) {
		t.Errorf("conffiles %q lack %s", c, confPath)
	}
	if pw := run(t, "getent", "passwd", "sensorgate"); !strings.HasSuffix(strings.TrimSpace(pw), ":/usr/sbin/nologin") {
		t.Errorf("service user: %q, want a system user without a login shell", pw)
	}
	fi, err := os.Stat(confPath)
	if err != nil {
		t.Fatal(err)
	}
	gid := fi.Sys().(*syscall.Stat_t).Gid
	if fi.Mode().Perm() != 0o640 || strings.TrimSpace(run(t, "getent", "group", fmt.Sprint(gid))) == "" ||
		!strings.HasPrefix(run(t, "getent", "group", fmt.Sprint(gid)), "sensorgate:") {
		t.Errorf("%s: mode %v gid %d, want 0640 root:sensorgate (it may hold secrets)", confPath, fi.Mode().Perm(), gid)
	}

	// The unit: hardened, and valid for systemd.
	keys := unitKeys(t, unitPath)
	for k, want := range map[string]string{
		"User": "sensorgate", "Group": "sensorgate", "StateDirectory": "sensorgate", "ProtectSystem": "strict",
		"NoNewPrivileges": "true", "CapabilityBoundingSet": "", "AmbientCapabilities": "", "ProtectHome": "true",
		"PrivateTmp": "true", "EnvironmentFile": "-/etc/default/sensorgate",
	} {
		if got, ok := keys[k]; !ok || got != want {
			t.Errorf("%s: %s=%q, want %q", unitPath, k, got, want)
		}
	}
	if out, err := exec.Command("systemd-analyze", "verify", unitPath).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unitPath, err, out)
	}

	// Start it as systemd would: the state directory the service user's,
	// the config edited by the operator (here: a test broker and a free
	// port), ExecStartPre and ExecStart as the user.
	mq := testserver.StartMosquitto(t)
	port := testserver.FreePort(t)
	conf := fmt.Sprintf(`log: {level: info, format: json}
state_dir: /var/lib/sensorgate
http: {listen: "127.0.0.1:%d"}
sources:
  - {name: cs4, type: mqtt, format: chirpstack-v4, broker: %q, topics: ["application/+/device/+/event/up"], client_id: deb-test, clean_session: true}
influx: {url: "http://127.0.0.1:9", bucket: sensors/autogen}
`, port, mq.URL())
	if err := os.WriteFile(confPath, []byte(conf), 0o640); err != nil {
		t.Fatal(err)
	}
	run(t, "install", "-d", "-o", "sensorgate", "-g", "sensorgate", "-m", "0750", "/var/lib/sensorgate")
	asUser := func(line string) *exec.Cmd {
		return exec.Command("setpriv", append([]string{"--reuid=sensorgate", "--regid=sensorgate", "--init-groups", "--"}, strings.Fields(line)...)...)
	}
	if out, err := asUser(keys["ExecStartPre"]).CombinedOutput(); err != nil {
		t.Fatalf("ExecStartPre %s as sensorgate: %v\n%s", keys["ExecStartPre"], err, out)
	}
	daemon := asUser(keys["ExecStart"])
	var logBuf bytes.Buffer
	daemon.Stdout, daemon.Stderr = &logBuf, &logBuf
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- daemon.Wait() }()
	defer func() {
		_ = daemon.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = daemon.Process.Kill()
			<-done
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if exec.Command("/usr/bin/sensorgate", "healthcheck", "-c", confPath, "-timeout", "2s").Run() == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("ExecStart as sensorgate exited: %v\n%s", err, logBuf.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no /healthz from the daemon started as sensorgate within 60s\n%s", logBuf.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// What it wrote belongs to the service user.
	entries, err := os.ReadDir("/var/lib/sensorgate")
	if err != nil || len(entries) == 0 {
		t.Fatalf("state directory after start: %v, %d entries", err, len(entries))
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if name := strings.SplitN(run(t, "getent", "passwd", fmt.Sprint(info.Sys().(*syscall.Stat_t).Uid)), ":", 2)[0]; name != "sensorgate" {
			t.Errorf("/var/lib/sensorgate/%s is owned by %s, want sensorgate", e.Name(), name)
		}
	}
}
