package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sensorgate/sensorgate/internal/testserver"
)

// codecsCommand measures what many JavaScript codecs cost the daemon at
// start (issue 22 point 6): the real binary with decoders.scripts holding
// n distinct codecs (the repository's test codecs and copies of them,
// each with a constant and a comment of its own), against the same daemon
// without scripts, in interleaved pairs. Per start: the wall time from
// exec to /readyz answering 200 (the scripts folder is loaded, each codec
// compiled in a worker, before the daemon is ready), the CPU of the daemon
// and its workers meanwhile, and the resident memory of both once settled.
// Then (unless -uplinks=false) every codec is put to work: each run has
// one device per codec (with scripts the codec's model, without them the
// built-in decoder of the same frames), and rounds of one uplink from
// every device go through a real Mosquitto and the daemon into InfluxDB,
// until the daemon's sensorgate_codec_worker_codecs says every codec has
// decoded in every worker (its top level frozen in each worker's locked
// runtime); then -measure rounds more, whose CPU per uplink is reported,
// and the memory once settled again: RSS, PSS (shared pages counted once
// over the processes) and anonymous memory, per process.
// What a call costs in a worker alone is BenchmarkSandboxManyCodecs
// (decoders/sandbox).
//
//	sensorgate-bench codecs [-n 300] [-pairs 3] [-uplinks] [-warm 4] [-measure 3] [-worker-memory BYTES] [-json FILE] [-out BENCHMARKS.md]
func codecsCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sensorgate-bench codecs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 300, "codecs in the scripts folder")
	pairs := fs.Int("pairs", 3, "interleaved starts without and with the codecs")
	base := fs.String("codecs", "testdata/codecs", "folder whose *.js files are the codecs copied")
	bin := fs.String("sensorgate", "", "sensorgate binary (default: go build ./cmd/sensorgate)")
	out := fs.String("out", "", "append the table to this Markdown file")
	jsonOut := fs.String("json", "", "write the rows to this file as JSON")
	workerMemory := fs.Int64("worker-memory", 0, "decoders.worker_memory in bytes for the runs with codecs (default: sensorgate's, 32 MiB): what a worker's collector keeps its memory under")
	settle := fs.Duration("settle", 30*time.Second, "longest wait for the RSS to settle")
	uplinks := fs.Bool("uplinks", true, "after start-up, send uplinks of every codec until each has run in every worker, then measure again")
	warm := fs.Int("warm", 4, "with -uplinks: at least this many rounds (one uplink per codec each) before the measured ones, more until every codec has run in every worker")
	measured := fs.Int("measure", 3, "with -uplinks: measured rounds (CPU per uplink)")
	maxRounds := fs.Int("max-rounds", 40, "with -uplinks: give up when the codecs have not all run in every worker after this many rounds")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n <= 0 || *pairs <= 0 {
		return errors.New("-n and -pairs must be positive")
	}
	if *uplinks && (*warm <= 0 || *measured <= 0 || *maxRounds < *warm) {
		return errors.New("-warm and -measure must be positive, -max-rounds at least -warm")
	}
	dir, err := os.MkdirTemp("", "sensorgate-codecs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	scripts := filepath.Join(dir, "scripts")
	files, err := writeCodecs(*base, scripts, *n)
	if err != nil {
		return err
	}
	if *bin == "" {
		*bin = filepath.Join(dir, "sensorgate")
		fmt.Fprintln(stderr, "building sensorgate")
		build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", *bin, "github.com/sensorgate/sensorgate/cmd/sensorgate")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("build sensorgate: %w\n%s", err, b)
		}
	}
	h, err := newHarness(filepath.Join(dir, "servers"))
	if err != nil {
		return err
	}
	defer h.close(false) //nolint:errcheck // a temporary directory
	var rows []codecsRow
	err = h.do(func() error {
		mq := testserver.StartMosquitto(h)
		db := testserver.StartInfluxDB(h)
		for i := 1; i <= *pairs; i++ {
			for _, withCodecs := range []bool{false, true} {
				extra, k := "", 0
				if withCodecs {
					// Two workers, as on the 2-core machines the figures
					// are for, whatever this machine has.
					mem := ""
					if *workerMemory > 0 {
						mem = fmt.Sprintf(", worker_memory: %d", *workerMemory)
					}
					extra, k = fmt.Sprintf("decoders: {scripts: %q, workers: %d%s}\n", scripts, codecWorkers, mem), *n
				}
				fmt.Fprintf(stderr, "pair %d/%d: %d codecs\n", i, *pairs, k)
				var plan *uplinkPhase
				if *uplinks {
					fleet, err := codecFleet(files, withCodecs)
					if err != nil {
						return err
					}
					csv := filepath.Join(dir, fmt.Sprintf("devices-%d-%d.csv", i, k))
					if err := writeDevicesCSV(csv, fleet); err != nil {
						return err
					}
					extra += fmt.Sprintf("devices: {import: %q}\n", csv)
					// Each run's uplinks in a window of milliseconds of its
					// own, ten minutes back: InfluxDB is shared by the runs.
					plan = &uplinkPhase{fleet: fleet, warm: *warm, measured: *measured, maxRounds: *maxRounds,
						rng: rand.New(rand.NewPCG(uint64(i), uint64(k))), base: time.Now().Add(-10 * time.Minute).Truncate(time.Second)}
				}
				r, err := measureStart(ctx, h, *bin, filepath.Join(dir, fmt.Sprintf("state-%d-%d", i, k)), mq.URL(), db, extra, i*2+min(k, 1), *settle, plan, k, stderr)
				if err != nil {
					return fmt.Errorf("pair %d, %d codecs: %w", i, k, err)
				}
				r.Pair, r.Codecs = i, k
				rows = append(rows, r)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	m := describeMachine(*bin, dir)
	md := codecsMarkdown(rows, *n, fmt.Sprintf("%d CPUs (%s), %s, load %s", m.CPUs, m.CPUModel, m.MemTotal, m.LoadAvg), *uplinks)
	fmt.Fprint(stdout, md)
	if *jsonOut != "" {
		b, err := json.MarshalIndent(rows, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	if *out != "" {
		if err := appendFile(*out, "\n"+md); err != nil {
			return err
		}
	}
	return nil
}

// codecWorkers is decoders.workers of the runs with codecs.
const codecWorkers = 2

// writeCodecs writes n codecs into dir: the *.js files of base, then
// copies of them in turn, each with a comment and a top-level constant of
// its own (so every one is a distinct version to the daemon and its
// workers: its own SHA-256, compiled and kept on its own).
func writeCodecs(base, dir string, n int) ([]codecFile, error) {
	srcs, err := filepath.Glob(filepath.Join(base, "*.js"))
	if err != nil || len(srcs) == 0 {
		return nil, fmt.Errorf("-codecs %s: no *.js codecs there (%v)", base, err)
	}
	slices.Sort(srcs)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	files := make([]codecFile, 0, n)
	for i := range n {
		src := srcs[i%len(srcs)]
		b, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		model := strings.TrimSuffix(filepath.Base(src), ".js")
		name := model + ".js"
		if i >= len(srcs) {
			name = fmt.Sprintf("%s-v%03d.js", model, i)
			b = fmt.Appendf(nil, "// generated variant %d of %s\nvar generatedVariant = %d;\n%s", i, model, i, b)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return nil, err
		}
		files = append(files, codecFile{model: strings.TrimSuffix(name, ".js"), base: model})
	}
	return files, nil
}

// codecsRow is one daemon run; memory in MiB.
type codecsRow struct {
	Pair, Codecs int
	ReadyS, CPU  float64
	Start        memSnapshot  // settled after start-up
	After        *memSnapshot // settled after every codec has run in every worker (-uplinks)
	Use          codecUse
}

// memSnapshot is the memory of the daemon and its workers, in MiB.
type memSnapshot struct {
	RSS, DaemonRSS float64 // the daemon and its workers; the daemon alone
	// PSS counts each page shared by k of the processes 1/k in each: the
	// binary's pages, which the workers share with the daemon, once.
	PSS, DaemonPSS float64
	Anon           float64 // RssAnon of the daemon and its workers: their own memory, without the binary's pages they share
	Workers        int
	WorkerRSS      []float64 // each worker's, in the order of their PIDs
	WorkerPSS      []float64
}

// snapshot waits for the daemon's RSS to settle and reads the memory of
// it and its workers.
func snapshot(pid int, settle time.Duration) (memSnapshot, error) {
	var m memSnapshot
	if _, err := settledRSS(pid, settle); err != nil {
		return m, err
	}
	kids := childPIDs(pid)
	slices.Sort(kids)
	pids := append([]int{pid}, kids...)
	m.Workers = len(kids)
	for k, p := range pids {
		kib, err := rssKiB(p)
		if err != nil {
			return m, err
		}
		anon, err := statusKiB(p, "RssAnon")
		if err != nil {
			return m, err
		}
		pss, err := pssKiB(p)
		if err != nil {
			return m, err
		}
		m.RSS, m.Anon, m.PSS = m.RSS+mib(kib), m.Anon+mib(anon), m.PSS+mib(pss)
		if k == 0 {
			m.DaemonRSS, m.DaemonPSS = mib(kib), mib(pss)
		} else {
			m.WorkerRSS, m.WorkerPSS = append(m.WorkerRSS, mib(kib)), append(m.WorkerPSS, mib(pss))
		}
	}
	return m, nil
}

func (m memSnapshot) String() string {
	return fmt.Sprintf("RSS %.1f MiB (daemon %.1f, workers %s), PSS %.1f MiB, anonymous %.1f MiB", m.RSS, m.DaemonRSS, mibList(m.WorkerRSS), m.PSS, m.Anon)
}

func mibList(v []float64) string {
	if len(v) == 0 {
		return "none"
	}
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.1f", x)
	}
	return strings.Join(parts, " + ")
}

// measureStart starts a daemon and measures its start and settled
// memory; with plan, it then puts every codec to work and measures again.
func measureStart(ctx context.Context, h *harness, bin, state, broker string, db *testserver.InfluxDB, extra string, i int, settle time.Duration, plan *uplinkPhase, codecs int, log io.Writer) (codecsRow, error) {
	var r codecsRow
	start := time.Now()
	d, err := startDaemonWith(ctx, h, bin, state, broker, db.URL(), db.Bucket(), extra, i)
	if err != nil {
		return r, err
	}
	defer d.p.stop()
	r.ReadyS = time.Since(start).Seconds()
	if r.CPU, err = treeCPUSeconds(d.p.pid()); err != nil {
		return r, err
	}
	if r.Start, err = snapshot(d.p.pid(), settle); err != nil {
		return r, err
	}
	fmt.Fprintf(log, "  ready after %.2f s (%.2f CPU-s); %s\n", r.ReadyS, r.CPU, r.Start)
	if plan == nil {
		return r, nil
	}
	if r.Use, err = plan.run(ctx, h, d, db, broker, state, codecs > 0, codecs, log); err != nil {
		return r, err
	}
	after, err := snapshot(d.p.pid(), settle)
	if err != nil {
		return r, err
	}
	r.After = &after
	fmt.Fprintf(log, "  after %d uplinks (%d rounds; %d in InfluxDB, %d dead letters), %.0f µs CPU per uplink (daemon %.0f): %s\n",
		r.Use.Uplinks, r.Use.Rounds, r.Use.InInflux, r.Use.Dead, r.Use.CPUPerUp, r.Use.DaemonCPU, after)
	return r, nil
}

// statusKiB reads one kB line of /proc/PID/status (VmRSS, RssAnon…).
func statusKiB(pid int, key string) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", key, pid)
}

func codecsMarkdown(rows []codecsRow, n int, machine string, uplinks bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s — %d JavaScript codecs: daemon start-up and memory (issue 22)\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), n)
	fmt.Fprintf(&b, "`sensorgate-bench codecs -n %d` on %s. Interleaved starts of the real binary without scripts and with a scripts folder of %d distinct codecs (the test codecs and generated copies): seconds from exec to /readyz 200 (every codec compiled in a worker first), CPU of the daemon and its workers until then, and once settled the memory of both: summed RSS, summed PSS (pages shared between the processes, the binary's, counted once) and anonymous memory (RssAnon).\n\n", n, machine, n)
	b.WriteString("| pair | codecs | ready s | CPU s | RSS MiB (daemon + workers) | daemon MiB | workers | workers' RSS MiB | PSS MiB | anonymous MiB |\n|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n")
	for _, r := range rows {
		m := r.Start
		fmt.Fprintf(&b, "| %d | %d | %.2f | %.2f | %.1f | %.1f | %d | %s | %.1f | %.1f |\n", r.Pair, r.Codecs, r.ReadyS, r.CPU, m.RSS, m.DaemonRSS, m.Workers, mibList(m.WorkerRSS), m.PSS, m.Anon)
	}
	if !uplinks {
		return b.String()
	}
	b.WriteString("\nThen one device per codec (without scripts: the built-in decoder of the same frames), rounds of one uplink each in random order through Mosquitto into InfluxDB until every codec had decoded in every worker (sensorgate_codec_worker_codecs{state=\"run\"}), then the measured rounds (CPU of the daemon and its workers per uplink), and the memory settled again:\n\n")
	b.WriteString("| pair | codecs | rounds | uplinks | in InfluxDB | dead letters | codecs run per worker | CPU µs/uplink (daemon's) | RSS MiB | workers' RSS MiB | PSS MiB | workers' PSS MiB | anonymous MiB |\n|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---|---:|\n")
	for _, r := range rows {
		if r.After == nil {
			continue
		}
		m := r.After
		var run []string
		for _, w := range r.Use.PerWorker {
			run = append(run, fmt.Sprintf("%d/%d", w.Run, w.Compiled))
		}
		if len(run) == 0 {
			run = []string{"–"}
		}
		fmt.Fprintf(&b, "| %d | %d | %d | %d | %d | %d | %s | %.0f (%.0f) | %.1f | %s | %.1f | %s | %.1f |\n", r.Pair, r.Codecs, r.Use.Rounds, r.Use.Uplinks, r.Use.InInflux, r.Use.Dead,
			strings.Join(run, ", "), r.Use.CPUPerUp, r.Use.DaemonCPU, m.RSS, mibList(m.WorkerRSS), m.PSS, mibList(m.WorkerPSS), m.Anon)
	}
	return b.String()
}
