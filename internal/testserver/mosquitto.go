package testserver

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Mosquitto is a broker started for one test.
type Mosquitto struct {
	Port int
	// TLSPort is the TLS listener's port (option TLSListener), else 0.
	TLSPort int
	Dir     string // config and persistence
	cmd     *exec.Cmd
	t       TB
}

// URL is the broker address for paho ("tcp://127.0.0.1:PORT").
// PID is the running broker's process id, 0 while it is stopped.
func (m *Mosquitto) PID() int {
	if m.cmd == nil || m.cmd.Process == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

func (m *Mosquitto) URL() string { return "tcp://127.0.0.1:" + strconv.Itoa(m.Port) }

// MosquittoOption changes the broker's configuration.
type MosquittoOption func(*mosquittoSettings)

type mosquittoSettings struct {
	maxQueued int
	pki       *PKI
}

// TLSListener adds a second listener (Mosquitto.TLSPort, URL TLSURL) that
// speaks TLS with the PKI's server certificate and requires a client
// certificate signed by its authority, as a broker serving ChirpStack
// v4's per-application integration certificates does.
func TLSListener(p *PKI) MosquittoOption {
	return func(s *mosquittoSettings) { s.pki = p }
}

// TLSURL is the TLS listener's address for paho ("ssl://127.0.0.1:PORT").
func (m *Mosquitto) TLSURL() string { return "ssl://127.0.0.1:" + strconv.Itoa(m.TLSPort) }

// MaxQueuedMessages sets max_queued_messages: a broker that drops what a
// persistent session's queue cannot hold, as Mosquitto's own default of
// 1000 does (0, the default here, lifts the limit).
func MaxQueuedMessages(n int) MosquittoOption {
	return func(s *mosquittoSettings) { s.maxQueued = n }
}

// StartMosquitto starts mosquitto on a free loopback port with persistence
// in a temporary directory, and queue limits raised so a persistent QoS 1
// session keeps a whole test's backlog (Mosquitto's default of 1000 queued
// messages silently drops the rest) unless an option says otherwise. It
// fails the test if mosquitto is not installed; .ci/run installs it.
func StartMosquitto(t TB, opts ...MosquittoOption) *Mosquitto {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, statErr := os.Stat(p); statErr == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		t.Fatalf("mosquitto not found: install it (apt-get install mosquitto) or run .ci/run: %v", err)
	}
	var set mosquittoSettings
	for _, o := range opts {
		o(&set)
	}
	m := &Mosquitto{Port: FreePort(t), Dir: t.TempDir(), t: t}
	conf := fmt.Sprintf(`listener %d 127.0.0.1
allow_anonymous true
persistence true
persistence_location %s/
autosave_interval 1
max_queued_messages %d
max_queued_bytes 0
max_inflight_messages 100
log_dest file %s
`, m.Port, m.Dir, set.maxQueued, filepath.Join(m.Dir, "mosquitto.log"))
	if set.pki != nil {
		m.TLSPort = FreePort(t)
		conf += fmt.Sprintf(`listener %d 127.0.0.1
cafile %s
certfile %s
keyfile %s
require_certificate true
tls_version tlsv1.2
`, m.TLSPort, set.pki.CAFile, set.pki.ServerCert, set.pki.ServerKey)
	}
	if os.Geteuid() == 0 {
		// Run as root, mosquitto switches to the user "mosquitto", which
		// cannot write to the test's directory: persistence and the log
		// would silently be lost, and with them the queued messages of
		// persistent sessions across Restart.
		conf += "user root\n"
	}
	confPath := filepath.Join(m.Dir, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatalf("mosquitto: write config: %v", err)
	}
	m.start(bin, confPath)
	t.Cleanup(m.Stop)
	return m
}

func (m *Mosquitto) start(bin, confPath string) {
	m.t.Helper()
	m.cmd = exec.Command(bin, "-c", confPath)
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	for _, port := range []int{m.Port, m.TLSPort} {
		if port == 0 {
			continue
		}
		if err := waitOwnListener(m.cmd.Process.Pid, port, 10*time.Second); err != nil {
			m.Stop()
			m.t.Fatalf("mosquitto: %v; log: %s", err, m.Log())
		}
	}
}

// Restart stops the broker (SIGTERM, so it saves its persistence file) and
// starts it again on the same port and directory.
func (m *Mosquitto) Restart() {
	m.t.Helper()
	bin, args := m.cmd.Path, m.cmd.Args
	m.Stop()
	m.start(bin, args[len(args)-1])
}

// Stop ends the broker it started, by PID.
func (m *Mosquitto) Stop() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = m.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-done
	}
	m.cmd.Process = nil
}

// Log returns the broker's log so far, for failure messages.
func (m *Mosquitto) Log() string {
	b, _ := os.ReadFile(filepath.Join(m.Dir, "mosquitto.log"))
	return string(b)
}

// FreePort returns a loopback TCP port that was free a moment ago and
// that it has not returned before in this process: a test that stops its
// server and starts it again on the same port must not find that another
// test has been given the port in between.
func FreePort(t TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("no free loopback port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !portsGiven[port] {
			portsGiven[port] = true
			return port
		}
	}
	t.Fatalf("no loopback port that was not handed out before: the kernel keeps returning used ones")
	return 0
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// waitOwnListener polls until process pid listens on the loopback port,
// or the timeout passes. Another process listening there does not count.
func waitOwnListener(pid, port int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := listensOn(pid, port)
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d does not listen on 127.0.0.1:%d after %s (port taken by another process?): %v", pid, port, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitListening polls until something accepts TCP connections on the
// loopback port, or the timeout passes.
func WaitListening(port int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %s: %w", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
