package testserver

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// InfluxDB is an InfluxDB 1.8 server (influxd) started for one test, with
// its own configuration and data directories in a temporary directory and
// the database "sensors" already created.
type InfluxDB struct {
	Port    int    // HTTP API port on 127.0.0.1
	RPCPort int    // backup/restore RPC port, moved off the default 8088
	Dir     string // config, data and log
	DB      string // the database created at start ("sensors")
	// base is the URL of a server this one did not start (UseInfluxDB);
	// empty for its own.
	base string

	t      TB
	bin    string
	conf   string
	client *http.Client
	pki    *PKI // HTTPS with its server certificate, if set
	// user and password are the admin of a server with authentication
	// (option Auth); the helpers' requests carry them.
	user, password string
	// maxValuesPerTag is [data] max-values-per-tag; 0 leaves influxd's
	// default (100,000).
	maxValuesPerTag int
	// coldCompaction makes the shards cold after a second without writes
	// (CompactFully): the cache is snapshotted and the shard fully
	// compacted then, instead of after influxd's 10 minutes and 4 hours.
	coldCompaction bool

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// influxDBName is the database every test server starts with.
const influxDBName = "sensors"

// influxdStartTimeout bounds how long a start may take before the test
// fails; a cold start with an empty data directory takes well under a
// second, but a loaded CI machine can be slow.
const influxdStartTimeout = 60 * time.Second

// InfluxOption changes the configuration StartInfluxDB writes.
type InfluxOption func(*InfluxDB)

// MaxValuesPerTag sets [data] max-values-per-tag: past n values of one tag
// key in a measurement, influxd refuses every point with a new value
// (partial write), as a production server does past its default 100,000.
func MaxValuesPerTag(n int) InfluxOption {
	return func(db *InfluxDB) { db.maxValuesPerTag = n }
}

// StartInfluxDB starts influxd on free loopback ports, waits until it
// answers /ping, creates the database "sensors" and stops the server when
// the test ends. It fails the test if influxd is not installed; run
// scripts/install-influxd.sh.
func StartInfluxDB(t TB, opts ...InfluxOption) *InfluxDB {
	t.Helper()
	bin, err := findInfluxd()
	if err != nil {
		t.Fatalf("influxd not found: run scripts/install-influxd.sh (go install github.com/influxdata/influxdb/cmd/influxd@v1.8.10): %v", err)
	}
	db := &InfluxDB{
		Dir:    t.TempDir(),
		DB:     influxDBName,
		t:      t,
		bin:    bin,
		conf:   "",
		client: &http.Client{Timeout: 30 * time.Second},
	}
	for _, o := range opts {
		o(db)
	}
	db.conf = filepath.Join(db.Dir, "influxdb.conf")
	if db.pki != nil {
		pool := x509.NewCertPool()
		ca, err := os.ReadFile(db.pki.CAFile)
		if err != nil || !pool.AppendCertsFromPEM(ca) {
			t.Fatalf("influxd: read the PKI's CA: %v", err)
		}
		db.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	t.Cleanup(db.Stop)

	// Free ports can be taken between FreePort and influxd's bind; a
	// fresh pair of ports makes such a collision harmless.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		db.Port, db.RPCPort = FreePort(t), FreePort(t)
		if err := os.WriteFile(db.conf, []byte(db.config()), 0o644); err != nil {
			t.Fatalf("influxd: write config: %v", err)
		}
		if lastErr = db.start(); lastErr == nil {
			break
		}
		db.Stop()
	}
	if lastErr != nil {
		t.Fatalf("influxd: %v; log:\n%s", lastErr, db.Log())
	}
	if db.user != "" {
		// The first admin user may be created without credentials.
		if err := db.exec(fmt.Sprintf("CREATE USER %s WITH PASSWORD '%s' WITH ALL PRIVILEGES", QuoteIdent(db.user), db.password)); err != nil {
			t.Fatalf("influxd: create admin user: %v", err)
		}
		db.client.Transport = basicAuth{next: db.client.Transport, user: db.user, password: db.password}
	}
	if err := db.exec("CREATE DATABASE " + db.DB); err != nil {
		t.Fatalf("influxd: create database: %v", err)
	}
	return db
}

// basicAuth adds HTTP basic authentication to every request.
type basicAuth struct {
	next           http.RoundTripper
	user, password string
}

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.password)
	next := b.next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(r)
}

// Auth enables authentication (auth-enabled = true) with an admin user
// of that name and password (no quote in it), which the helpers (Query,
// Exec, Count) use.
func Auth(user, password string) InfluxOption {
	return func(db *InfluxDB) { db.user, db.password = user, password }
}

// HTTPS serves the API over HTTPS only, with the PKI's server
// certificate; URL then starts with https.
func HTTPS(p *PKI) InfluxOption { return func(db *InfluxDB) { db.pki = p } }

// UseInfluxDB is StartInfluxDB for a server that runs elsewhere, for
// measurements that must not share their machine with InfluxDB: an
// InfluxDB 1.8 without authentication at baseURL ("http://host:8086"),
// where it creates the database name. The caller drops it when done
// (DropDatabase). It has no PID (the server's CPU time cannot be read
// from here), and Start cannot restart it.
func UseInfluxDB(t TB, baseURL, name string) *InfluxDB {
	t.Helper()
	db := &InfluxDB{
		DB:     name,
		t:      t,
		base:   strings.TrimRight(baseURL, "/"),
		client: &http.Client{Timeout: 30 * time.Second},
	}
	if err := db.exec("CREATE DATABASE " + QuoteIdent(name)); err != nil {
		t.Fatalf("influxd at %s: create database %s: %v (an InfluxDB 1.8 without authentication must listen there)", db.base, name, err)
	}
	return db
}

// DropDatabase drops the database, for a server that lives on after the
// test (UseInfluxDB).
func (db *InfluxDB) DropDatabase() error {
	if err := db.exec("DROP DATABASE " + QuoteIdent(db.DB)); err != nil {
		return fmt.Errorf("influxd at %s: drop database %s: %w", db.URL(), db.DB, err)
	}
	return nil
}

// findInfluxd looks on PATH, then in GOPATH/bin (where go install puts
// it), then in ~/go/bin in case the go command is not on PATH.
func findInfluxd() (string, error) {
	if p, err := exec.LookPath("influxd"); err == nil {
		return p, nil
	}
	var dirs []string
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(string(out), "\n") // GOBIN first, often empty
		if len(lines) > 0 && strings.TrimSpace(lines[0]) != "" {
			dirs = append(dirs, strings.TrimSpace(lines[0]))
		}
		if len(lines) > 1 {
			for _, gp := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				dirs = append(dirs, filepath.Join(gp, "bin"))
			}
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "influxd")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("not on PATH nor in %s", strings.Join(dirs, ", "))
}

// config renders influxd's configuration: every listener on 127.0.0.1,
// nothing reported home, no _internal monitoring database (it would add
// writes and series the tests do not expect), and the inputs this project
// does not use switched off. Flux is off: nothing here queries with it,
// /api/v2/write works without it, and with it influxd takes seconds to
// start on an idle machine and over a minute on a loaded one.
func (db *InfluxDB) config() string {
	d := filepath.ToSlash(db.Dir)
	data := ""
	if db.maxValuesPerTag > 0 {
		data = fmt.Sprintf("\n  max-values-per-tag = %d", db.maxValuesPerTag)
	}
	if db.coldCompaction {
		data += "\n  cache-snapshot-write-cold-duration = \"1s\"\n  compact-full-write-cold-duration = \"1s\""
	}
	return fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"

[meta]
  dir = "%s/meta"
  logging-enabled = false

[data]
  dir = "%s/data"
  wal-dir = "%s/wal"
  query-log-enabled = false%s

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:%d"
  auth-enabled = %t
  log-enabled = false
  flux-enabled = false
  pprof-enabled = false
%s
[logging]
  level = "warn"
  suppress-logo = true

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false
`, db.RPCPort, d, d, d, data, db.Port, db.user != "", db.httpsConfig())
}

// httpsConfig is the HTTPS keys of the [http] section, if any.
func (db *InfluxDB) httpsConfig() string {
	if db.pki == nil {
		return ""
	}
	return fmt.Sprintf("  https-enabled = true\n  https-certificate = %q\n  https-private-key = %q\n", db.pki.ServerCert, db.pki.ServerKey)
}

// start runs influxd and waits for /ping to answer 204.
func (db *InfluxDB) start() error {
	logf, err := os.OpenFile(db.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(db.bin, "run", "-config", db.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	// influxd reads INFLUXDB_* variables as config overrides; a stray one
	// from the developer's shell must not change the test server.
	cmd.Env = cleanEnv(os.Environ())
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", db.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	db.mu.Lock()
	db.cmd, db.done = cmd, done
	db.mu.Unlock()

	deadline := time.Now().Add(influxdStartTimeout)
	ping := &http.Client{Timeout: time.Second, Transport: db.client.Transport}
	for {
		select {
		case <-done:
			return errors.New("influxd exited during start")
		default:
		}
		resp, err := ping.Get(db.URL() + "/ping")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			// Only our own process counts: a server that failed to bind
			// must not pass for another test's server on the port.
			if resp.StatusCode == http.StatusNoContent {
				if ok, _ := listensOn(cmd.Process.Pid, db.Port); ok {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no 204 from %s/ping after %s (last error: %v)", db.URL(), influxdStartTimeout, err)
		}
		select {
		case <-done:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func cleanEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "INFLUXDB_") {
			out = append(out, kv)
		}
	}
	return out
}

// Start starts a stopped server again on the same ports and data
// directory, so data written before Stop is still there. It fails the
// test if the server does not come up.
func (db *InfluxDB) Start() {
	db.t.Helper()
	db.mu.Lock()
	running := db.cmd != nil
	db.mu.Unlock()
	if running {
		db.t.Fatalf("influxd: Start while running")
	}
	if db.base != "" {
		db.t.Fatalf("influxd: Start of the server at %s, which this test did not start", db.base)
	}
	if err := db.start(); err != nil {
		db.Stop()
		db.t.Fatalf("influxd restart: %v; log:\n%s", err, db.Log())
	}
}

// Stop ends the server by PID: SIGTERM, which lets it close its WAL
// cleanly, then SIGKILL if it has not exited within 10 seconds. It is safe
// to call when the server is already stopped.
func (db *InfluxDB) Stop() {
	db.mu.Lock()
	cmd, done := db.cmd, db.done
	db.cmd, db.done = nil, nil
	db.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// PID is the running server's process id, 0 while it is stopped or when
// it runs elsewhere; the benchmark reads the server's CPU time with it.
func (db *InfluxDB) PID() int {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.cmd == nil || db.cmd.Process == nil {
		return 0
	}
	return db.cmd.Process.Pid
}

// URL is the HTTP API base URL ("http://127.0.0.1:PORT").
func (db *InfluxDB) URL() string {
	if db.base != "" {
		return db.base
	}
	if db.pki != nil {
		return "https://127.0.0.1:" + strconv.Itoa(db.Port)
	}
	return "http://127.0.0.1:" + strconv.Itoa(db.Port)
}

// Bucket is the v2-API bucket name of the test database: InfluxDB 1.8
// maps "database/retention-policy" onto its 1.x storage.
func (db *InfluxDB) Bucket() string { return db.DB + "/autogen" }

func (db *InfluxDB) logPath() string { return filepath.Join(db.Dir, "influxd.log") }

// Log returns the server's log so far, for failure messages.
func (db *InfluxDB) Log() string {
	b, _ := os.ReadFile(db.logPath())
	return string(b)
}

// Series is one series of an InfluxQL result. Numbers are json.Number so
// a test can tell an integer field (no decimal point) from a float and
// compare nanosecond timestamps exactly.
type Series struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

type queryResponse struct {
	Results []struct {
		Series []Series `json:"series"`
		Error  string   `json:"error"`
	} `json:"results"`
	Error string `json:"error"`
}

// Query runs one InfluxQL read statement against the test database with
// nanosecond epoch timestamps and returns its series. It fails the test on
// any error, including an error inside the result.
func (db *InfluxDB) Query(t TB, influxql string) []Series {
	t.Helper()
	return db.mustQuery(t, influxql, db.client)
}

// QueryWithin is Query with its own time limit instead of the client's
// 30 s: a count over 100,000 series of a database still being written
// can take longer on a loaded machine.
func (db *InfluxDB) QueryWithin(t TB, influxql string, limit time.Duration) []Series {
	t.Helper()
	c := *db.client
	c.Timeout = limit
	return db.mustQuery(t, influxql, &c)
}

func (db *InfluxDB) mustQuery(t TB, influxql string, client *http.Client) []Series {
	t.Helper()
	out, err := db.query(influxql, client)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

// QueryErr is Query returning its error, for a goroutine other than the
// test's (Fatalf must not be called there).
func (db *InfluxDB) QueryErr(influxql string) ([]Series, error) {
	return db.query(influxql, db.client)
}

func (db *InfluxDB) query(influxql string, client *http.Client) ([]Series, error) {
	q := url.Values{"db": {db.DB}, "epoch": {"ns"}, "q": {influxql}}
	resp, err := client.Get(db.URL() + "/query?" + q.Encode())
	if err != nil {
		return nil, fmt.Errorf("influxd query %q: %w", influxql, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("influxd query %q: read: %w", influxql, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("influxd query %q: %s: %s", influxql, resp.Status, body)
	}
	var r queryResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("influxd query %q: decode %s: %w", influxql, body, err)
	}
	if r.Error != "" {
		return nil, fmt.Errorf("influxd query %q: %s", influxql, r.Error)
	}
	var out []Series
	for _, res := range r.Results {
		if res.Error != "" {
			return nil, fmt.Errorf("influxd query %q: %s", influxql, res.Error)
		}
		out = append(out, res.Series...)
	}
	return out, nil
}

// Count returns how many points the measurement holds (rows of SELECT *,
// over all its series).
func (db *InfluxDB) Count(t TB, measurement string) int {
	t.Helper()
	n := 0
	for _, s := range db.Query(t, "SELECT * FROM "+QuoteIdent(measurement)) {
		n += len(s.Values)
	}
	return n
}

// QuoteIdent quotes an InfluxQL identifier (measurement, tag or field
// name).
func QuoteIdent(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// exec runs a statement that changes the server (CREATE, DROP) with POST,
// as InfluxDB 1.8 requires.
func (db *InfluxDB) exec(stmt string) error {
	resp, err := db.client.PostForm(db.URL()+"/query", url.Values{"q": {stmt}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, body)
	}
	var r queryResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("decode %s: %w", body, err)
	}
	if r.Error != "" {
		return errors.New(r.Error)
	}
	for _, res := range r.Results {
		if res.Error != "" {
			return errors.New(res.Error)
		}
	}
	return nil
}

// Exec runs a statement that changes the server (CREATE, DROP, …) and
// fails the test on error.
func (db *InfluxDB) Exec(t TB, stmt string) {
	t.Helper()
	if err := db.exec(stmt); err != nil {
		t.Fatalf("influxd %q: %v", stmt, err)
	}
}
