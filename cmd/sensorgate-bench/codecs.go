package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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
// What a call costs with that many codecs in use is
// BenchmarkSandboxManyCodecs (decoders/sandbox).
//
//	sensorgate-bench codecs [-n 300] [-pairs 3] [-out BENCHMARKS.md]
func codecsCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sensorgate-bench codecs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 300, "codecs in the scripts folder")
	pairs := fs.Int("pairs", 3, "interleaved starts without and with the codecs")
	base := fs.String("codecs", "testdata/codecs", "folder whose *.js files are the codecs copied")
	bin := fs.String("sensorgate", "", "sensorgate binary (default: go build ./cmd/sensorgate)")
	out := fs.String("out", "", "append the table to this Markdown file")
	settle := fs.Duration("settle", 30*time.Second, "longest wait for the RSS to settle")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n <= 0 || *pairs <= 0 {
		return errors.New("-n and -pairs must be positive")
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
	if err := writeCodecs(*base, scripts, *n); err != nil {
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
					extra, k = fmt.Sprintf("decoders: {scripts: %q}\n", scripts), *n
				}
				fmt.Fprintf(stderr, "pair %d/%d: %d codecs\n", i, *pairs, k)
				r, err := measureStart(ctx, h, *bin, filepath.Join(dir, fmt.Sprintf("state-%d-%d", i, k)), mq.URL(), db.URL(), db.Bucket(), extra, i*2+len(extra)%2, *settle)
				if err != nil {
					return fmt.Errorf("pair %d, %d codecs: %w", i, k, err)
				}
				r.Pair, r.Codecs = i, k
				fmt.Fprintf(stderr, "  ready after %.2f s (%.2f CPU-s), RSS %.1f MiB (daemon %.1f, %d workers), anonymous %.1f MiB\n", r.ReadyS, r.CPU, r.RSS, r.DaemonRSS, r.Workers, r.Anon)
				rows = append(rows, r)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	m := describeMachine(*bin, dir)
	md := codecsMarkdown(rows, *n, fmt.Sprintf("%d CPUs (%s), %s, load %s", m.CPUs, m.CPUModel, m.MemTotal, m.LoadAvg))
	fmt.Fprint(stdout, md)
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.WriteString(f, "\n"+md); err != nil {
			return err
		}
	}
	return nil
}

// writeCodecs writes n codecs into dir: the *.js files of base, then
// copies of them in turn, each with a comment and a top-level constant of
// its own (so every one is a distinct version to the daemon and its
// workers: its own SHA-256, compiled and kept on its own).
func writeCodecs(base, dir string, n int) error {
	srcs, err := filepath.Glob(filepath.Join(base, "*.js"))
	if err != nil || len(srcs) == 0 {
		return fmt.Errorf("-codecs %s: no *.js codecs there (%v)", base, err)
	}
	slices.Sort(srcs)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range n {
		src := srcs[i%len(srcs)]
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		model := strings.TrimSuffix(filepath.Base(src), ".js")
		name := model + ".js"
		if i >= len(srcs) {
			name = fmt.Sprintf("%s-v%03d.js", model, i)
			b = fmt.Appendf(nil, "// generated variant %d of %s\nvar generatedVariant = %d;\n%s", i, model, i, b)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// codecsRow is one daemon start; memory in MiB.
type codecsRow struct {
	Pair, Codecs   int
	ReadyS, CPU    float64
	RSS, DaemonRSS float64 // the daemon and its workers; the daemon alone
	Anon           float64 // RssAnon of the daemon and its workers: their own memory, without the binary's pages they share
	Workers        int
}

// measureStart starts a daemon and measures its start and settled RSS.
func measureStart(ctx context.Context, h *harness, bin, state, broker, influxURL, bucket, extra string, i int, settle time.Duration) (codecsRow, error) {
	var r codecsRow
	start := time.Now()
	d, err := startDaemonWith(ctx, h, bin, state, broker, influxURL, bucket, extra, i)
	if err != nil {
		return r, err
	}
	defer d.p.stop()
	r.ReadyS = time.Since(start).Seconds()
	if r.CPU, err = treeCPUSeconds(d.p.pid()); err != nil {
		return r, err
	}
	if _, err := settledRSS(d.p.pid(), settle); err != nil {
		return r, err
	}
	pids := append([]int{d.p.pid()}, childPIDs(d.p.pid())...)
	r.Workers = len(pids) - 1
	for k, pid := range pids {
		kib, err := rssKiB(pid)
		if err != nil {
			return r, err
		}
		anon, err := statusKiB(pid, "RssAnon")
		if err != nil {
			return r, err
		}
		r.RSS, r.Anon = r.RSS+mib(kib), r.Anon+mib(anon)
		if k == 0 {
			r.DaemonRSS = mib(kib)
		}
	}
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

func codecsMarkdown(rows []codecsRow, n int, machine string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s — %d JavaScript codecs: daemon start-up and memory (issue 22)\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), n)
	fmt.Fprintf(&b, "`sensorgate-bench codecs -n %d` on %s. Interleaved starts of the real binary without scripts and with a scripts folder of %d distinct codecs (the test codecs and generated copies): seconds from exec to /readyz 200 (every codec compiled in a worker first), CPU of the daemon and its workers until then, RSS of both once settled, and of that their anonymous memory (RssAnon: without the pages of the binary, which the workers share with the daemon).\n\n", n, machine, n)
	b.WriteString("| pair | codecs | ready s | CPU s | RSS MiB (daemon + workers) | daemon MiB | workers | anonymous MiB |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %d | %d | %.2f | %.2f | %.1f | %.1f | %d | %.1f |\n", r.Pair, r.Codecs, r.ReadyS, r.CPU, r.RSS, r.DaemonRSS, r.Workers, r.Anon)
	}
	return b.String()
}
