package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/influx"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// The ingest mode measures what InfluxDB spends on sensorgate's points
// alone, without the daemon, the broker or the spool sharing the cores:
// the end-to-end benchmark's ChirpStack fleet goes through the daemon's
// own pipeline into line protocol in memory, and that is posted to a
// fresh InfluxDB 1.8 in requests of a given size, one after the other.
// Variants rewrite the line protocol the way a schema change would, so a
// design choice (ARCHITECTURE §11) is measured before it is built:
//
//	lean   the model and source tags only on uplink points
//	merge  one point per measurement and uplink: Cayenne channels' points
//	       merged, their channel tag dropped (where no field repeats)
//	ms     timestamps in milliseconds (precision=ms)
//
// Variants combine with "+" (lean+merge+ms). Each combination of variant
// and request size is a column of an interleaved round, so a machine's
// drift hits all alike; InfluxDB's CPU is its utime+stime from the first
// request to the last response.

type ingestCase struct {
	variant string
	size    int // request bytes
}

func (c ingestCase) String() string {
	return fmt.Sprintf("%s, %s requests", c.variant, humanBytes(float64(c.size)))
}

type ingestRun struct {
	cpu      float64 // InfluxDB CPU-s per 100k uplinks
	requests int
	disk     float64 // bytes per uplink after a full compaction, 0 when not measured
	err      error
}

func ingestCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sensorgate-bench ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 100000, "uplinks")
	nDevices := fs.Int("devices", 500, "simulated devices")
	rounds := fs.Int("rounds", 3, "interleaved rounds")
	variants := fs.String("variants", "schema", "comma-separated line-protocol variants: schema (as written), or lean, merge, ms joined with +")
	sizes := fs.String("sizes", "512K", "comma-separated request sizes (K or M suffix)")
	disk := fs.Bool("disk", false, "also compact each database fully and report its disk bytes per uplink")
	out := fs.String("out", "", "append the results to this Markdown file")
	workDir := fs.String("workdir", "", "where the servers keep their files (default: a new directory in $TMPDIR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var cases []ingestCase
	for _, v := range strings.Split(*variants, ",") {
		for _, s := range strings.Split(*sizes, ",") {
			size, err := parseSize(s)
			if err != nil {
				return err
			}
			if err := checkVariant(v); err != nil {
				return err
			}
			cases = append(cases, ingestCase{variant: v, size: size})
		}
	}
	uplinks, err := fleetLineProtocol(*n, *nDevices)
	if err != nil {
		return err
	}
	bodies := map[string][][]byte{} // variant → uplinks' lines
	for _, c := range cases {
		if _, ok := bodies[c.variant]; !ok {
			bodies[c.variant] = rewriteVariant(uplinks, c.variant)
		}
	}
	dir := *workDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "sensorgate-ingest-"); err != nil {
			return fmt.Errorf("bench: work dir: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	results := make([][]ingestRun, len(cases))
	for r := 0; r < *rounds; r++ {
		for i, c := range cases {
			run := ingestOnce(ctx, filepath.Join(dir, fmt.Sprintf("r%d-%d", r, i)), bodies[c.variant], strings.Contains(c.variant, "ms"), c.size, *disk)
			if run.err != nil {
				return fmt.Errorf("bench: ingest %s: %w", c, run.err)
			}
			run.cpu = run.cpu / float64(*n) * 1e5
			if run.disk > 0 {
				run.disk /= float64(*n)
			}
			results[i] = append(results[i], run)
			fmt.Fprintf(stderr, "round %d: %s: InfluxDB %.2f CPU-s/100k uplinks in %d requests\n", r+1, c, run.cpu, run.requests)
		}
	}
	m := describeMachine("", dir)
	md := ingestMarkdown(cases, results, bodies, *n, *nDevices, m.line()+"; InfluxDB "+m.InfluxDB)
	fmt.Fprint(stdout, md)
	if *out != "" {
		if err := appendFile(*out, "\n"+md); err != nil {
			return err
		}
	}
	return nil
}

func parseSize(s string) (int, error) {
	mult := 1
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("-sizes: %q is not a size such as 512K or 2M", s)
	}
	return v * mult, nil
}

func checkVariant(v string) error {
	if v == "schema" {
		return nil
	}
	for _, p := range strings.Split(v, "+") {
		if p != "lean" && p != "merge" && p != "ms" {
			return fmt.Errorf("-variants: %q: use schema, or lean, merge and ms joined with +", v)
		}
	}
	return nil
}

// fleetLineProtocol runs n uplinks of the end-to-end benchmark's fleet
// (ChirpStack v4, every device a Cayenne LPP one with district and site
// tags, gateway points on) through the daemon's pipeline and returns each
// uplink's line protocol.
func fleetLineProtocol(n, nDevices int) ([][]byte, error) {
	fleet, err := simulate.NewFleet(simulate.Options{Format: simulate.ChirpStackV4, Devices: nDevices, Seed: 99})
	if err != nil {
		return nil, err
	}
	reg, err := devices.NewRegistry(fleet.Devices())
	if err != nil {
		return nil, err
	}
	parser, err := mqtt.NewParser(mqtt.Config{Name: "chirpstack", Format: simulate.ChirpStackV4}, nil)
	if err != nil {
		return nil, err
	}
	sink := &collectSink{}
	p := &gateway.Pipeline{
		Devices: reg, Decoders: decoders.NewRegistry(), Sink: sink,
		Sources:     map[string]gateway.SourcePolicy{"chirpstack": {GatewayPoints: true}},
		AllowedTags: []string{"district", "site"}, Log: zerolog.Nop(), Counters: &gateway.Counters{},
	}
	out := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		m := fleet.Next()
		up, err := parser.Parse(m.Topic, m.Payload)
		if err != nil {
			return nil, fmt.Errorf("bench: parse the fleet's uplink: %w", err)
		}
		sink.buf = nil
		if err := p.Handle(context.Background(), up); err != nil {
			return nil, fmt.Errorf("bench: pipeline: %w", err)
		}
		out = append(out, sink.buf)
	}
	return out, nil
}

// collectSink keeps the line protocol of the points handed to it.
type collectSink struct{ buf []byte }

func (s *collectSink) Write(_ context.Context, pts []gateway.Point) error {
	for _, p := range pts {
		var err error
		if s.buf, err = influx.AppendPoint(s.buf, p); err != nil {
			return err
		}
	}
	return nil
}

// lpLine is one line of line protocol cut into its parts; tags keep their
// escaping.
type lpLine struct {
	measurement string
	tags        []string // key=value, sorted as written
	fields      []string // key=value
	ts          string
}

// splitUnescaped cuts s at each sep that is neither escaped nor inside
// double quotes.
func splitUnescaped(s string, sep byte) []string {
	var parts []string
	quoted, from := false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			parts = append(parts, s[from:i])
			from = i + 1
		}
	}
	return append(parts, s[from:])
}

func parseLine(line string) (lpLine, error) {
	sec := splitUnescaped(line, ' ')
	if len(sec) != 3 {
		return lpLine{}, fmt.Errorf("bench: line protocol %q: %d sections", line, len(sec))
	}
	key := splitUnescaped(sec[0], ',')
	return lpLine{measurement: key[0], tags: key[1:], fields: splitUnescaped(sec[1], ','), ts: sec[2]}, nil
}

func (l lpLine) append(b []byte) []byte {
	b = append(b, l.measurement...)
	for _, t := range l.tags {
		b = append(append(b, ','), t...)
	}
	b = append(b, ' ')
	for i, f := range l.fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, f...)
	}
	return append(append(append(b, ' '), l.ts...), '\n')
}

func tagKey(t string) string { k, _, _ := strings.Cut(t, "="); return k }

// rewriteVariant returns the uplinks' line protocol as variant would
// write it.
func rewriteVariant(uplinks [][]byte, variant string) [][]byte {
	if variant == "schema" {
		return uplinks
	}
	has := func(p string) bool { return slices.Contains(strings.Split(variant, "+"), p) }
	out := make([][]byte, len(uplinks))
	for i, up := range uplinks {
		var lines []lpLine
		for _, s := range strings.Split(strings.TrimSuffix(string(up), "\n"), "\n") {
			l, err := parseLine(s)
			if err != nil {
				panic(err) // the pipeline's own output
			}
			if has("lean") && l.measurement != "uplink" {
				l.tags = slices.DeleteFunc(l.tags, func(t string) bool { k := tagKey(t); return k == "model" || k == "source" })
			}
			if has("ms") && len(l.ts) > 6 {
				l.ts = l.ts[:len(l.ts)-6]
			}
			lines = append(lines, l)
		}
		if has("merge") {
			lines = mergeChannels(lines)
		}
		var b []byte
		for _, l := range lines {
			b = l.append(b)
		}
		out[i] = b
	}
	return out
}

// mergeChannels folds the points of one measurement that differ only in
// their channel tag into one point without it, unless a field name
// repeats (two probes of one quantity in the frame).
func mergeChannels(lines []lpLine) []lpLine {
	type group struct {
		idx    []int
		fields map[string]bool
		clash  bool
	}
	groups := map[string]*group{}
	var order []string
	for i, l := range lines {
		if !slices.ContainsFunc(l.tags, func(t string) bool { return tagKey(t) == "channel" }) {
			continue
		}
		rest := slices.DeleteFunc(slices.Clone(l.tags), func(t string) bool { return tagKey(t) == "channel" })
		k := l.measurement + "," + strings.Join(rest, ",") + " " + l.ts
		g := groups[k]
		if g == nil {
			g = &group{fields: map[string]bool{}}
			groups[k] = g
			order = append(order, k)
		}
		g.idx = append(g.idx, i)
		for _, f := range l.fields {
			fk := tagKey(f)
			g.clash = g.clash || g.fields[fk]
			g.fields[fk] = true
		}
	}
	drop := map[int]bool{}
	for _, k := range order {
		g := groups[k]
		if g.clash || len(g.idx) < 2 {
			continue
		}
		first := &lines[g.idx[0]]
		first.tags = slices.DeleteFunc(first.tags, func(t string) bool { return tagKey(t) == "channel" })
		for _, j := range g.idx[1:] {
			first.fields = append(first.fields, lines[j].fields...)
			drop[j] = true
		}
		sort.Strings(first.fields)
	}
	out := lines[:0]
	for i, l := range lines {
		if !drop[i] {
			out = append(out, l)
		}
	}
	return out
}

// ingestOnce posts the uplinks to a fresh InfluxDB in requests of about
// size bytes (whole uplinks) and measures its CPU.
func ingestOnce(ctx context.Context, dir string, uplinks [][]byte, ms bool, size int, disk bool) (run ingestRun) {
	h, err := newHarness(dir)
	if err != nil {
		return ingestRun{err: err}
	}
	defer func() {
		if err := h.close(false); err != nil && run.err == nil {
			run.err = err
		}
	}()
	run.err = h.do(func() error {
		db := testserver.StartInfluxDB(h)
		precision := "ns"
		if ms {
			precision = "ms"
		}
		url := db.URL() + "/write?db=" + db.DB + "&precision=" + precision
		before, err := cpuSeconds(db.PID())
		if err != nil {
			return err
		}
		var body bytes.Buffer
		post := func() error {
			if body.Len() == 0 {
				return nil
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body.Bytes()))
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				return fmt.Errorf("InfluxDB answered %s: %s", resp.Status, msg)
			}
			run.requests++
			body.Reset()
			return nil
		}
		for _, up := range uplinks {
			if body.Len()+len(up) > size {
				if err := post(); err != nil {
					return err
				}
			}
			body.Write(up)
		}
		if err := post(); err != nil {
			return err
		}
		after, err := cpuSeconds(db.PID())
		if err != nil {
			return err
		}
		run.cpu = after - before
		if disk {
			b, err := db.CompactFully(5 * time.Minute)
			if err != nil {
				return err
			}
			run.disk = float64(b)
		}
		return nil
	})
	return run
}

func ingestMarkdown(cases []ingestCase, results [][]ingestRun, bodies map[string][][]byte, n, nDevices int, machine string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s — InfluxDB ingest alone, %d uplinks, %d rounds\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), n, len(results[0]))
	fmt.Fprintf(&b, "`sensorgate-bench ingest`: the end-to-end benchmark's ChirpStack fleet (%d devices, Cayenne LPP, gateway points) through the daemon's pipeline into line protocol, posted to a fresh InfluxDB 1.8.10 per run in requests of the given size, one at a time; InfluxDB's CPU from the first request to the last response. Variants: lean (model and source tags only on `uplink`), merge (one point per measurement and uplink, channel tag dropped where no field repeats), ms (millisecond timestamps).\n\n", nDevices)
	fmt.Fprintf(&b, "- Machine: %s\n\n", machine)
	b.WriteString("| variant | request size | InfluxDB CPU-s / 100k uplinks (runs) | median | ratio | points / uplink | LP B / uplink | requests | disk B / uplink |\n|---|---:|---|---:|---:|---:|---:|---:|---:|\n")
	var base float64
	for i, c := range cases {
		var cpus, disks []float64
		var runs []string
		for _, r := range results[i] {
			cpus = append(cpus, r.cpu)
			runs = append(runs, fmt.Sprintf("%.2f", r.cpu))
			if r.disk > 0 {
				disks = append(disks, r.disk)
			}
		}
		m := medianOf(cpus)
		if i == 0 {
			base = m
		}
		points, bytesN := 0, 0
		for _, up := range bodies[c.variant] {
			points += bytes.Count(up, []byte{'\n'})
			bytesN += len(up)
		}
		d := "–"
		if len(disks) > 0 {
			d = fmt.Sprintf("%.1f", medianOf(disks))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.2f | %.2f | %.2f | %.0f | %d | %s |\n", c.variant, humanBytes(float64(c.size)), strings.Join(runs, " · "), m, m/base,
			float64(points)/float64(n), float64(bytesN)/float64(n), results[i][0].requests, d)
	}
	return b.String()
}

func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
