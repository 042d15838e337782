package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// sensorgateBin builds the daemon once for the tests that run a mode.
func sensorgateBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sensorgate-bench-test-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "sensorgate")
		if out, err := exec.Command("go", "build", "-o", binPath, "github.com/sensorgate/sensorgate/cmd/sensorgate").CombinedOutput(); err != nil {
			binErr = err
			t.Logf("%s", out)
		}
	})
	if binErr != nil {
		t.Fatalf("build sensorgate: %v", binErr)
	}
	return binPath
}

// TestSoakMode runs the soak briefly (so that the mode does not rot): a
// paced stream with a JavaScript quarter, its JSON series and its plot.
// Nothing about time is asserted; only that the series is there and
// every uplink arrived.
func TestSoakMode(t *testing.T) {
	dir := t.TempDir()
	jsonPath, pngPath := filepath.Join(dir, "soak.json"), filepath.Join(dir, "soak.png")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"soak", "-sensorgate", sensorgateBin(t), "-workdir", filepath.Join(dir, "work"),
		// A sample a second: about six while publishing, so the summary's
		// three after the warm-up are there even when the last tick and
		// the end of publishing race (2 s ticks gave two samples or three).
		"-duration", "6s", "-rate", "200", "-devices", "100", "-sample", "1s", "-warmup", "0s",
		"-codec", "../../testdata/codecs/bench/cayenne-lpp.js", "-json", jsonPath, "-plot", pngPath}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("soak: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var res SoakResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Published != 1200 || res.Delivered != 1200 || res.Lost != 0 || res.DeadLetters != 0 {
		t.Errorf("published %d, delivered %d, lost %d, dead letters %d; want 1200 in InfluxDB, none lost",
			res.Published, res.Delivered, res.Lost, res.DeadLetters)
	}
	if len(res.Samples) < 3 {
		t.Fatalf("%d samples, want at least 3 in 6 s at one a second", len(res.Samples))
	}
	var last int64
	for i, s := range res.Samples {
		if s.RSSMB <= 0 || s.WorkersMB <= 0 || s.Goroutines <= 0 || s.Published < last || s.Lost != 0 {
			t.Errorf("sample %d: %+v; want RSS, codec workers' RSS and goroutines, uplinks published so far, none lost", i, s)
		}
		last = s.Published
	}
	if res.Summary == nil || !strings.Contains(stdout.String(), "**lost 0**") {
		t.Errorf("summary %+v; report:\n%s", res.Summary, stdout.String())
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("plot: %v", err)
	}
	if b := img.Bounds(); b.Dx() != plotW || b.Dy() < 3*panelH {
		t.Errorf("plot is %v, want %d wide with three panels", b, plotW)
	}
}

// TestOutageMode runs the outage benchmark at a small scale: InfluxDB
// stopped and started again, the spool's bytes, a drain, every uplink in
// InfluxDB exactly once.
func TestOutageMode(t *testing.T) {
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "outage.json")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"outage", "-sensorgate", sensorgateBin(t), "-workdir", filepath.Join(dir, "work"),
		"-n", "3000", "-live-rate", "50", "-json", jsonPath}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("outage: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var res outageResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Published != res.Warm+3000+res.Live || res.Delivered != res.Published || res.Lost != 0 || res.DeadLetters != 0 {
		t.Errorf("published %d (warm-up %d, live %d), delivered %d, lost %d, dead letters %d; want every uplink in InfluxDB once",
			res.Published, res.Warm, res.Live, res.Delivered, res.Lost, res.DeadLetters)
	}
	// Each uplink's record is its line protocol (five points of about
	// 200 bytes) and a record header: far from nothing, and from the
	// whole segment preallocated ahead (1 MiB over 3000 is 350 bytes).
	if res.BytesPer < 500 || res.BytesPer > 5000 || res.DrainRate <= 0 {
		t.Errorf("spool %.0f bytes per uplink, drain %.0f uplinks/s; want a plausible size and a drain", res.BytesPer, res.DrainRate)
	}
	if !strings.Contains(stdout.String(), "bytes per uplink") {
		t.Errorf("report:\n%s", stdout.String())
	}
}

// TestSummarize: growth compares the medians of the first and last
// windows after the warm-up; too few samples give none.
func TestSummarize(t *testing.T) {
	flat := func(n int, rss, cpu float64, grow float64) []soakSample {
		var out []soakSample
		for i := range n {
			out = append(out, soakSample{T: float64(i * 10), RSSMB: rss * (1 + grow*float64(i)/float64(n-1)), Goroutines: 100, CPUPerUplinkUs: cpu,
				UplinksPerSync: float64(4 + i%2), DaemonSysUs: 10})
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		samples []soakSample
		warmup  float64
		rss     float64 // want growth
		none    bool
	}{
		{"flat", flat(360, 50, 30, 0), 600, 0, false},
		// Linear growth of 10 % over the hour: the medians of the windows
		// (minutes 10–20 and 50–60) are 40 minutes apart: +6.5 %.
		{"growing", flat(361, 50, 30, 0.1), 600, 0, false},
		{"warm-up only", flat(50, 50, 30, 0), 600, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := summarize(tc.samples, tc.warmup)
			if tc.none {
				if s != nil {
					t.Fatalf("summary %+v, want none", s)
				}
				return
			}
			if s == nil {
				t.Fatal("no summary")
			}
			if s.WindowS != 600 || s.CPURatio != 1 || s.GoroutinesGrowth != 0 {
				t.Errorf("%+v", s)
			}
			if s.FsyncFirst != 4.5 || s.FsyncLast != 4.5 || s.SysFirstUs != 10 || s.SysLastUs != 10 || s.UserFirstUs != 0 {
				t.Errorf("batching figures: %+v", s)
			}
			want := s.RSSLastMB/s.RSSFirstMB - 1
			if math.Abs(s.RSSGrowth-want) > 1e-9 || (tc.name == "flat" && s.RSSGrowth != 0) || (tc.name == "growing" && (s.RSSGrowth < 0.06 || s.RSSGrowth > 0.07)) {
				t.Errorf("RSS growth %.4f (first %.2f, last %.2f)", s.RSSGrowth, s.RSSFirstMB, s.RSSLastMB)
			}
		})
	}
}

// TestParseMetrics reads unlabelled samples and skips the rest.
func TestParseMetrics(t *testing.T) {
	in := "# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 171\nsensorgate_spool_oldest_age_seconds 0.25\n" +
		"sensorgate_pipeline_events_total{event=\"uplinks\"} 5\nprocess_start_time_seconds 1.7e+09\nbroken\n"
	m, err := parseMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if m["go_goroutines"] != 171 || m["sensorgate_spool_oldest_age_seconds"] != 0.25 || m["process_start_time_seconds"] != 1.7e9 || len(m) != 3 {
		t.Errorf("parsed %v", m)
	}
	keep := `sensorgate_influx_write_requests_total{class="2xx"}`
	in = "sensorgate_influx_write_requests_total{class=\"4xx\"} 3\n" + keep + " 12 1700000000000\n" + keep[:20] + "{ 9\n"
	if m, err = parseMetrics(strings.NewReader(in), keep); err != nil {
		t.Fatal(err)
	}
	if m[keep] != 12 || len(m) != 1 {
		t.Errorf("kept %v, want only %s", m, keep)
	}
}

// TestParseSchedStat reads the three counters and refuses a short line.
func TestParseSchedStat(t *testing.T) {
	st, err := parseSchedStat("364400 51906 17\n")
	if err != nil || st != (schedStat{RunNs: 364400, WaitNs: 51906, Slices: 17}) {
		t.Errorf("got %+v, %v", st, err)
	}
	for _, bad := range []string{"", "1 2", "1 x 3"} {
		if _, err := parseSchedStat(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestSizingTable: disk is rate × duration × bytes per uplink; the drain
// is the backlog over what delivery carries less the live stream.
func TestSizingTable(t *testing.T) {
	tbl := sizingTable(1300, 10100)
	for _, want := range []string{
		"| 17 | 1 h | 61 k | 76 MiB | 6 s |",                // 61,200 × 1300 B; 61,200 ÷ 10,083/s
		"| 1000 | 24 h | 86.4 M | 104.6 GiB | 2 h 38 min |", // 86.4 M ÷ 9,100/s = 9,495 s
	} {
		if !strings.Contains(tbl, want) {
			t.Errorf("no row %q in\n%s", want, tbl)
		}
	}
	if tbl := sizingTable(1300, 500); !strings.Contains(tbl, "| 1000 | 1 h | 3.6 M | 4.4 GiB | never") {
		t.Errorf("a stream faster than delivery never drains:\n%s", tbl)
	}
}

// FuzzParseMetrics: any text parses without panicking, and every name
// it returns is a line's first field.
func FuzzParseMetrics(f *testing.F) {
	f.Add("go_goroutines 171\n")
	f.Add("# HELP x\nname \n \nx{a=\"b\"} 1\ny 1 1700000000000\nz NaN\n")
	f.Fuzz(func(t *testing.T, in string) {
		m, err := parseMetrics(strings.NewReader(in))
		if err != nil {
			return // a line longer than the scanner takes
		}
		for name := range m {
			if strings.ContainsAny(name, " \t\n{") || name == "" {
				t.Fatalf("name %q", name)
			}
		}
	})
}

// TestCodecsMode runs the many-codecs benchmark small: a daemon without
// scripts and one with 8 codecs, each started, then given uplinks until
// every codec has decoded in both workers, and measured again. Only
// counts are asserted, no time or size.
func TestCodecsMode(t *testing.T) {
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "codecs.json")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"codecs", "-sensorgate", sensorgateBin(t), "-codecs", "../../testdata/codecs",
		"-n", "8", "-pairs", "1", "-warm", "1", "-measure", "1", "-settle", "1s", "-json", jsonPath}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("codecs: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rows []codecsRow
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Codecs != 0 || rows[1].Codecs != 8 {
		t.Fatalf("rows %+v; want one run without codecs, one with 8", rows)
	}
	for _, r := range rows {
		if r.After == nil {
			t.Fatalf("%d codecs: no memory after the uplinks", r.Codecs)
		}
		// Every uplink in InfluxDB: the codecs decode the frames they
		// are given, as the built-in decoders do.
		if r.Use.Uplinks < 2*8 || r.Use.InInflux != r.Use.Uplinks || r.Use.Dead != 0 {
			t.Errorf("%d codecs: %d uplinks sent, %d in InfluxDB, %d dead letters; want at least two rounds of 8, all in InfluxDB", r.Codecs, r.Use.Uplinks, r.Use.InInflux, r.Use.Dead)
		}
		// (CPU per uplink is not asserted: 8 uplinks take less than the
		// 10 ms tick /proc counts CPU in.)
		if r.Start.PSS <= 0 || r.After.PSS <= 0 || r.Start.RSS < r.Start.PSS || r.After.RSS < r.After.PSS {
			t.Errorf("%d codecs: PSS %v then %v, RSS %v then %v; want both measured, PSS at most RSS", r.Codecs, r.Start.PSS, r.After.PSS, r.Start.RSS, r.After.RSS)
		}
	}
	if w := rows[0].Start.Workers; w != 0 {
		t.Errorf("without scripts: %d codec workers", w)
	}
	with := rows[1]
	if with.Start.Workers != 2 || with.After.Workers != 2 || len(with.Use.PerWorker) != 2 {
		t.Fatalf("with codecs: %d workers at start, %d after, per worker %+v; want 2", with.Start.Workers, with.After.Workers, with.Use.PerWorker)
	}
	for i, w := range with.Use.PerWorker {
		if w.Run != 8 || w.Compiled != 8 {
			t.Errorf("worker %d: %d codecs run of %d compiled, want all 8", i, w.Run, w.Compiled)
		}
	}
	if !strings.Contains(stdout.String(), "| 1 | 8 |") {
		t.Errorf("report without the run of 8 codecs:\n%s", stdout.String())
	}
}

// TestBursts: a short run does its bursts and charges them CPU.
func TestBursts(t *testing.T) {
	r, err := runBursts(context.Background(), time.Millisecond, 400, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Bursts < 1 || r.WallMedian <= 0 || r.CPUPerBurst < 0 {
		t.Errorf("%+v", r)
	}
}
