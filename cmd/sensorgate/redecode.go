package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/sensorgate/sensorgate/gateway/httpapi"
	"github.com/sensorgate/sensorgate/gateway/influx"
	"github.com/sensorgate/sensorgate/gateway/redecode"
	"github.com/sensorgate/sensorgate/gateway/spool"
)

const redecodeUsage = `Usage:
  sensorgate redecode [-c FILE] --since T [--until T] [--device EUI ...] [--model M | --source S]
                      [--model-override M] [--dry-run] [--json]

Decodes stored uplinks again after a decoder fix: reads the raw payloads of
the uplink measurement back from InfluxDB, runs the current decoders and
normalization, deletes each device's previous decoded and normalized points
in the range and writes the new ones through the spool (same measurement,
tags and time). Raw uplinks, gateway receptions, events and health are not
touched. T is an RFC 3339 time or a duration back from now (720h); --until
defaults to now, and a range ends at the job's start at the latest, so
uplinks arriving meanwhile are the daemon's. --model and --source select the
uplinks stored with that model or source tag; --model-override decodes with
another model than the registry's. --dry-run writes and deletes nothing and
prints per device the points that would change, fields added and removed,
and each field's values before and after.

Re-running a range writes the same points again: an interrupted job (Ctrl-C,
InfluxDB gone) is finished by running the same command again.

The job runs in the config's daemon when it answers on http.listen (also
POST /api/v1/redecode; the status page shows it), else in this process,
which delivers the points to InfluxDB before it exits.
`

// devicesFlag collects repeated --device flags.
type devicesFlag []string

func (f *devicesFlag) String() string { return strings.Join(*f, ",") }

func (f *devicesFlag) Set(s string) error {
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			*f = append(*f, e)
		}
	}
	return nil
}

// redecodePoll is how often the command asks for the job's progress.
const redecodePoll = 500 * time.Millisecond

// redecodePlainEvery is how often a progress line is printed when stdout
// is not a terminal (a log, a pipe).
const redecodePlainEvery = 10 * time.Second

// redecodeCommand implements "sensorgate redecode".
func redecodeCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("redecode", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, redecodeUsage) }
	path := fs.String("c", "/etc/sensorgate/sensorgate.yaml", "config file")
	since := fs.String("since", "", "start of the range (RFC 3339, or a duration back from now: 720h)")
	until := fs.String("until", "", "end of the range (default: now)")
	var devs devicesFlag
	fs.Var(&devs, "device", "only this DevEUI (repeatable, or comma-separated)")
	model := fs.String("model", "", "only uplinks stored with this model tag")
	source := fs.String("source", "", "only uplinks stored with this source tag")
	override := fs.String("model-override", "", "decode with this model instead of the registry's")
	dryRun := fs.Bool("dry-run", false, "write and delete nothing; print what would change")
	asJSON := fs.Bool("json", false, "print the finished job as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sensorgate redecode: unexpected argument %q\n\n%s", fs.Arg(0), redecodeUsage)
		return errUsage
	}
	if *since == "" {
		fmt.Fprintf(stderr, "sensorgate redecode: --since is required\n\n%s", redecodeUsage)
		return errUsage
	}
	body, _ := json.Marshal(httpapi.RedecodeRequest{Since: *since, Until: *until, Devices: devs, Model: *model, Source: *source, ModelOverride: *override, DryRun: *dryRun})
	return withClient(ctx, *path, stderr, func(c *apiClient) error {
		stop := c.deliver(ctx, stderr)
		st, err := c.runRedecode(ctx, body, stdout, stderr)
		stop()
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(st)
		}
		printRedecode(stdout, st)
		if st.State != redecode.StateDone {
			return fmt.Errorf("redecode: job %d %s: %s", st.ID, st.State, st.Error)
		}
		return nil
	})
}

// runRedecode starts the job and follows it to its end, printing
// progress to stderr; an interruption of the command stops the job.
func (c *apiClient) runRedecode(ctx context.Context, body []byte, stdout, stderr io.Writer) (redecode.JobStatus, error) {
	var st redecode.JobStatus
	b, err := c.call(ctx, http.MethodPost, "/api/v1/redecode", "application/json", body)
	if err != nil {
		return st, fmt.Errorf("redecode: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("redecode: %w", err)
	}
	jobPath := "/api/v1/redecode/" + strconv.Itoa(st.ID)
	term := isTerminal(stderr)
	var lastLine time.Time
	tick := time.NewTicker(redecodePoll)
	defer tick.Stop()
	for st.State == redecode.StateRunning {
		select {
		case <-ctx.Done():
			// The job is the daemon's (or this process's): stop it, so an
			// interrupted command leaves nothing running, and say how to
			// finish.
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			_, _ = c.call(stopCtx, http.MethodDelete, jobPath, "", nil)
			cancel()
			if term {
				fmt.Fprintln(stderr)
			}
			return st, fmt.Errorf("redecode: interrupted after %d of %d uplinks; run the same command again to finish (re-decoding writes the same points again)", st.Progress.UplinksDone, st.Progress.Uplinks)
		case <-tick.C:
		}
		b, err := c.call(ctx, http.MethodGet, jobPath, "", nil)
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			return st, fmt.Errorf("redecode: follow job %d: %w", st.ID, err)
		}
		if err := json.Unmarshal(b, &st); err != nil {
			return st, fmt.Errorf("redecode: %w", err)
		}
		switch {
		case term:
			fmt.Fprintf(stderr, "\r\033[K%s", progressLine(st))
		case time.Since(lastLine) >= redecodePlainEvery || st.State != redecode.StateRunning:
			fmt.Fprintln(stderr, progressLine(st))
			lastLine = time.Now()
		}
	}
	if term {
		fmt.Fprintln(stderr)
	}
	return st, nil
}

// progressLine is one line of a job's progress: done of total, rate, ETA.
func progressLine(st redecode.JobStatus) string {
	p := st.Progress
	pct := 0.0
	if p.Uplinks > 0 {
		pct = 100 * float64(p.UplinksDone) / float64(p.Uplinks)
	}
	eta := "–"
	if st.ETA != nil {
		eta = (time.Duration(*st.ETA) * time.Second).String()
	}
	return fmt.Sprintf("redecode job %d: %d/%d uplinks (%.0f%%), %d/%d devices, %.0f uplinks/s, ETA %s", st.ID, p.UplinksDone, p.Uplinks, pct, p.DevicesDone, p.Devices, st.Rate, eta)
}

func printRedecode(w io.Writer, st redecode.JobStatus) {
	p := st.Progress
	verb := "written"
	if st.Request.DryRun {
		verb = "that would be written (dry run: nothing changed)"
	}
	fmt.Fprintf(w, "job %d %s: %d uplinks of %d devices between %s and %s; %d points %s\n", st.ID, st.State, p.UplinksDone, p.Devices,
		st.Request.Since.Format(time.RFC3339), st.Request.Until.Format(time.RFC3339), p.PointsWritten, verb)
	if p.DecodeErrors > 0 || p.Malformed > 0 {
		fmt.Fprintf(w, "%d stored uplinks the current decoders refuse and %d with a malformed payload got no decoded points\n", p.DecodeErrors, p.Malformed)
	}
	rep := st.Report
	if rep == nil {
		return
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "skipped %s: %s\n", s.DevEUI, s.Reason)
	}
	for i, e := range rep.Errors {
		if i == 10 {
			fmt.Fprintf(w, "… %d more (GET /api/v1/redecode/%d lists them)\n", len(rep.Errors)-10, st.ID)
			break
		}
		fmt.Fprintln(w, "not decoded:", e)
	}
	for _, d := range rep.Diffs {
		fmt.Fprintf(w, "%s: %d uplinks; %d points change (%d before, %d after)\n", d.DevEUI, d.Uplinks, d.PointsChanged, d.PointsBefore, d.PointsAfter)
		if len(d.FieldsAdded) > 0 {
			fmt.Fprintf(w, "  fields added:   %s\n", strings.Join(d.FieldsAdded, ", "))
		}
		if len(d.FieldsRemoved) > 0 {
			fmt.Fprintf(w, "  fields removed: %s\n", strings.Join(d.FieldsRemoved, ", "))
		}
		for _, r := range d.Ranges {
			fmt.Fprintf(w, "  %s: before %s, after %s\n", r.Field, rangeText(r.Before), rangeText(r.After))
		}
	}
	if rep.Truncated {
		fmt.Fprintln(w, "(lists cut short; the counts above are whole)")
	}
}

func rangeText(r *redecode.Range) string {
	if r == nil {
		return "none"
	}
	return fmt.Sprintf("%g … %g (%d values)", r.Min, r.Max, r.N)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// influxStore is InfluxDB as a re-decode reads and deletes it.
type influxStore struct{ c *influx.Client }

func (s influxStore) Query(ctx context.Context, q string) ([]redecode.Series, error) {
	series, err := s.c.Query(ctx, q)
	out := make([]redecode.Series, len(series))
	for i, x := range series {
		out[i] = redecode.Series(x)
	}
	return out, err
}

func (s influxStore) Exec(ctx context.Context, stmts string) error { return s.c.Exec(ctx, stmts) }

// redecodeBarrierWait bounds how long a job waits for the spool's
// backlog to reach InfluxDB before it deletes anything.
var redecodeBarrierWait = 2 * time.Minute

// spoolBarrier returns once everything spooled before the call reached
// InfluxDB: points of an older decoder still in the spool must not land
// after a re-decode deleted their window.
func spoolBarrier(sp *spool.Spool) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		target, _ := sp.Positions()
		deadline := time.Now().Add(redecodeBarrierWait)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			_, acked := sp.Positions()
			if acked >= target {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the spool holds %d records that InfluxDB did not take in %s; a re-decode waits for them, so that none lands after it deleted their window: run it again once InfluxDB takes writes (see /readyz)", target-acked, redecodeBarrierWait)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
		}
	}
}
