package influx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// ProbeResult is what one probe learnt about the write target.
type ProbeResult struct {
	At      time.Time
	Status  int    // HTTP status; 0 when no response came
	Version string // the server's X-Influxdb-Version ("1.8.10"), when it answered
	Message string // InfluxDB's reason for a failure
	Err     error  // nil when InfluxDB takes writes into the target
}

// Unreachable reports a failure that goes away by itself once InfluxDB is
// back: no answer, or a 5xx. Every other failure needs an operator.
func (r ProbeResult) Unreachable() bool {
	return r.Err != nil && (r.Status == 0 || r.Status >= 500)
}

// Probe asks InfluxDB whether it takes writes into the target, without
// writing anything: it sends a write request with an empty body. InfluxDB
// 1.8 (both /write and /api/v2/write) looks the database up and checks the
// credentials' write permission before it reads the body, then answers an
// empty body with 204; so 204 means present and writable, 404 "database
// not found", 401/403 the credentials. InfluxDB 2.x resolves the bucket
// and the permission first too, then refuses the empty body with 400
// "writing requires points", which this takes as success. A 1-line write
// would prove more but would store a point in the operator's data; a
// /query for the database's retention policies would not check the write
// permission.
func (s *Client) Probe(ctx context.Context) ProbeResult {
	res := ProbeResult{At: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.writeURL, http.NoBody)
	if err != nil {
		res.Err = err
		return res
	}
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		res.Err = fmt.Errorf("InfluxDB at %s unreachable: %w", s.cfg.URL, err)
		return res
	}
	defer resp.Body.Close()
	res.Status, res.Version = resp.StatusCode, resp.Header.Get("X-Influxdb-Version")
	msg := answerMessage(resp)
	res.Message = msg
	switch {
	case resp.StatusCode/100 == 2:
	case resp.StatusCode == http.StatusBadRequest && strings.Contains(msg, "requires points"):
	case resp.StatusCode == http.StatusNotFound:
		res.Err = fmt.Errorf("%s %q does not exist (HTTP 404: %s): run %s", s.targetKind(), s.cfg.Target(), msg, s.CreateCommand(res))
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		res.Err = fmt.Errorf("InfluxDB refuses the credentials for writing into %q (HTTP %d: %s): %s", s.cfg.Target(), resp.StatusCode, msg, s.credentialsHint())
	default:
		res.Err = fmt.Errorf("InfluxDB answered a write into %q with HTTP %d: %s", s.cfg.Target(), resp.StatusCode, msg)
	}
	return res
}

// answerMessage is InfluxDB's reason for an answer: the X-Influxdb-Error
// header, or the start of the body.
func answerMessage(resp *http.Response) string {
	if m := resp.Header.Get("X-Influxdb-Error"); m != "" {
		return m
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return strings.TrimSpace(string(b))
}

func (s *Client) targetKind() string {
	if s.cfg.Version == V1 {
		return "database"
	}
	return "bucket"
}

func (s *Client) credentialsHint() string {
	if s.cfg.Version == V1 {
		return "fix influx.username and influx.password, or grant the user WRITE on the database"
	}
	return "fix influx.token (user:password on InfluxDB 1.8) or give it write access to the bucket"
}

// Database is the InfluxDB 1.x database the target lives in: the
// database, or the bucket's part before "/" (InfluxDB 1.8's "db/rp").
func (c Config) DatabaseName() string {
	if c.Version == V1 {
		return c.Database
	}
	db, _, _ := strings.Cut(c.Bucket, "/")
	return db
}

// CreatesDatabase resolves CreateDatabase: unset means true.
func (c Config) CreatesDatabase() bool { return c.CreateDatabase == nil || *c.CreateDatabase }

// Server1x reports whether the answer came from InfluxDB 1.x, whose
// /query creates databases: its version header says 1.x, or its 404 says
// "database not found" (2.x says "bucket … not found"). A 1.8 built from
// source reports version "unknown", hence the message.
func (r ProbeResult) Server1x() bool {
	return strings.HasPrefix(strings.TrimPrefix(r.Version, "v"), "1.") || strings.Contains(r.Message, "database not found")
}

// CreateCommand is what an operator runs to create the target, on the
// server that gave res.
func (s *Client) CreateCommand(res ProbeResult) string {
	c := s.cfg
	if c.Version == V1 || res.Server1x() {
		cmd := "influx"
		if u, err := url.Parse(c.URL); err == nil && u.Host != "" {
			cmd += " -host " + u.Hostname()
			if p := u.Port(); p != "" {
				cmd += " -port " + p
			}
			if u.Scheme == "https" {
				cmd += " -ssl"
			}
		}
		if c.Username != "" {
			cmd += " -username " + c.Username + " -password ''"
		}
		return fmt.Sprintf(`%s -execute 'CREATE DATABASE "%s"'`, cmd, strings.ReplaceAll(c.DatabaseName(), "'", `'\''`))
	}
	return fmt.Sprintf("influx bucket create --host %s --org %s --name %s", c.URL, c.Org, c.Bucket)
}

// CreateDatabase creates the target's database on an InfluxDB 1.x server
// (CREATE DATABASE is idempotent there). It needs admin credentials when
// the server has auth enabled.
func (s *Client) CreateDatabase(ctx context.Context) error {
	u, _ := url.Parse(s.cfg.URL) // checked by Validate
	name := strings.ReplaceAll(strings.ReplaceAll(s.cfg.DatabaseName(), `\`, `\\`), `"`, `\"`)
	body := url.Values{"q": {`CREATE DATABASE "` + name + `"`}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.JoinPath("query").String(), strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("InfluxDB unreachable: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("CREATE DATABASE answered HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	// A refused statement (no admin privilege) comes back as 200 with
	// an "error" inside the result.
	if i := strings.Index(string(b), `"error":"`); i >= 0 {
		msg, _, _ := strings.Cut(string(b[i+9:]), `"`)
		return fmt.Errorf("CREATE DATABASE refused: %s", msg)
	}
	return nil
}

// Monitor probes the write target periodically and keeps the last
// result, so a readiness check reads it without a request of its own: a
// load balancer polling /readyz every second does not turn into a
// request storm on InfluxDB. When the target is missing and
// Config.CreateDatabase holds, it creates the database on a 1.x server.
type Monitor struct {
	c   *Client
	log zerolog.Logger

	mu        sync.Mutex
	last      ProbeResult
	downSince time.Time // first failed probe since the last success
	createErr error     // the last database creation's failure
	done      chan struct{}
}

// NewMonitor returns a Monitor of s; Run starts it.
func NewMonitor(s *Client, log zerolog.Logger) *Monitor {
	return &Monitor{c: s, log: log, done: make(chan struct{})}
}

// MonitorState is a Monitor's view: the last probe, when the failures
// began, and why the database could not be created.
type MonitorState struct {
	Last      ProbeResult // zero At: not probed yet
	DownSince time.Time
	CreateErr error
}

// State returns the last probe's outcome.
func (m *Monitor) State() MonitorState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return MonitorState{Last: m.last, DownSince: m.downSince, CreateErr: m.createErr}
}

// Probed is closed once the first probe is done.
func (m *Monitor) Probed() <-chan struct{} { return m.done }

// Run probes at once and then every interval until ctx ends.
func (m *Monitor) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	first := true
	for {
		m.probe(ctx)
		if first {
			close(m.done)
			first = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *Monitor) probe(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, m.c.cfg.Timeout)
	defer cancel()
	res := m.c.Probe(ctx)
	if res.Status == http.StatusNotFound && m.c.cfg.CreatesDatabase() {
		if err := m.create(ctx, res); err == nil {
			res = m.c.Probe(ctx)
		}
	}
	if ctx.Err() != nil && errors.Is(res.Err, context.Canceled) {
		return // shutting down: keep the last real answer
	}
	m.mu.Lock()
	prev := m.last
	m.last = res
	switch {
	case res.Err == nil:
		m.downSince = time.Time{}
	case m.downSince.IsZero():
		m.downSince = res.At
	}
	m.mu.Unlock()
	if res.Err == nil && prev.Err != nil {
		m.c.RetryNow()
	}
	if prev.At.IsZero() || errString(prev.Err) != errString(res.Err) {
		if res.Err == nil {
			m.log.Info().Str("target", m.c.cfg.Target()).Str("server_version", res.Version).Msg("InfluxDB takes writes into the target")
		} else {
			m.log.Error().Err(res.Err).Str("target", m.c.cfg.Target()).Msg("InfluxDB does not take writes into the target; points wait in the spool")
		}
	}
}

// create creates the database on a 1.x server, logging the outcome once
// per distinct failure.
func (m *Monitor) create(ctx context.Context, res ProbeResult) error {
	var err error
	if m.c.cfg.Version != V1 && !res.Server1x() {
		err = fmt.Errorf("InfluxDB 2.x creates buckets with the influx CLI, not through the write token: run %s", m.c.CreateCommand(res))
	} else if err = m.c.CreateDatabase(ctx); err != nil {
		err = fmt.Errorf("creating database %q: %w; run %s as an admin", m.c.cfg.DatabaseName(), err, m.c.CreateCommand(res))
	}
	m.mu.Lock()
	prev := m.createErr
	m.createErr = err
	m.mu.Unlock()
	switch {
	case err == nil:
		m.log.Info().Str("database", m.c.cfg.DatabaseName()).Msg("influx.create_database: created the database on InfluxDB")
	case errString(prev) != err.Error():
		m.log.Error().Err(err).Msg("influx.create_database: the database could not be created")
	}
	return err
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
