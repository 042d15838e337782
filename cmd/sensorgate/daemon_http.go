package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/deadletter"
	"github.com/sensorgate/sensorgate/gateway/health"
	"github.com/sensorgate/sensorgate/gateway/httpapi"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/gateway/redecode"
	"github.com/sensorgate/sensorgate/gateways"
)

// ops is the operations side of the daemon: the persisted registry behind
// the pipeline's Registry, device health and unknown devices (fed by the
// pipeline's Observer), dead-letter replay and the HTTP API serving them.
type ops struct {
	log      zerolog.Logger
	store    *devices.Store
	health   *devices.Health
	unknowns *devices.Unknowns
	series   *devices.SeriesGuard // which unregistered devices may be written
	replayer *deadletter.Replayer
	redecode *redecode.Jobs  // re-decode jobs (redecode.go)
	api      *httpapi.Server // nil when only replaying (the CLI)
	gateways *gateways.Table // gateway health and the operator's entries
	gwStore  *gateways.Store

	sink        gateway.Sink // device_health points go where the pipeline's go
	healthEvery time.Duration
	saveEvery   time.Duration
	allowedTags []string
	now         func() time.Time
	inst        *instances // with a shared registry: instances.go
}

// setupOps opens the registry store in state_dir (loading it into the
// pipeline's Registry), imports the config's devices file when it changed,
// loads saved health and unknown devices, hooks the pipeline's Observer,
// and builds the replayer and (when withAPI) the HTTP API. It is called
// once NewDaemon built the pipeline.
func (d *Daemon) setupOps(cfg *config.Config, decs *decoders.Registry, withAPI bool) error {
	ctx := context.Background()
	o := &ops{
		log: d.log.With().Str("component", "ops").Logger(), health: devices.NewHealth(cfg.Devices.SilentFactor),
		unknowns: devices.NewUnknowns(), sink: d.pipeline.Sink, healthEvery: cfg.Devices.HealthInterval,
		saveEvery: cfg.Devices.StateSaveInterval, allowedTags: cfg.Devices.Tags, now: time.Now,
		series: devices.NewSeriesGuard(cfg.Devices.UnknownMaxSeries, float64(cfg.Devices.UnknownSeriesPerMinute)),
	}
	if cfg.Devices.MaxUnknown > 0 { // a Config built in code may leave it out
		o.health.SetMaxUnknown(cfg.Devices.MaxUnknown)
		o.unknowns.SetMax(cfg.Devices.MaxUnknown)
	}
	var err error
	if o.store, err = openRegistry(ctx, cfg, d.Devices, o.unknowns, o.health, o.log); err != nil { // registry.go
		return err
	}
	d.ops = o
	if cfg.Devices.Import != "" {
		imported, created, updated, err := o.store.ImportFile(ctx, cfg.Devices.Import)
		if err != nil {
			return fmt.Errorf("devices.import: %w", err)
		}
		if imported {
			o.log.Info().Str("file", cfg.Devices.Import).Int("created", created).Int("updated", updated).Msg("devices file imported into the registry")
		}
	}
	if err := d.shareHealth(ctx, cfg); err != nil { // instances.go
		return err
	}
	if err := o.store.LoadUnknowns(ctx, o.unknowns); err != nil {
		o.log.Warn().Err(err).Msg("saved unknown devices not loaded; they reappear with their next uplinks")
	}
	if err := o.store.LoadSeries(ctx, o.series); err != nil {
		o.log.Warn().Err(err).Msg("the unregistered devices written before were not loaded; up to devices.unknown_max_series new ones per source will be written")
	}
	d.pipeline.Unknown = o.series
	o.gateways = gateways.NewTable(cfg.Gateways.Max)
	o.gateways.SilentFactor, o.gateways.StatsInterval = cfg.Gateways.SilentFactor, cfg.Gateways.StatsInterval
	if o.gwStore, err = gateways.Open(o.gateways, cfg.Gateways.File, filepath.Join(cfg.StateDir, gatewaysStateFile)); err != nil {
		return fmt.Errorf("gateways.file: %w", err)
	}
	d.pipeline.Gateways, d.pipeline.GatewayTags = gateways.Tagger{Table: o.gateways}, cfg.Gateways.Tags
	var obs gateway.Observer = observers{
		&health.Observer{Health: o.health, Unknowns: o.unknowns, Registry: d.Devices, Now: o.now},
		&gateways.Observer{Table: o.gateways, Now: o.now},
	}
	if d.metrics != nil {
		obs = observers{obs, d.metrics} // daemon_metrics.go
	}
	d.pipeline.Observer = obs
	if o.replayer, err = newReplayer(cfg, d); err != nil {
		return err
	}
	o.redecode = redecode.NewJobs(&redecode.Runner{
		Store: influxStore{d.influx}, Pipeline: d.pipeline, Sink: d.writer, Barrier: spoolBarrier(d.spool),
		Log: d.log.With().Str("component", "redecode").Logger(),
	})
	if !withAPI {
		return nil
	}
	token, err := apiToken(cfg, func(msg string) { d.log.Warn().Msg(msg) }) // token.go
	if err != nil {
		return err
	}
	if cfg.HTTP.Token == "" {
		d.log.Info().Str("token_file", filepath.Join(cfg.StateDir, tokenFileName)).Msg("http.token is empty: the API takes the token in this file (the CLI and the status page use it)")
	}
	o.api, err = httpapi.New(httpapi.Config{
		Listen: cfg.HTTP.Listen, Token: token, AllowedHosts: cfg.HTTP.AllowedHosts,
		TLSCert: cfg.HTTP.TLSCert, TLSKey: cfg.HTTP.TLSKey, MaxBodyBytes: int64(cfg.HTTP.MaxBodyBytes),
		MaxImportBytes: int64(cfg.HTTP.MaxImportBytes),
	}, httpapi.Options{
		Store: o.store, Health: o.health, Unknowns: o.unknowns, Decoders: decs,
		Gateways: o.gateways, GatewayStore: o.gwStore,
		DeadLetters: d.dl, Replayer: o.replayer, Redecode: o.redecode, Ready: d.readyChecks(cfg),
		Metrics: d.metricsHandler(), Status: d.status(cfg), Version: version,
		Log: d.log.With().Str("component", "http").Logger(),
	})
	return err
}

// newReplayer replays dead letters with one feed parser per MQTT or HTTP
// source of the config. A letter whose feed carried no time is parsed at the time it
// was dead-lettered, so a replay writes the points the first try would
// have. Raw-frame feeds (semtech-udp, gateway-bridge) are not replayed:
// their frame counters have moved on.
func newReplayer(cfg *config.Config, d *Daemon) (*deadletter.Replayer, error) {
	var (
		mu sync.Mutex // the Replayer runs one letter at a time; this guards at
		at time.Time
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return at }
	parsers := map[string]*mqtt.Parser{}
	for _, sc := range cfg.Sources {
		var pc mqtt.Config
		switch {
		case sc.HTTP != nil:
			pc = sc.HTTP.ParserConfig() // webhooks post the MQTT feeds' messages
		case sc.MQTT != nil && sc.MQTT.Format != mqtt.FormatGatewayBridge:
			pc = *sc.MQTT
		default:
			continue
		}
		p, err := mqtt.NewParser(pc, clock)
		if err != nil {
			return nil, fmt.Errorf("dead-letter replay: source %q: %w", sc.Name(), err)
		}
		parsers[sc.Name()] = p
	}
	r := &deadletter.Replayer{
		Store:    d.dl,
		Pipeline: d.pipeline,
		Resend:   func(ctx context.Context, lines []byte) error { return d.spool.Append(ctx, lines) },
		Parse: func(dl gateway.DeadLetter) (gateway.Uplink, error) {
			p, ok := parsers[dl.Source]
			if !ok {
				return gateway.Uplink{}, fmt.Errorf("%w %q: replay covers the MQTT and HTTP feeds of the config (network servers and JSON), and this one is not among them", deadletter.ErrNoParser, dl.Source)
			}
			mu.Lock()
			at = dl.Time
			mu.Unlock()
			return p.Parse(dl.Topic, dl.Raw)
		},
	}
	return r, nil
}

// startOps starts the HTTP API and the device-health loop; stop ends them
// and waits, then saves health and unknown devices. Run calls stop before
// the sink closes, so an in-flight replay still reaches the spool.
func (d *Daemon) startOps(ctx context.Context) (stop func(), err error) {
	o := d.ops
	if o == nil {
		return func() {}, nil
	}
	if o.api != nil {
		if err := o.api.Listen(); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if o.api != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := o.api.Run(ctx); err != nil {
				o.log.Error().Err(err).Msg("HTTP API stopped")
			}
		}()
	}
	wg.Add(3)
	go func() {
		defer wg.Done()
		o.healthLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		o.syncLoop(ctx) // instances.go
	}()
	go func() {
		defer wg.Done()
		o.saveLoop(ctx)
	}()
	return func() {
		cancel()
		wg.Wait()
		// A re-decode's points reach the spool before it closes; the job
		// is interrupted and says to run it again.
		o.redecode.Close()
		// Only what changed since the last periodic save is left to write.
		saveCtx, done := context.WithTimeout(context.Background(), stateSaveBudget)
		defer done()
		o.save(saveCtx)
		o.sync(saveCtx)
		o.health.CloseJournal()
	}, nil
}

// stateSaveBudget bounds the save at shutdown. The periodic saves keep
// what is left to at most one state_save_interval of changes, which
// takes a fraction of it.
const stateSaveBudget = 5 * time.Second

// healthLoop writes device_health points every healthEvery until ctx
// ends.
func (o *ops) healthLoop(ctx context.Context) {
	every(ctx, o.healthEvery, func() {
		if err := o.writeHealth(ctx); err != nil && ctx.Err() == nil {
			o.log.Warn().Err(err).Msg("device_health points not written; next try in one health_interval")
		}
	})
}

// saveLoop saves what changed in the trackers every saveEvery until ctx
// ends.
func (o *ops) saveLoop(ctx context.Context) {
	period := o.saveEvery
	if period <= 0 {
		period = o.healthEvery
	}
	every(ctx, period, func() { o.save(ctx) })
}

// save writes what changed in health, the unknown devices and the
// admitted unregistered devices. Each save stops at ctx's end and leaves
// the rest to the next; a save cut short at shutdown says how much of it
// is lost.
func (o *ops) save(ctx context.Context) {
	if err := o.store.SaveHealth(ctx, o.health); err != nil {
		o.log.Warn().Err(err).Int("unsaved", o.health.PendingChanges()).Msg("device health not saved completely")
	}
	if err := o.store.SaveUnknowns(ctx, o.unknowns); err != nil {
		o.log.Warn().Err(err).Int("unsaved", o.unknowns.PendingChanges()).Msg("unknown devices not saved completely")
	}
	if err := o.store.SaveSeries(ctx, o.series); err != nil {
		o.log.Warn().Err(err).Msg("admitted unregistered devices not saved completely")
	}
}

// writeHealth writes one device_health point per device heard from.
func (o *ops) writeHealth(ctx context.Context) error {
	now := o.now().UTC().Truncate(time.Second)
	pts := health.Points(o.health.Report(now), o.store.Registry(), o.allowedTags, now)
	if len(pts) == 0 {
		return nil
	}
	return o.sink.Write(ctx, pts)
}

// gatewaysStateFile, under state_dir, keeps the gateway changes made
// through the API.
const gatewaysStateFile = "gateways.yaml"
