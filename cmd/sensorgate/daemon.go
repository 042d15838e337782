package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/decoders/sandbox"
	"github.com/sensorgate/sensorgate/decoders/script"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/deadletter"
	"github.com/sensorgate/sensorgate/gateway/influx"
	"github.com/sensorgate/sensorgate/gateway/lorawan"
	"github.com/sensorgate/sensorgate/gateway/metrics"
	"github.com/sensorgate/sensorgate/gateway/spool"
	"github.com/sensorgate/sensorgate/gateway/webhook"
)

// Daemon is sensorgate wired from a config: sources, pipeline, sink and
// dead letters. Tests run it in-process end to end.
type Daemon struct {
	log      zerolog.Logger
	Counters *gateway.Counters
	Devices  *devices.Registry
	pipeline *gateway.Pipeline
	influx   *influx.Client // InfluxDB's HTTP side: requests, probes, statistics
	spool    *spool.Spool
	writer   *influx.Writer    // the pipeline's sink: points into the spool
	delivery *influx.Deliverer // the spool to InfluxDB
	dl       *deadletter.File
	sources  []gateway.Source
	scripts  *script.Watcher // nil without decoders.scripts
	codecs   *sandbox.Pool   // daemon_codecs.go; nil without scripts or with in-process codecs
	ops      *ops            // daemon_http.go: registry store, device health, unknown devices, HTTP API
	// statsEvery is how often counters are logged (0: only at exit).
	statsEvery time.Duration
	// influxMon probes InfluxDB every probeEvery for /readyz (readyz.go)
	// and creates the database when influx.create_database holds.
	influxMon  *influx.Monitor
	probeEvery time.Duration
	// dlw is where sources and the pipeline put dead letters: dl,
	// counted by metrics (daemon_metrics.go).
	dlw     gateway.DeadLetters
	metrics *metrics.Metrics
	drops   *dropWatch // brokerwatch.go: warns when the broker dropped queued messages
	frames  []rawFeed  // daemon_lorawan.go: raw-frame handlers (dedup-table metrics; counters kept by the registry)
	// webhooks are the http sources, for tests that need their address.
	webhooks []*webhook.Source
	refills  *refills // daemon_storage.go: tts-v3 sources refilled from the Storage Integration; nil without
}

// NewDaemon builds everything the config describes without connecting to
// anything yet.
func NewDaemon(cfg *config.Config, log zerolog.Logger) (*Daemon, error) {
	d := &Daemon{log: log, Counters: &gateway.Counters{}, statsEvery: time.Minute, probeEvery: influxProbeEvery}
	var devs []devices.Device
	if cfg.Devices.Import != "" {
		var err error
		if devs, err = devices.LoadFile(cfg.Devices.Import); err != nil {
			return nil, fmt.Errorf("load devices: %w", err)
		}
	}
	reg, err := devices.NewRegistry(devs)
	if err != nil {
		return nil, fmt.Errorf("load devices from %s: %w", cfg.Devices.Import, err)
	}
	d.Devices = reg
	decs := decoders.NewRegistry()
	if cfg.Decoders.Scripts != "" {
		d.scripts = script.NewWatcher(cfg.Decoders.Scripts, decs, script.Options{
			Timeout: cfg.Decoders.Timeout, Logger: log.With().Str("component", "scripts").Logger()})
		d.codecs = newCodecPool(cfg, d.scripts, log.With().Str("component", "codecs").Logger())
		// A missing folder stops start-up (a typo would silently decode
		// nothing); one broken codec does not: the good ones are registered.
		if err := d.scripts.Sync(context.Background()); err != nil {
			if _, statErr := os.Stat(cfg.Decoders.Scripts); statErr != nil {
				d.closeCodecs()
				return nil, fmt.Errorf("decoders.scripts: %w", err)
			}
			log.Error().Err(err).Msg("some codecs did not load; the others are in use")
		}
		// Codecs in workers allocate there, not in the daemon.
		if d.codecs == nil && script.TuneGC() {
			log.Info().Int("gogc", script.GCPercent).Msg("JavaScript codecs allocate heavily: garbage collector target raised so decoding can use every core (set GOGC to choose another)")
		}
	}
	for _, dev := range devs {
		if dev.Model != "" {
			if _, ok := decs.Lookup(dev.Model); !ok {
				log.Warn().Str("device", dev.Name).Str("model", dev.Model).Msg("device names a model no decoder provides: its uplinks will be dead-lettered")
			}
		}
	}
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		d.closeCodecs()
		return nil, fmt.Errorf("create state_dir %s: %w", cfg.StateDir, err)
	}
	dlOpt := deadletter.Options{Config: cfg.DeadLetters, Log: log.With().Str("component", "deadletters").Logger()}
	if d.dl, err = deadletter.Open(filepath.Join(cfg.StateDir, deadletter.FileName), dlOpt); err != nil {
		d.closeCodecs()
		return nil, err
	}
	d.metrics = d.newMetrics(cfg, decs)
	if d.codecs != nil {
		d.metrics.MustRegister(codecCollector{d.codecs}) // daemon_codecs.go
	}
	d.dlw = d.metrics.DeadLetters(d.dl)
	influxLog := log.With().Str("component", "influx").Logger()
	if d.influx, err = influx.New(cfg.Influx, influxLog); err != nil {
		d.dl.Close()
		d.closeCodecs()
		return nil, err
	}
	if d.spool, err = spool.Open(cfg.Spool, log.With().Str("component", "spool").Logger()); err != nil {
		d.dl.Close()
		d.closeCodecs()
		return nil, err
	}
	d.writer = influx.NewWriter(d.spool)
	d.delivery = influx.NewDeliverer(d.influx, d.spool, d.dlw, influxLog)
	d.influxMon = influx.NewMonitor(d.influx, influxLog)
	policies := map[string]gateway.SourcePolicy{}
	for _, sc := range cfg.Sources {
		src, policy, err := d.newSource(sc, reg, log) // daemon_lorawan.go
		if err != nil {
			d.Close()
			return nil, err
		}
		d.sources = append(d.sources, src)
		policies[sc.Name()] = policy
	}
	d.pipeline = &gateway.Pipeline{
		Devices: reg, Decoders: decs, Sink: d.writer, DeadLetters: d.dlw, Sources: policies,
		AllowedTags: cfg.Devices.Tags, Log: log, Counters: d.Counters,
		Decrypt:    lorawan.DecryptFRMPayload, // payloads a network server forwarded encrypted
		DecodedAll: modelSet(cfg.Decoders.DecodedAll),
	}
	if err := d.setupOps(cfg, decs, true); err != nil { // daemon_http.go
		d.Close()
		return nil, err
	}
	if err := d.setupRefills(cfg); err != nil { // daemon_storage.go
		d.Close()
		return nil, err
	}
	d.storeFrameCounters() // daemon_lorawan.go
	d.watchDrops()         // brokerwatch.go
	// Loading the registry (YAML parsed twice, the store's import) leaves
	// ~20 MB of garbage whose pages the runtime would return only slowly;
	// return them now, so a drain's peak RSS starts from the idle floor.
	debug.FreeOSMemory()
	log.Info().Int("devices", reg.Len()).Int("sources", len(d.sources)).Int("models", len(decs.Models())).Msg("sensorgate configured")
	return d, nil
}

// Run runs every source and delivery until ctx is cancelled, then stops
// the sources, lets in-flight messages finish and drains the spool to
// InfluxDB within the shutdown deadline.
func (d *Daemon) Run(ctx context.Context) error {
	stopOps, err := d.startOps(ctx) // daemon_http.go: HTTP API, device health
	if err != nil {
		return err
	}
	stopDelivery := d.delivery.Start()
	// The schema point says from when on InfluxDB holds this version's
	// schema; a daemon that cannot spool it still runs.
	if err := d.writer.Write(ctx, []gateway.Point{gateway.SchemaPoint(version, time.Now())}); err != nil {
		d.log.Warn().Err(err).Int("schema_version", gateway.SchemaVersion).Msg("could not spool the sensorgate schema point; the data points are written as usual")
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.influxMon.Run(ctx, d.probeEvery)
	}()
	waitRefills := d.refills.start(ctx) // before the sources: a connection asks it for a refill
	errs := make([]error, len(d.sources))
	for i, src := range d.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = src.Run(ctx, d.refills.handler(i, d.pipeline.Handle))
		}()
	}
	if d.scripts != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = d.scripts.Run(ctx) // nil on cancellation; reload errors are logged inside
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		every(ctx, d.statsEvery, func() { d.logCounters("stats") })
	}()
	wg.Wait()
	waitRefills() // cancelled with ctx; their cursors saved
	d.drops.stop()
	stopOps() // before delivery stops: in-flight replays reach the spool
	// Every handler and replay has returned: no decode needs a worker.
	d.closeCodecs()
	// Sources are stopped and their handlers returned: everything they
	// acknowledged is in the spool. Deliver what InfluxDB takes within the
	// deadline; the rest stays on disk for the next start.
	flushCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	notDrained, err := stopDelivery(flushCtx)
	if notDrained != nil {
		d.log.Warn().Err(notDrained).Msg("shutdown before InfluxDB took everything")
	}
	if err != nil {
		errs = append(errs, err)
	}
	d.logCounters("shutdown")
	return errors.Join(errs...)
}

func (d *Daemon) logCounters(msg string) {
	ev := d.log.Info()
	for _, name := range d.Counters.Names() {
		ev = ev.Uint64(name, d.Counters.Get(name))
	}
	ev.Msg(msg)
}

// closeCodecs stops the codec workers, if any.
func (d *Daemon) closeCodecs() {
	if d.codecs != nil {
		_ = d.codecs.Close()
	}
}

// Close releases files and stops the codec workers.
func (d *Daemon) Close() error {
	if d.ops != nil {
		d.ops.redecode.Close() // before the spool: its points go there
	}
	d.closeCodecs()
	var errs []error
	if d.ops != nil {
		errs = append(errs, d.ops.store.Close())
	}
	if d.spool != nil {
		errs = append(errs, d.spool.Close())
	}
	return errors.Join(append(errs, d.dl.Close())...)
}

func newLogger(cfg config.LogConfig, w io.Writer) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(cfg.Level)
	if err != nil || cfg.Level == "" {
		level = zerolog.InfoLevel
	}
	if cfg.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: !colorTerminal(w)}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), nil
}

// colorTerminal reports whether w is a terminal that takes colours: not a
// file or pipe a log is redirected to (escape codes would end up in it),
// and not with NO_COLOR set (no-color.org).
func colorTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" {
		return false
	}
	return isatty.IsTerminal(f.Fd())
}

func runCommand(ctx context.Context, args []string, stderr io.Writer) error {
	path, err := configFlag("run", args, stderr)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	for _, w := range config.FileWarnings(path) {
		log.Warn().Msg(w)
	}
	defer servePprof(log)() // opt-in, SENSORGATE_PPROF=127.0.0.1:PORT
	d, err := NewDaemon(cfg, log)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Run(ctx)
}

func validateCommand(args []string, stdout, stderr io.Writer) error {
	path, err := configFlag("validate", args, stderr)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errors.New("config is invalid")
	}
	if cfg.Devices.Import != "" {
		devs, err := devices.LoadFile(cfg.Devices.Import)
		if err == nil {
			_, err = devices.NewRegistry(devs)
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return errors.New("devices file is invalid")
		}
	}
	for _, w := range config.FileWarnings(path) {
		fmt.Fprintln(stderr, "warning:", w)
	}
	fmt.Fprintf(stdout, "%s: ok (%d sources)\n", path, len(cfg.Sources))
	return nil
}

// modelSet is decoders.decoded_all as the pipeline looks it up; nil for
// none.
func modelSet(models []string) map[string]bool {
	if len(models) == 0 {
		return nil
	}
	set := make(map[string]bool, len(models))
	for _, m := range models {
		set[strings.TrimSpace(m)] = true
	}
	return set
}
