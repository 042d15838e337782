package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/devices"
)

const devicesUsage = `Usage:
  sensorgate devices list   [-c FILE] [-model M] [-json]
  sensorgate devices import [-c FILE] [-dry-run] [-format csv|yaml] FILE
  sensorgate devices export [-c FILE] [-format csv|yaml|json] [-o FILE]

The same calls as the HTTP API (/api/v1/devices…). When the daemon of the
config answers on http.listen, they go to it and apply at once; when it is
not running, they work on the registry directly: state_dir (the next start
uses them), or the PostgreSQL of registry.dsn (running instances apply them
at once).
An import is all or nothing: a bad row (invalid EUI, duplicate, unknown
model, wrong key length) imports nothing and is listed with its line.
`

// apiClient calls the API of the config's daemon, or the same handler
// in-process when no daemon answers.
type apiClient struct {
	base, token string
	hc          *http.Client
	offline     *Daemon // the in-process daemon; nil when talking to a running one
}

// dialAPI returns a client for the config at path. stderr learns which
// way it went, since it matters where a change lands.
func dialAPI(ctx context.Context, path string, stderr io.Writer) (*apiClient, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	c := &apiClient{}
	warn := func(msg string) { fmt.Fprintln(stderr, "sensorgate: warning:", msg) }
	base, tr, err := apiEndpoint(cfg.HTTP.Listen, cfg.HTTP.TLSCert) // healthcheck.go
	if err != nil {
		return nil, err
	}
	c.base = base
	c.hc = &http.Client{Transport: tr, Timeout: 10 * time.Minute}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/healthz", nil)
	probe := &http.Client{Transport: tr, Timeout: 3 * time.Second}
	resp, err := probe.Do(req)
	if err == nil {
		resp.Body.Close()
		if c.token, err = clientToken(cfg, warn); err != nil { // token.go
			return nil, err
		}
		return c, nil
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return nil, fmt.Errorf("the daemon at %s does not answer: %w", c.base, err)
	}
	fmt.Fprintf(stderr, "sensorgate: no daemon on %s; working on %s directly\n", c.base, cfg.StateDir)
	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: true, PartsExclude: []string{zerolog.TimestampFieldName}}).Level(zerolog.WarnLevel)
	d, err := NewDaemon(cfg, log)
	if err != nil {
		return nil, err
	}
	// The in-process API guards as the daemon's does: the requests keep
	// the listen address as their Host, and carry the token it took
	// (generated now if this state_dir never had a daemon).
	c.offline = d
	if c.token, err = clientToken(cfg, warn); err != nil {
		d.Close()
		return nil, err
	}
	h := d.ops.api.Handler()
	c.hc = &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Result(), nil
	})}
	return c, nil
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Close releases the in-process daemon's files.
func (c *apiClient) Close() error {
	if c.offline != nil {
		return c.offline.Close()
	}
	return nil
}

// call sends a request; an answer of 400 or more comes back as an
// *apiError carrying the API's message and detail.
func (c *apiClient) call(ctx context.Context, method, path, ctype string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if ctype == "" && method != http.MethodGet {
		ctype = "application/json" // the API takes no change without it, body or not
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(b, e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(b))
		}
		return nil, e
	}
	return b, nil
}

// apiError is an error answer of the API.
type apiError struct {
	Status  int             `json:"-"`
	Message string          `json:"error"`
	Detail  json.RawMessage `json:"detail"`
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status) }

// devicesCommand implements "sensorgate devices".
func devicesCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, args, fs, path, err := subcommand("devices", devicesUsage, args, stderr)
	if fs == nil {
		return err
	}
	switch sub {
	case "list":
		model := fs.String("model", "", "only devices of this model")
		asJSON := fs.Bool("json", false, "print JSON instead of a table")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		return withClient(ctx, *path, stderr, func(c *apiClient) error {
			q := ""
			if *model != "" {
				q = "?model=" + *model
			}
			b, err := c.call(ctx, http.MethodGet, "/api/v1/devices"+q, "", nil)
			if err != nil {
				return err
			}
			if *asJSON {
				_, err = stdout.Write(b)
				return err
			}
			var resp struct{ Devices []devices.Device }
			if err := json.Unmarshal(b, &resp); err != nil {
				return fmt.Errorf("devices list: %w", err)
			}
			return printDevices(stdout, resp.Devices)
		})
	case "import":
		dry := fs.Bool("dry-run", false, "check and report every row; change nothing")
		format := fs.String("format", "", "csv or yaml (default: from the file name)")
		positional, err := parseInterspersed(fs, args)
		if err != nil {
			return err
		}
		if len(positional) != 1 {
			fmt.Fprintln(stderr, "sensorgate devices import: give one CSV or YAML file")
			return errUsage
		}
		file := positional[0]
		body, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("devices import: %w", err)
		}
		if *format == "" {
			switch strings.ToLower(filepath.Ext(file)) {
			case ".csv":
				*format = "csv"
			case ".yaml", ".yml", ".json":
				*format = "yaml"
			default:
				fmt.Fprintf(stderr, "sensorgate devices import: %s: name it .csv, .yaml or .yml, or give -format\n", file)
				return errUsage
			}
		}
		return withClient(ctx, *path, stderr, func(c *apiClient) error {
			q := fmt.Sprintf("/api/v1/devices/import?format=%s&dry_run=%t", *format, *dry)
			ctype := "application/yaml"
			if *format == "csv" {
				ctype = "text/csv"
			}
			b, err := c.call(ctx, http.MethodPost, q, ctype, body)
			var ae *apiError
			if errors.As(err, &ae) && len(ae.Detail) > 0 {
				var rep devices.ImportReport
				if json.Unmarshal(ae.Detail, &rep) == nil && rep.Total > 0 {
					printReport(stdout, rep)
				}
				return errors.New(ae.Message)
			}
			if err != nil {
				return err
			}
			var rep devices.ImportReport
			if err := json.Unmarshal(b, &rep); err != nil {
				return fmt.Errorf("devices import: %w", err)
			}
			printReport(stdout, rep)
			return nil
		})
	case "export":
		format := fs.String("format", "csv", "csv, yaml or json")
		out := fs.String("o", "", "write to this file instead of standard output")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		return withClient(ctx, *path, stderr, func(c *apiClient) error {
			b, err := c.call(ctx, http.MethodGet, "/api/v1/devices/export?format="+*format, "", nil)
			if err != nil {
				return err
			}
			if *out == "" {
				_, err = stdout.Write(b)
				return err
			}
			return os.WriteFile(*out, b, 0o640)
		})
	}
	fmt.Fprintf(stderr, "sensorgate devices: unknown subcommand %q\n\n%s", sub, devicesUsage)
	return errUsage
}

func withClient(ctx context.Context, path string, stderr io.Writer, fn func(*apiClient) error) error {
	c, err := dialAPI(ctx, path, stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

func printDevices(w io.Writer, devs []devices.Device) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEV_EUI\tNAME\tMODEL\tTAGS")
	for _, d := range devs {
		tags := make([]string, 0, len(d.Tags))
		for k, v := range d.Tags {
			tags = append(tags, k+"="+v)
		}
		sort.Strings(tags)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.EUI, d.Name, d.Model, strings.Join(tags, ","))
	}
	fmt.Fprintf(tw, "%d devices\n", len(devs))
	return tw.Flush()
}

// printReport prints an import's problem rows and its counts.
func printReport(w io.Writer, rep devices.ImportReport) {
	for _, r := range rep.Rows {
		for _, p := range r.Problems {
			fmt.Fprintf(w, "line %d: %s: %s\n", r.Line, r.DevEUI, p)
		}
		for _, p := range r.Warnings {
			fmt.Fprintf(w, "line %d: %s: warning: %s\n", r.Line, r.DevEUI, p)
		}
	}
	what := "imported"
	switch {
	case rep.DryRun:
		what = "dry run, nothing changed"
	case !rep.Applied:
		what = "nothing imported"
	}
	fmt.Fprintf(w, "%d rows: %d to create, %d to update, %d unchanged, %d invalid (%s)\n",
		rep.Total, rep.Created, rep.Updated, rep.Unchanged, rep.Invalid, what)
}
