// Command sensorgate-bench is the end-to-end benchmark: it measures
// sensorgate against a no-op MQTT subscriber on the same stream,
// with real servers, and appends the results to a file kept in the repo
// (BENCHMARKS.md) so that regressions show in review.
//
// Every run gets a fresh Mosquitto (persistence on, queue limits lifted)
// and a fresh InfluxDB 1.8 from internal/testserver, and the deterministic
// ChirpStack v4 stream of internal/simulate (about 1.2 KB per uplink). Runs
// alternate, sensorgate then the no-op subscriber, for each pair: A B A B
// A B, so slow drifts of a shared machine hit both alike.
//
//   - backlog: the consumer's persistent session is created, N uplinks are
//     published while the consumer is stopped, then the consumer starts;
//     the time runs from its start until InfluxDB holds all N uplink points
//     (sensorgate) or N messages were acknowledged (no-op).
//   - live: the consumer runs and holds its session; the time runs from the
//     first publish, as fast as the broker takes them, to the same end.
//
// Per run it reports msgs/s, the ratio to the no-op of the same pair, the
// consumer's CPU seconds per 100k messages (utime+stime from
// /proc/PID/stat), its peak RSS (VmHWM) and the exact count delivered.
//
// Usage:
//
//	sensorgate-bench [-mode backlog|live] [-n 100000] [-pairs 3] [-registry sqlite|postgres] [-out BENCHMARKS.md] [-sensorgate BIN] [-profile FILE]
//	sensorgate-bench fleet [-sizes 500,10000,100000,1000000] [-out BENCHMARKS.md]   (idle RSS and CSV import by fleet size: fleet.go)
//	sensorgate-bench codecs [-n 300] [-pairs 3] [-out BENCHMARKS.md]   (start-up and memory with many JavaScript codecs: codecs.go)
//	sensorgate-bench soak [-rate 1000] [-duration 1h] [-devices 10000] [-json soak.json] [-out BENCHMARKS.md]   (a long steady run, sampled every 10 s: soak.go)
//	sensorgate-bench outage [-n 1000000] [-live-rate 100] [-out BENCHMARKS.md]   (InfluxDB down while n uplinks arrive: spool bytes per uplink, drain rate, live latency during the drain: outage.go)
//	sensorgate-bench ingest [-variants schema,lean+merge+ms] [-sizes 512K,2M] [-rounds 3] [-disk] [-out BENCHMARKS.md]   (InfluxDB's CPU for the fleet's line protocol alone, and for schema variants: ingest.go)
//	sensorgate-bench plot -in soak.json -out soak.png   (RSS, CPU per uplink and drain lag of a soak over time: plot.go)
//	sensorgate-bench noop -broker URL -client-id ID -topic FILTER -n N   (the no-op subscriber; run by the benchmark)
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sensorgate/sensorgate/internal/simulate"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	default:
		fmt.Fprintln(os.Stderr, "sensorgate-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "noop" {
		return noopCommand(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "fleet" {
		return fleetCommand(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "codecs" {
		return codecsCommand(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "bursts" {
		return burstsCommand(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "soak" {
		return soakCommand(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "outage" {
		return outageCommand(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "ingest" {
		return ingestCommand(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "plot" {
		return plotCommand(args[1:], stderr)
	}
	return benchCommand(ctx, args, stdout, stderr)
}

func benchCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sensorgate-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	s := &settings{log: stderr}
	fs.StringVar(&s.Mode, "mode", modeBacklog, "backlog (publish N while the consumer is stopped, then drain) or live (publish while it runs)")
	fs.IntVar(&s.N, "n", 100000, "uplinks per run")
	pairs := fs.Int("pairs", 3, "interleaved sensorgate / no-op pairs")
	fs.IntVar(&s.Devices, "devices", 500, "simulated devices")
	fs.StringVar(&s.Format, "format", simulate.ChirpStackV4, "feed format: chirpstack-v4 or tts-v3")
	fs.Uint64Var(&s.Seed, "seed", 99, "stream seed: the same seed publishes the same bytes")
	out := fs.String("out", "", "append the results to this file: Markdown, or JSON lines if it ends in .json")
	note := fs.String("note", "", "a line added to the results, e.g. what changed")
	fs.StringVar(&s.Sensorgate, "sensorgate", "", "sensorgate binary (default: go build ./cmd/sensorgate into the work dir)")
	fs.StringVar(&s.WorkDir, "workdir", "", "where runs keep broker, database and spool files (default: a new directory in $TMPDIR); its filesystem decides what an fsync costs")
	fs.DurationVar(&s.Timeout, "timeout", 10*time.Minute, "per run: publishing and draining")
	fs.DurationVar(&s.Poll, "poll", 100*time.Millisecond, "how often InfluxDB is asked for its uplink count")
	fs.BoolVar(&s.Keep, "keep", false, "keep each run's directory (logs, data)")
	fs.StringVar(&s.InfluxURL, "influx", "", "an InfluxDB 1.8 without authentication (http://host:8086) to write to instead of a fresh one on this machine per run, e.g. on a machine of its own so that it does not share the consumer's cores; each run gets its own database, dropped afterwards; its CPU is not measured")
	fs.Func("sensorgate-env", "KEY=VALUE added to sensorgate's environment only (repeatable), e.g. GOGC=200; the servers and the no-op keep theirs", func(v string) error {
		if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
			return fmt.Errorf("%q is not KEY=VALUE", v)
		}
		s.Env = append(s.Env, v)
		return nil
	})
	fs.StringVar(&s.Scripts, "scripts", "", "decoders.scripts for sensorgate: a folder of JavaScript codecs; testdata/codecs/bench holds a cayenne-lpp.js that replaces the built-in decoder, to measure the JavaScript engine end to end")
	fs.DurationVar(&s.CodecTime, "codec-timeout", 0, "decoders.timeout with -scripts (default: sensorgate's, 100ms; decoders.worker_timeout follows at 4×): on a machine loaded by other work a wall-clock limit that short turns stalls into dead letters, and a run waits for every uplink")
	fs.StringVar(&s.Sandbox, "codec-sandbox", "", "decoders.sandbox with -scripts: workers or in-process (default: sensorgate's, workers); CPU-s counts the codec workers too")
	fs.BoolVar(&s.Warm, "warm", false, "live mode: before each sensorgate run is measured, publish one uplink from every device and wait until InfluxDB holds them, so the measurement is the steady state of a fleet whose devices have all been heard (the no-op runs are not warmed)")
	fs.StringVar(&s.Registry, "registry", registrySQLite, "sensorgate's registry.driver: sqlite (the embedded default) or postgres (a fresh database per run on the machine's PostgreSQL, SG_TEST_PG_DSN to point elsewhere; dropped after the run)")
	fs.Float64Var(&s.Rate, "rate", 0, "live mode: uplinks offered per second (e.g. 10000); 0 publishes as fast as the broker takes them")
	fs.StringVar(&s.Fleet, "fleet", fleetCayenne, "how the fleet is decoded: cayenne (sensorgate's built-in Cayenne LPP decoder), object (the network server's decoded object, lifted onto the catalogue by the source's map; the stream carries ChirpStack's object) or js (the JavaScript Cayenne LPP codec of testdata/codecs/bench, unless -scripts names another folder)")
	consumers := fs.String("consumers", consumerSensorgate+","+consumerNoop, "the consumers of each round, in order: sensorgate, no-op, baseline (-baseline), telegraf (Telegraf v1.37.2 with cmd/sensorgate-bench/telegraf.conf, built by scripts/install-telegraf.sh into .tools/bin when missing; the stream then carries ChirpStack's decoded object for every consumer)")
	fs.BoolVar(&s.Disk, "disk", true, "after each run, restart InfluxDB so that it compacts its shard fully, and report its TSM bytes per uplink")
	fs.StringVar(&s.Baseline, "baseline", "", "another sensorgate binary (e.g. a build of the commit before a change) for -consumers baseline, run with the same configuration")
	fs.StringVar(&s.Telegraf, "telegraf", "", "Telegraf binary for -consumers telegraf (default: scripts/install-telegraf.sh's, installed on request)")
	profFile := fs.String("profile", "", "after the pairs, run sensorgate once more with SENSORGATE_PPROF and write its CPU profile here (that run is not in the medians)")
	profSecs := fs.Int("profile-seconds", 0, "profile length (default: the median sensorgate run time, rounded up; 10 without pairs)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if s.Mode != modeBacklog && s.Mode != modeLive {
		return fmt.Errorf("-mode %q: use %s or %s", s.Mode, modeBacklog, modeLive)
	}
	if s.Registry != registrySQLite && s.Registry != registryPostgres {
		return fmt.Errorf("-registry %q: use %s or %s", s.Registry, registrySQLite, registryPostgres)
	}
	if s.N <= 0 || *pairs < 0 || s.Devices <= 0 {
		return errors.New("-n and -devices must be positive, -pairs not negative")
	}
	if s.Fleet != fleetCayenne && s.Fleet != fleetObject && s.Fleet != fleetJS {
		return fmt.Errorf("-fleet %q: use %s, %s or %s", s.Fleet, fleetCayenne, fleetObject, fleetJS)
	}
	var order []string
	for _, c := range strings.Split(*consumers, ",") {
		switch c = strings.TrimSpace(c); c {
		case consumerSensorgate, consumerNoop, consumerTelegraf, consumerBaseline:
			if slices.Contains(order, c) {
				return fmt.Errorf("-consumers: %s twice", c)
			}
			order = append(order, c)
		default:
			return fmt.Errorf("-consumers: %q: use %s, %s, %s or %s", c, consumerSensorgate, consumerNoop, consumerTelegraf, consumerBaseline)
		}
	}
	if len(order) == 0 {
		return errors.New("-consumers names none")
	}
	if slices.Contains(order, consumerBaseline) {
		if s.Baseline == "" {
			return errors.New("-consumers baseline needs -baseline BIN")
		}
		abs, err := filepath.Abs(s.Baseline)
		if err != nil {
			return fmt.Errorf("-baseline: %w", err)
		}
		s.Baseline = abs
		if _, err := os.Stat(s.Baseline); err != nil {
			return fmt.Errorf("-baseline: %w", err)
		}
	}
	if *pairs == 0 && *profFile == "" {
		return errors.New("-pairs 0 measures nothing without -profile")
	}
	if s.InfluxURL != "" {
		if u, err := url.Parse(s.InfluxURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("-influx %q: want http://host:port", s.InfluxURL)
		}
	}

	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary (re-executed as the no-op subscriber): %w", err)
	}
	s.Self = self
	cleanup, err := prepareWork(ctx, &s.WorkDir, &s.Sensorgate, s.Keep, "sensorgate-bench-", stderr)
	if err != nil {
		return err
	}
	defer cleanup()
	if s.Sensorgate, err = filepath.Abs(s.Sensorgate); err != nil {
		return fmt.Errorf("sensorgate binary: %w", err)
	}
	if _, err := os.Stat(s.Sensorgate); err != nil {
		return fmt.Errorf("sensorgate binary: %w", err)
	}

	if s.Fleet == fleetJS && s.Scripts == "" {
		s.Scripts = filepath.Join("testdata", "codecs", "bench")
	}
	if s.Fleet == fleetObject || slices.Contains(order, consumerTelegraf) {
		if s.Format != simulate.ChirpStackV4 {
			return fmt.Errorf("-fleet %s and Telegraf take ChirpStack v4's decoded object: use -format %s", s.Fleet, simulate.ChirpStackV4)
		}
		s.Object = true
	}
	if slices.Contains(order, consumerTelegraf) && s.Telegraf == "" {
		if s.Telegraf, err = installTelegraf(ctx, stderr); err != nil {
			return err
		}
	}
	if s.Scripts != "" {
		if s.Scripts, err = filepath.Abs(s.Scripts); err != nil {
			return fmt.Errorf("-scripts: %w", err)
		}
		if _, err := os.Stat(filepath.Join(s.Scripts, simulate.Model+".js")); err != nil {
			return fmt.Errorf("-scripts: the fleet's model needs a codec: %w", err)
		}
		scripts := fmt.Sprintf("Decoded by the JavaScript codec %s.js in %s (decoders.scripts), not the built-in decoder.", simulate.Model, s.Scripts)
		*note = strings.TrimSpace(scripts + " " + *note)
	}
	if s.Registry == registryPostgres {
		*note = strings.TrimSpace("Registry in PostgreSQL (registry.driver: postgres, a fresh database per run on this machine). " + *note)
	}
	res := &Results{
		Started: time.Now().UTC(), Mode: s.Mode, N: s.N, Pairs: *pairs, Format: s.Format, Fleet: s.Fleet, Object: s.Object, Consumers: order, Rate: s.Rate,
		Devices: s.Devices, Warm: s.Warm, Seed: s.Seed, Note: *note, InfluxURL: s.InfluxURL,
		Machine: describeMachine(s.Sensorgate, s.WorkDir),
	}
	for i := 1; i <= *pairs; i++ {
		for _, c := range order {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("interrupted: %w", err)
			}
			fmt.Fprintf(stderr, "pair %d/%d: %s, %s, N=%d\n", i, *pairs, c, s.Mode, s.N)
			r := runOne(ctx, s, c, i, nil)
			fmt.Fprintln(stderr, "  "+r.summary())
			res.Runs = append(res.Runs, r)
		}
	}
	res.computeRatios()

	if *profFile != "" {
		sec := *profSecs
		if sec <= 0 {
			sec = 10
			if m, ok := res.median(consumerSensorgate, func(r Run) float64 { return r.Seconds }); ok {
				sec = int(math.Ceil(m))
			}
		}
		fmt.Fprintf(stderr, "profiling run: sensorgate, %s, N=%d, %d s CPU profile into %s\n", s.Mode, s.N, sec, *profFile)
		r := runOne(ctx, s, consumerSensorgate, 0, &profiling{file: *profFile, seconds: sec})
		fmt.Fprintln(stderr, "  "+r.summary()+" (profiled; not in the medians)")
		if r.Err == "" {
			fmt.Fprintf(stderr, "  top entries: go tool pprof -top -nodecount=25 %s %s\n", s.Sensorgate, *profFile)
		}
		res.Profiled = &r
	}

	if *pairs == 0 {
		// Only the profiling run: nothing to compare, nothing to record.
		if res.failed() {
			return errors.New("the profiling run failed")
		}
		return nil
	}
	md := res.Markdown()
	fmt.Fprint(stdout, md)
	if *out != "" {
		if err := res.Append(*out, md); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "appended to", *out)
	}
	if res.failed() {
		return errors.New("some runs failed; see the table")
	}
	return nil
}

// installTelegraf runs scripts/install-telegraf.sh, which builds Telegraf
// v1.37.2 into .tools/bin unless it is there, and returns the binary's
// path (the script's last line). It runs from the repository's root, as
// make does.
func installTelegraf(ctx context.Context, stderr io.Writer) (string, error) {
	cmd := exec.CommandContext(ctx, "sh", filepath.Join("scripts", "install-telegraf.sh"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("install Telegraf (scripts/install-telegraf.sh, run from the repository's root; or pass -telegraf BIN): %w", err)
	}
	lines := strings.Fields(strings.TrimSpace(out.String()))
	if len(lines) == 0 {
		return "", errors.New("install Telegraf: scripts/install-telegraf.sh printed no path")
	}
	return filepath.Abs(lines[len(lines)-1])
}

// prepareWork makes *workDir, a temporary directory unless one is given
// (removed by cleanup unless keep), and builds sensorgate into it unless
// *bin names a binary. MkdirTemp makes a directory 0700; the broker's own
// user must get through it to its persistence directory.
func prepareWork(ctx context.Context, workDir, bin *string, keep bool, prefix string, stderr io.Writer) (cleanup func(), err error) {
	cleanup = func() {}
	if *workDir == "" {
		if *workDir, err = os.MkdirTemp("", prefix); err != nil {
			return cleanup, fmt.Errorf("work dir: %w", err)
		}
		if !keep {
			dir := *workDir
			cleanup = func() { os.RemoveAll(dir) }
		}
		if err := os.Chmod(*workDir, 0o755); err != nil {
			cleanup()
			return func() {}, fmt.Errorf("work dir: %w", err)
		}
	} else if err := os.MkdirAll(*workDir, 0o755); err != nil {
		return cleanup, fmt.Errorf("work dir: %w", err)
	}
	if *bin == "" {
		*bin = filepath.Join(*workDir, "sensorgate")
		if err := buildSensorgate(ctx, *bin, stderr); err != nil {
			cleanup()
			return func() {}, err
		}
	}
	return cleanup, nil
}

// buildSensorgate builds the daemon into bin, as the benchmarks run it.
func buildSensorgate(ctx context.Context, bin string, log io.Writer) error {
	fmt.Fprintln(log, "building sensorgate")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "github.com/sensorgate/sensorgate/cmd/sensorgate")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build sensorgate: %w\n%s", err, b)
	}
	return nil
}
