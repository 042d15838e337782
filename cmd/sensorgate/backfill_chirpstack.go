package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/chirpstackpg"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
)

// backfillWorkers is how many uplinks are in the pipeline at once: the
// backfill waits on the spool's fsyncs, not the CPU, and its group commit
// syncs up to 32 records together instead of one per uplink
// (BenchmarkChirpStackBackfill: 32 workers ~4x the rows/s of 1, 64 no
// better). Order does not matter: every uplink is its own points. A
// variable for the benchmark.
var backfillWorkers = 32

// backfillRowHook, when set (by tests), is called after each row handed
// to the pipeline with the count so far: a test ends PostgreSQL's side of
// the stream at a known row.
var backfillRowHook func(rows int64)

// backfillChirpStack writes the uplinks of ChirpStack's PostgreSQL
// integration (event_up) in the range: each row is rebuilt as the event
// ChirpStack's MQTT integration published, parsed by the chirpstack-v4
// source's parser and handled by the pipeline, so its points are the
// live feed's. Rows that cannot be events, and events the parser or
// pipeline refuses, become dead letters; rows over the size bound are
// skipped and counted.
func backfillChirpStack(ctx context.Context, r backfillRange, dsnArg, app string, stdout, stderr io.Writer) error {
	// The pipeline logs from every worker, and the progress lines too.
	stderr = zerolog.SyncWriter(stderr)
	dsn, err := chirpStackDSN(dsnArg, stderr)
	if err != nil {
		return err
	}
	if app != "" && !uuidForm.MatchString(app) {
		fmt.Fprintf(stderr, "sensorgate backfill: --application %q is not a ChirpStack application id (a UUID)\n", app)
		return errUsage
	}
	cfg, err := config.Load(r.config)
	if err != nil {
		return err
	}
	pc, err := chirpStackSource(cfg, r.source)
	if err != nil {
		return err
	}
	parser, err := mqtt.NewParser(pc, nil)
	if err != nil {
		return err
	}
	pg, err := chirpstackpg.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	defer pg.Close(context.WithoutCancel(ctx))
	if err := pg.Check(ctx); err != nil {
		return fmt.Errorf("backfill: %w", err)
	}

	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: true, PartsExclude: []string{zerolog.TimestampFieldName}}).Level(zerolog.WarnLevel)
	d, err := NewDaemon(cfg, log)
	if err != nil {
		return fmt.Errorf("backfill runs the pipeline in this process, on state_dir %s: %w (stop the daemon, or run backfill with a copy of the config whose state_dir, and spool.dir if set, is another directory)", cfg.StateDir, err)
	}
	defer d.Close()
	dl := &countedLetters{next: d.pipeline.DeadLetters, reasons: map[gateway.Reason]int{}}
	d.pipeline.DeadLetters = dl
	written0 := d.Counters.Get("uplinks_written")
	stopDelivery := offlineDelivery(ctx, d, stderr) // deadletters.go
	fmt.Fprintf(stderr, "sensorgate backfill: reading event_up of %s from %s to %s into source %q\n",
		pg.Target(), r.since.UTC().Format(time.RFC3339Nano), r.until.UTC().Format(time.RFC3339Nano), pc.Name)

	b := &csBackfill{parser: parser, source: pc.Name, dl: dl, log: stderr, start: time.Now(), lastProgress: time.Now()}
	pos, streamErr := b.run(ctx, pg, chirpstackpg.Filter{Since: r.since, Until: r.until, ApplicationID: app}, d.pipeline.Handle)

	stopDelivery()
	fmt.Fprintf(stdout, "backfill: %d rows of event_up: %d uplinks written, %s, %d skipped (over %d bytes)\n",
		pos.Rows, d.Counters.Get("uplinks_written")-written0, dl.summary(), b.tooLarge, chirpstackpg.DefaultMaxRowBytes)
	return streamErr
}

// csBackfill turns rows into uplinks for the pipeline.
type csBackfill struct {
	parser   *mqtt.Parser
	source   string
	dl       gateway.DeadLetters
	tooLarge int64

	log          io.Writer
	rows         int64 // handed to the pipeline
	start        time.Time
	lastProgress time.Time
}

// run streams the rows and hands each uplink to one of backfillWorkers
// handlers; it returns once every handed uplink was handled, with the
// first error (the stream's, or a handler's: then the stream stops).
func (b *csBackfill) run(ctx context.Context, pg *chirpstackpg.Reader, f chirpstackpg.Filter, handle gateway.Handler) (chirpstackpg.Position, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ups := make(chan gateway.Uplink, backfillWorkers)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failed   error     // the first uplink the pipeline did not take
		failedAt time.Time // the earliest time of those not taken
	)
	for range backfillWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for up := range ups {
				if err := handle(ctx, up); err != nil {
					mu.Lock()
					if failed == nil {
						failed = fmt.Errorf("uplink %s of %s was not taken: %w", up.ID, up.DevEUI, err)
						cancel(failed)
					}
					if failedAt.IsZero() || up.Time.Before(failedAt) {
						failedAt = up.Time
					}
					mu.Unlock()
				}
			}
		}()
	}
	pos, err := pg.Stream(ctx, f, func(row *chirpstackpg.Row) error {
		up, ok, err := b.uplink(ctx, row)
		if err != nil || !ok {
			return err
		}
		select {
		case ups <- up:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		b.progress(row)
		if backfillRowHook != nil {
			backfillRowHook(b.rows)
		}
		return nil
	})
	close(ups)
	wg.Wait()
	if failed != nil {
		return pos, fmt.Errorf("backfill: %w; run the backfill again with --since %s (what was written before overwrites itself)", failed, failedAt.UTC().Format(time.RFC3339Nano))
	}
	if err != nil {
		return pos, fmt.Errorf("backfill: %w", err)
	}
	return pos, nil
}

// uplink rebuilds a row's event and parses it. ok is false when the row
// is not an uplink for the pipeline: a dead letter was stored for it, or
// it was skipped as too large.
func (b *csBackfill) uplink(ctx context.Context, row *chirpstackpg.Row) (gateway.Uplink, bool, error) {
	topic := row.Topic()
	// A new buffer per row: the uplink and a dead letter keep it.
	ev, err := row.Event(nil)
	if row.TooLarge {
		b.tooLarge++
		fmt.Fprintf(b.log, "sensorgate backfill: skipped: %v\n", err)
		return gateway.Uplink{}, false, nil
	}
	if err != nil {
		letter := gateway.DeadLetter{Time: time.Now().UTC(), Source: b.source, Topic: topic, Reason: gateway.ReasonMalformed, Detail: err.Error(), Raw: ev}
		if row.DevEUI != nil {
			if eui, perr := devices.ParseEUI(*row.DevEUI); perr == nil {
				letter.DevEUI = eui.String()
			}
		}
		return gateway.Uplink{}, false, b.deadLetter(ctx, letter)
	}
	up, err := b.parser.ParseEvent("up", topic, ev)
	if err != nil {
		letter := gateway.DeadLetter{Time: time.Now().UTC(), Source: b.source, Topic: topic, Reason: gateway.ReasonMalformed, Detail: err.Error(), Raw: ev}
		var pe *mqtt.ParseError
		if errors.As(err, &pe) {
			letter.Reason = pe.Reason
			if !pe.DevEUI.IsZero() {
				letter.DevEUI = pe.DevEUI.String()
			}
		}
		return gateway.Uplink{}, false, b.deadLetter(ctx, letter)
	}
	return up, true, nil
}

func (b *csBackfill) deadLetter(ctx context.Context, l gateway.DeadLetter) error {
	if err := b.dl.Put(ctx, l); err != nil {
		return fmt.Errorf("cannot store a dead letter for event_up row (%s): %w", l.Detail, err)
	}
	return nil
}

// progress prints a line every 10 s: rows read, rate, the time reached.
func (b *csBackfill) progress(row *chirpstackpg.Row) {
	b.rows++
	now := time.Now()
	if now.Sub(b.lastProgress) < 10*time.Second || row.Time == nil {
		return
	}
	b.lastProgress = now
	fmt.Fprintf(b.log, "sensorgate backfill: %d rows, at %s, %.0f rows/s\n", b.rows, row.Time.UTC().Format(time.RFC3339), float64(b.rows)/now.Sub(b.start).Seconds())
}

// countedLetters counts the dead letters it passes on, by reason.
type countedLetters struct {
	next    gateway.DeadLetters
	mu      sync.Mutex
	reasons map[gateway.Reason]int
}

func (c *countedLetters) Put(ctx context.Context, l gateway.DeadLetter) error {
	if err := c.next.Put(ctx, l); err != nil {
		return err
	}
	c.mu.Lock()
	c.reasons[l.Reason]++
	c.mu.Unlock()
	return nil
}

// summary is "N dead letters (reason n, …)".
func (c *countedLetters) summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	var parts []string
	for r, k := range c.reasons {
		n += k
		parts = append(parts, fmt.Sprintf("%s %d", r, k))
	}
	sort.Strings(parts)
	if n == 0 {
		return "0 dead letters"
	}
	return fmt.Sprintf("%d dead letters (%s)", n, strings.Join(parts, ", "))
}

// chirpStackDSN reads --chirpstack-pg: a DSN, or env:NAME. A password
// written on the command line is visible to every user of the machine
// (ps), so it gets a warning.
func chirpStackDSN(arg string, stderr io.Writer) (string, error) {
	if name, ok := strings.CutPrefix(arg, "env:"); ok {
		dsn := os.Getenv(name)
		if dsn == "" {
			fmt.Fprintf(stderr, "sensorgate backfill: --chirpstack-pg env:%s: the environment variable %s is empty or unset\n", name, name)
			return "", errUsage
		}
		return dsn, nil
	}
	if strings.Contains(chirpstackpg.RedactDSN(arg), "xxxxx") && !strings.Contains(arg, "xxxxx") {
		fmt.Fprintln(stderr, "sensorgate backfill: warning: the DSN's password is visible in the process list; use --chirpstack-pg env:NAME, PGPASSWORD or ~/.pgpass")
	}
	return arg, nil
}

// chirpStackSource is the parser config of the source the backfilled
// uplinks belong to: the named one, or the config's only chirpstack-v4
// source (MQTT, or ChirpStack's HTTP integration).
func chirpStackSource(cfg *config.Config, name string) (mqtt.Config, error) {
	var found []mqtt.Config
	for _, sc := range cfg.Sources {
		var pc mqtt.Config
		switch {
		case sc.MQTT != nil:
			pc = *sc.MQTT
		case sc.HTTP != nil:
			pc = sc.HTTP.ParserConfig()
		default:
			continue
		}
		if name != "" && pc.Name == name {
			if pc.Format != mqtt.FormatChirpStackV4 {
				return mqtt.Config{}, fmt.Errorf("backfill: source %q has format %s: ChirpStack's PostgreSQL integration holds chirpstack-v4 uplinks", name, pc.Format)
			}
			return pc, nil
		}
		if pc.Format == mqtt.FormatChirpStackV4 {
			found = append(found, pc)
		}
	}
	switch {
	case name != "":
		return mqtt.Config{}, fmt.Errorf("backfill: the config has no source %q", name)
	case len(found) == 1:
		return found[0], nil
	case len(found) == 0:
		return mqtt.Config{}, fmt.Errorf("backfill: the config has no chirpstack-v4 source: the backfilled points are those of the source that receives ChirpStack's feed live, so add it (or name one with --source)")
	}
	names := make([]string, len(found))
	for i, pc := range found {
		names[i] = pc.Name
	}
	return mqtt.Config{}, fmt.Errorf("backfill: the config has several chirpstack-v4 sources (%s): name the one ChirpStack's integration feeds with --source", strings.Join(names, ", "))
}

// uuidForm is a UUID as ChirpStack writes application ids.
var uuidForm = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
