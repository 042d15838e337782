package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sensorgate/sensorgate/internal/testserver"
)

// fleetCommand measures what the fleet's size costs the daemon (issue 22,
// points 1 and 3): per size, the real binary, started against fresh
// Mosquitto and InfluxDB, takes the fleet as one CSV through
// POST /api/v1/devices/import (a dry run in one process, the import in
// another, each process's peak RSS from VmHWM), then a third process
// starts with the fleet registered and its idle RSS is read once it has
// settled, and again after one unpaged GET /api/v1/devices.
//
//	sensorgate-bench fleet [-sizes 500,10000,100000,1000000] [-out BENCHMARKS.md]
func fleetCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sensorgate-bench fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sizes := fs.String("sizes", "500,10000,100000,1000000", "fleet sizes, comma-separated")
	bin := fs.String("sensorgate", "", "sensorgate binary (default: go build ./cmd/sensorgate)")
	out := fs.String("out", "", "append the table to this Markdown file")
	settle := fs.Duration("settle", 60*time.Second, "longest wait for the idle RSS to settle")
	registry := fs.String("registry", registrySQLite, "registry.driver: sqlite (under state_dir) or postgres (a fresh database per size on the machine's PostgreSQL, SG_TEST_PG_DSN to point elsewhere)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *registry != registrySQLite && *registry != registryPostgres {
		return fmt.Errorf("-registry %q: use %s or %s", *registry, registrySQLite, registryPostgres)
	}
	var ns []int
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("-sizes: %q is not a positive count", f)
		}
		ns = append(ns, n)
	}
	dir, err := os.MkdirTemp("", "sensorgate-fleet-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if *bin == "" {
		*bin = filepath.Join(dir, "sensorgate")
		if err := buildSensorgate(ctx, *bin, stderr); err != nil {
			return err
		}
	}
	h, err := newHarness(filepath.Join(dir, "servers"))
	if err != nil {
		return err
	}
	defer h.close(false) //nolint:errcheck // a temporary directory
	var rows []fleetRow
	err = h.do(func() error {
		mq := testserver.StartMosquitto(h)
		db := testserver.StartInfluxDB(h)
		for _, n := range ns {
			fmt.Fprintf(stderr, "fleet of %d devices\n", n)
			extra := ""
			if *registry == registryPostgres {
				extra = fmt.Sprintf("registry: {driver: postgres, dsn: %q}\n", testserver.PostgresDB(h))
			}
			r, err := measureFleet(ctx, h, *bin, n, mq.URL(), db.URL(), db.Bucket(), extra, *settle, stderr)
			if err != nil {
				return fmt.Errorf("fleet of %d: %w", n, err)
			}
			fmt.Fprintf(stderr, "  %+v\n", r)
			rows = append(rows, r)
		}
		return nil
	})
	if err != nil {
		return err
	}
	m := describeMachine(*bin, dir)
	md := fleetMarkdown(rows, fmt.Sprintf("%d CPUs (%s), %s, load %s", m.CPUs, m.CPUModel, m.MemTotal, m.LoadAvg))
	fmt.Fprint(stdout, md)
	if *out != "" {
		if err := appendFile(*out, "\n"+md); err != nil {
			return err
		}
	}
	return nil
}

// fleetRow is one fleet size's measurements; memory in MiB.
type fleetRow struct {
	Devices      int
	CSVBytes     int64
	DryRunS      float64
	DryRunCPU    float64
	DryRunPeak   float64
	BadRowPeak   float64 // the import with its last row bad: refused whole
	ImportS      float64
	ImportCPU    float64
	ImportPeak   float64
	IdleRSS      float64
	ListedRSS    float64
	ListingBytes int64
}

// fleetCSV writes n devices named and tagged as internal/simulate's fleet
// names and tags them (district of 5, site of 7).
func fleetCSV(path string, n int, badLast bool) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriter(f)
	districts := []string{"centre", "north", "east", "south", "west"}
	fmt.Fprintln(w, "dev_eui;name;model;tags")
	for i := 0; i < n; i++ {
		model := "cayenne-lpp"
		if badLast && i == n-1 {
			model = "acme-no-such-model"
		}
		fmt.Fprintf(w, "70b3d57ed1%06x;sensor-%07d;%s;district=%s|site=site-%02d\n", i, i, model, districts[i%5], i%7)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return 0, err
	}
	return st.Size(), f.Close()
}

const fleetToken = "fleet-bench-token-0123456789abcdef"

// fleetDaemon is one sensorgate process of a fleet measurement.
type fleetDaemon struct {
	p    *consumerProc
	base string
}

// startDaemonWith starts a daemon of a fleet measurement with extra
// lines of configuration (YAML at the top level, "" for none) and returns
// once /readyz answers 200.
func startDaemonWith(ctx context.Context, h *harness, bin, stateDir, broker, influxURL, bucket, extra string, i int) (*fleetDaemon, error) {
	port := testserver.FreePort(h)
	cfg := fmt.Sprintf(`log: {level: warn, format: json}
state_dir: %q
sources:
  - {name: fleet, type: mqtt, format: chirpstack-v4, broker: %q, topics: ["application/+/device/+/event/up"], client_id: fleet-bench, qos: 1}
influx: {url: %q, bucket: %q}
http: {listen: "127.0.0.1:%d", token: %q}
%s`, stateDir, broker, influxURL, bucket, port, fleetToken, extra)
	path := filepath.Join(h.dir, fmt.Sprintf("sensorgate-%d.yaml", i))
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	p := newConsumerProc(exec.Command(bin, "run", "-c", path), filepath.Join(h.dir, fmt.Sprintf("sensorgate-%d.log", i)), false)
	if err := p.start(); err != nil {
		return nil, err
	}
	d := &fleetDaemon{p: p, base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(d.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d, nil
			}
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("sensorgate exited; see %s", p.logPath)
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("sensorgate not ready after 2 minutes; see %s", p.logPath)
		}
	}
}

// call makes an API request and returns the status and the body's length
// (the body itself is discarded, so the client holds none of it).
func (d *fleetDaemon) call(method, path, file string) (int, int64, []byte, error) {
	var body io.Reader
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return 0, 0, nil, err
		}
		defer f.Close()
		body = f
	}
	req, err := http.NewRequest(method, d.base+path, body)
	if err != nil {
		return 0, 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+fleetToken)
	if file != "" {
		req.Header.Set("Content-Type", "text/csv")
		req.Header.Set("Origin", d.base)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Minute}).Do(req)
	if err != nil {
		return 0, 0, nil, err
	}
	defer resp.Body.Close()
	head := make([]byte, 2048)
	k, _ := io.ReadFull(resp.Body, head)
	rest, err := io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, int64(k) + rest, head[:k], err
}

func mib(kib int) float64 { return float64(kib) / 1024 }

// rssKiB reads VmRSS.
func rssKiB(pid int) (int, error) { return statusKiB(pid, "VmRSS") }

// settledRSS waits until VmRSS has changed by less than 1 % over 5 s (the
// runtime returns freed memory gradually), or until max has passed.
func settledRSS(pid int, max time.Duration) (int, error) {
	var last []int
	deadline := time.Now().Add(max)
	for {
		v, err := rssKiB(pid)
		if err != nil {
			return 0, err
		}
		last = append(last, v)
		if n := len(last); n > 5 {
			lo, hi := last[n-6], last[n-6]
			for _, x := range last[n-6:] {
				lo, hi = min(lo, x), max2(hi, x)
			}
			if float64(hi-lo) < 0.01*float64(hi) || time.Now().After(deadline) {
				return v, nil
			}
		}
		time.Sleep(time.Second)
	}
}

func max2(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func measureFleet(ctx context.Context, h *harness, bin string, n int, broker, influxURL, bucket, extra string, settle time.Duration, log io.Writer) (fleetRow, error) {
	r := fleetRow{Devices: n}
	csvPath := filepath.Join(h.dir, fmt.Sprintf("fleet-%d.csv", n))
	var err error
	if r.CSVBytes, err = fleetCSV(csvPath, n, false); err != nil {
		return r, err
	}
	defer os.Remove(csvPath)
	badPath := filepath.Join(h.dir, fmt.Sprintf("fleet-%d-bad.csv", n))
	if _, err = fleetCSV(badPath, n, true); err != nil {
		return r, err
	}
	defer os.Remove(badPath)
	state := filepath.Join(h.dir, fmt.Sprintf("state-%d", n))
	defer os.RemoveAll(state)
	// importOnce posts file to a fresh daemon and returns the wall and
	// CPU seconds of the request and the process's peak RSS.
	importOnce := func(file string, dry, bad bool, i int) (secs, cpu, peak float64, err error) {
		d, err := startDaemonWith(ctx, h, bin, state, broker, influxURL, bucket, extra, i)
		if err != nil {
			return 0, 0, 0, err
		}
		defer d.p.stop()
		cpu0, err := cpuSeconds(d.p.pid())
		if err != nil {
			return 0, 0, 0, err
		}
		start := time.Now()
		code, _, head, err := d.call(http.MethodPost, "/api/v1/devices/import?format=csv&dry_run="+strconv.FormatBool(dry), file)
		secs = time.Since(start).Seconds()
		if err != nil {
			return 0, 0, 0, err
		}
		if cpu, err = cpuSeconds(d.p.pid()); err != nil {
			return 0, 0, 0, err
		}
		cpu -= cpu0
		var rep struct {
			Total, Created, Invalid int
			Detail                  struct{ Total, Invalid int }
		}
		_ = json.Unmarshal(head, &rep)
		switch {
		case bad && (code != http.StatusUnprocessableEntity || rep.Detail.Total != n || rep.Detail.Invalid != 1):
			return 0, 0, 0, fmt.Errorf("import with a bad last row: %d %s", code, head)
		case !bad && (code != http.StatusOK || rep.Total != n || rep.Created != n):
			return 0, 0, 0, fmt.Errorf("import (dry run %v): %d %s", dry, code, head)
		}
		if bad {
			// All or nothing: the registry is still empty.
			code, _, head, err := d.call(http.MethodGet, "/api/v1/devices?limit=1", "")
			if err != nil || code != http.StatusOK || !strings.Contains(string(head), `"registered":0`) {
				return 0, 0, 0, fmt.Errorf("after the refused import: %d %v %s", code, err, head)
			}
		}
		hwm, err := peakRSSKiB(d.p.pid())
		return secs, cpu, mib(hwm), err
	}
	fmt.Fprintln(log, "  dry run")
	if r.DryRunS, r.DryRunCPU, r.DryRunPeak, err = importOnce(csvPath, true, false, 1); err != nil {
		return r, err
	}
	fmt.Fprintln(log, "  import with a bad last row")
	if _, _, r.BadRowPeak, err = importOnce(badPath, false, true, 2); err != nil {
		return r, err
	}
	fmt.Fprintln(log, "  import")
	if r.ImportS, r.ImportCPU, r.ImportPeak, err = importOnce(csvPath, false, false, 3); err != nil {
		return r, err
	}
	fmt.Fprintln(log, "  idle")
	d, err := startDaemonWith(ctx, h, bin, state, broker, influxURL, bucket, extra, 4)
	if err != nil {
		return r, err
	}
	defer d.p.stop()
	idle, err := settledRSS(d.p.pid(), settle)
	if err != nil {
		return r, err
	}
	r.IdleRSS = mib(idle)
	code, size, head, err := d.call(http.MethodGet, "/api/v1/devices", "")
	if err != nil || code != http.StatusOK {
		return r, fmt.Errorf("listing: %d %v %s", code, err, head)
	}
	r.ListingBytes = size
	listed, err := settledRSS(d.p.pid(), settle)
	if err != nil {
		return r, err
	}
	r.ListedRSS = mib(listed)
	return r, nil
}

func fleetMarkdown(rows []fleetRow, machine string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s — fleet size: idle RSS and CSV import through the API (issue 22)\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "`sensorgate-bench fleet` on %s. Per size: a CSV (name, model, two tags) posted to a fresh daemon as a dry run, then with its last row bad to another (answered 422, registry left empty), then whole to a third as the import (peak RSS = VmHWM of that process; CPU s = the daemon's during the request); then a third starts with the fleet registered: RSS once settled (<1 %% change over 5 s), and again after one unpaged `GET /api/v1/devices`.\n\n", machine)
	b.WriteString("| devices | CSV MB | dry run s (CPU s) | dry run peak MiB | bad last row: peak MiB | import s (CPU s) | import peak MiB | idle RSS MiB | after listing MiB | listing MB |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %d | %.1f | %.1f (%.1f) | %.0f | %.0f | %.1f (%.1f) | %.0f | %.1f | %.1f | %.1f |\n", r.Devices, float64(r.CSVBytes)/1e6,
			r.DryRunS, r.DryRunCPU, r.DryRunPeak, r.BadRowPeak, r.ImportS, r.ImportCPU, r.ImportPeak, r.IdleRSS, r.ListedRSS, float64(r.ListingBytes)/1e6)
	}
	return b.String()
}
