package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/httpapi"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/gateway/ttsstorage"
)

// Refilling tts-v3 sources from The Things Stack's Storage Integration:
// on every (re)connection of such a source, the uplinks stored since the
// last one it took (its cursor, kept in state_dir) are fetched and run
// through the pipeline beside the live messages. Not settings: how often
// cursors are saved and how a failed refill is retried while the source
// stays connected.
const (
	cursorSaveEvery  = 10 * time.Second
	refillRetryFirst = time.Minute
	refillRetryMax   = 30 * time.Minute
)

// refills are the daemon's Storage Integration refills, one per source
// with a storage key.
type refills struct {
	cursors  *ttsstorage.Cursors
	feeds    []*refill
	bySrc    map[int]*refill // by index in Daemon.sources
	log      zerolog.Logger
	counters *gateway.Counters
}

// refill is one source's.
type refill struct {
	name  string
	fill  *ttsstorage.Backfill
	delay time.Duration
	kick  chan struct{} // a connection, or a retry, asks for a run
}

// newBackfill builds the Backfill of source sc through the daemon's
// pipeline, as `sensorgate backfill` does too.
func (d *Daemon) newBackfill(sc config.Source, log zerolog.Logger) (*ttsstorage.Backfill, error) {
	if sc.MQTT == nil || sc.MQTT.Format != mqtt.FormatTTSV3 || sc.Storage == nil {
		return nil, fmt.Errorf("source %q has no Storage Integration: backfill needs a type mqtt, format tts-v3 source with a storage key (docs/feeds.md)", sc.Name())
	}
	client, err := ttsstorage.New(sc.Name(), *sc.Storage, log)
	if err != nil {
		return nil, err
	}
	parser, err := mqtt.NewParser(*sc.MQTT, nil)
	if err != nil {
		return nil, err
	}
	return &ttsstorage.Backfill{Client: client, Parser: parser, Handler: d.pipeline.Handle,
		DeadLetters: eventCounted{next: d.dlw, counters: d.Counters}, Log: log}, nil
}

// setupRefills prepares a refill for every source with a storage key,
// reads their cursors and adds POST /api/v1/backfill to the API. Called
// once the pipeline exists.
func (d *Daemon) setupRefills(cfg *config.Config) error {
	if d.ops != nil && d.ops.api != nil {
		d.ops.api.Handle("POST /api/v1/backfill", d.backfillHandler(cfg), false)
	}
	r := &refills{bySrc: map[int]*refill{}, log: d.log.With().Str("component", "storage").Logger(), counters: d.Counters}
	apps := map[string]string{}
	for i, sc := range cfg.Sources {
		if sc.Storage == nil {
			continue
		}
		fill, err := d.newBackfill(sc, r.log)
		if err != nil {
			return err
		}
		src, ok := d.sources[i].(*mqtt.Source)
		if !ok {
			return fmt.Errorf("source %q: storage needs an MQTT source", sc.Name())
		}
		f := &refill{name: sc.Name(), fill: fill, delay: fill.Client.Config().Delay, kick: make(chan struct{}, 1)}
		src.OnConnect(func() { r.connected(f) })
		r.feeds = append(r.feeds, f)
		r.bySrc[i] = f
		apps[f.name] = sc.Storage.ApplicationID
	}
	if len(r.feeds) == 0 {
		return nil
	}
	var err error
	if r.cursors, err = ttsstorage.OpenCursors(filepath.Join(cfg.StateDir, ttsstorage.CursorFile), apps); err != nil {
		return err
	}
	d.refills = r
	return nil
}

// connected marks the source's connection in its cursor before any live
// message of it is handled, and asks for a refill when there is a gap to
// fill (none at a source's first connection ever).
func (r *refills) connected(f *refill) {
	from, ok := r.cursors.Begin(f.name, time.Now())
	if !ok {
		r.log.Info().Str("source", f.name).Msg("first connection with a Storage Integration: uplinks from now on are kept track of (older ones: sensorgate backfill --source --since)")
		return
	}
	r.log.Info().Str("source", f.name).Time("since", from).Stringer("in", f.delay).Msg("connected: fetching the uplinks stored since the last one taken")
	select {
	case f.kick <- struct{}{}:
	default: // one is pending already
	}
}

// handler is h for source i, noting each uplink it took in the source's
// cursor when the source has a refill.
func (r *refills) handler(i int, h gateway.Handler) gateway.Handler {
	if r == nil || r.bySrc[i] == nil {
		return h
	}
	name := r.bySrc[i].name
	return func(ctx context.Context, up gateway.Uplink) error {
		err := h(ctx, up)
		if err == nil && up.Kind == gateway.KindUplink && !up.LocalTime {
			r.cursors.Seen(name, up.Time)
		}
		return err
	}
}

// start runs the refills and the cursors' saving until ctx ends; wait
// returns once they stopped and the cursors are saved.
func (r *refills) start(ctx context.Context) (wait func()) {
	if r == nil {
		return func() {}
	}
	var wg sync.WaitGroup
	for _, f := range r.feeds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.loop(ctx, f)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		every(ctx, cursorSaveEvery, r.save)
	}()
	return func() {
		wg.Wait()
		r.save()
	}
}

func (r *refills) save() {
	if err := r.cursors.Save(); err != nil {
		r.log.Error().Err(err).Msg("the next start may fetch again what was fetched already (harmless) but cannot know where this run stopped if this persists: check state_dir")
	}
}

// loop runs f's refill whenever asked, after its delay; a failed one is
// retried with a growing wait while the source stays connected (a
// refused API key only at the next connection: the config must change).
func (r *refills) loop(ctx context.Context, f *refill) {
	retry := refillRetryFirst
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.kick:
		}
		if !sleepCtx(ctx, f.delay) {
			return
		}
		err := r.run(ctx, f)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			retry = refillRetryFirst
		case ttsstorage.IsAuth(err):
			r.log.Error().Str("source", f.name).Msg(err.Error())
		default:
			r.log.Error().Err(err).Str("source", f.name).Stringer("retry_in", retry).Msg("refill from the Storage Integration failed; nothing is lost: it resumes where it stopped")
			if timer != nil {
				timer.Stop()
			}
			timer = time.AfterFunc(retry, func() {
				select {
				case f.kick <- struct{}{}:
				default:
				}
			})
			retry = min(2*retry, refillRetryMax)
		}
	}
}

// run fetches what f's cursor says may be missing.
func (r *refills) run(ctx context.Context, f *refill) error {
	from := r.cursors.Resume(f.name)
	res, err := f.fill.Run(ctx, ttsstorage.Range{After: from.Add(-ttsstorage.Margin)}, func(t time.Time) { r.cursors.Progress(f.name, t) })
	r.count(res)
	if err != nil {
		r.save()
		return err
	}
	r.cursors.Done(f.name)
	r.save()
	r.log.Info().Str("source", f.name).Time("since", from).Int("uplinks", res.Uplinks).Int("dead_letters", res.DeadLetters).
		Int("requests", res.Requests).Int("skipped_lines", res.Skipped).Msg("refilled from the Storage Integration")
	return nil
}

// count adds a run's figures to the daemon's counters (storage.*).
func (r *refills) count(res ttsstorage.Result) { countStorage(r.counters, res) }

func countStorage(c *gateway.Counters, res ttsstorage.Result) {
	c.Add("storage.uplinks", uint64(res.Uplinks))
	c.Add("storage.requests", uint64(res.Requests))
	c.Add("storage.skipped_lines", uint64(res.Skipped))
}

// sleepCtx waits d, or until ctx ends (false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// BackfillRequest is the body of POST /api/v1/backfill.
type BackfillRequest struct {
	Source string `json:"source"`
	Since  string `json:"since"`           // RFC 3339, or a duration back from now (24h)
	Until  string `json:"until,omitempty"` // the same; empty: up to now
}

// BackfillResponse says what a backfill did.
type BackfillResponse struct {
	Source       string    `json:"source"`
	Since        time.Time `json:"since"`
	Until        time.Time `json:"until,omitzero"`
	Uplinks      int       `json:"uplinks"`
	DeadLetters  int       `json:"dead_letters"`
	Requests     int       `json:"requests"`
	SkippedLines int       `json:"skipped_lines"`
	// DurableUntil is the received_at up to which every fetched uplink is
	// durable; after a failure, where running it again may start.
	DurableUntil time.Time `json:"durable_until,omitzero"`
}

// apiErrorBody is the API's error form, {"error": …, "detail": …}.
type apiErrorBody struct {
	Error  string `json:"error"`
	Detail any    `json:"detail"`
}

func writeAPIJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// backfillHandler runs a backfill of one source's range through the
// pipeline and answers once it ended: what sensorgate backfill calls,
// on the running daemon or on one it builds in-process.
func (d *Daemon) backfillHandler(cfg *config.Config) http.HandlerFunc {
	sources := map[string]config.Source{}
	for _, sc := range cfg.Sources {
		sources[sc.Name()] = sc
	}
	log := d.log.With().Str("component", "storage").Logger()
	return func(w http.ResponseWriter, r *http.Request) {
		var req BackfillRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeAPIJSON(w, http.StatusBadRequest, apiErrorBody{"body: want {\"source\": …, \"since\": …}: " + err.Error(), nil})
			return
		}
		sc, ok := sources[req.Source]
		if !ok {
			writeAPIJSON(w, http.StatusNotFound, apiErrorBody{fmt.Sprintf("no source %q in the config", req.Source), nil})
			return
		}
		now := time.Now()
		since, err := httpapi.ParseSince(req.Since, now)
		if req.Since == "" || err != nil {
			writeAPIJSON(w, http.StatusBadRequest, apiErrorBody{fmt.Sprintf("since: %v: give where to start (RFC 3339, or a duration back from now: 24h)", errors.Join(err, errors.New("required"))), nil})
			return
		}
		var until time.Time
		if req.Until != "" {
			if until, err = httpapi.ParseSince(req.Until, now); err != nil || !until.After(since) {
				writeAPIJSON(w, http.StatusBadRequest, apiErrorBody{fmt.Sprintf("until %q: want a time after since", req.Until), nil})
				return
			}
		}
		fill, err := d.newBackfill(sc, log)
		if err != nil {
			writeAPIJSON(w, http.StatusBadRequest, apiErrorBody{err.Error(), nil})
			return
		}
		// A long range takes longer than the API's write timeout, which
		// is for answers that do not wait on anything.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		res, err := fill.Run(r.Context(), ttsstorage.Range{After: since, Before: until}, nil)
		countStorage(d.Counters, res)
		resp := BackfillResponse{Source: req.Source, Since: since.UTC(), Until: until.UTC(), Uplinks: res.Uplinks, DeadLetters: res.DeadLetters,
			Requests: res.Requests, SkippedLines: res.Skipped, DurableUntil: res.Durable}
		if err != nil {
			log.Error().Str("source", req.Source).Int("uplinks", res.Uplinks).Msg("backfill: " + err.Error())
			writeAPIJSON(w, http.StatusBadGateway, apiErrorBody{err.Error(), resp})
			return
		}
		log.Info().Str("source", req.Source).Time("since", since).Int("uplinks", res.Uplinks).Int("requests", res.Requests).Msg("backfilled from the Storage Integration")
		writeAPIJSON(w, http.StatusOK, resp)
	}
}
