package devices

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Defaults of the cardinality guard (devices.unknown_max_series,
// devices.unknown_series_per_minute).
const (
	DefaultUnknownMaxSeries       = 1000
	DefaultUnknownSeriesPerMinute = 100
)

// ErrSeriesLimit is wrapped by SeriesGuard.Admit's refusals.
var ErrSeriesLimit = errors.New("unknown-device limit reached")

// SeriesGuard limits the devices missing from the registry whose uplinks
// a source writes to InfluxDB. Each such device is a new value of the
// dev_eui and device tags, and InfluxDB refuses every new value of a tag
// past its max-values-per-tag (100,000 by default), registered devices'
// included; so a flood of made-up EUIs must stop here, not there. Per
// source at most Max devices are admitted in all (kept across restarts),
// and at most PerMinute new ones a minute. It is safe for concurrent use.
type SeriesGuard struct {
	max       int
	perMinute float64
	now       func() time.Time

	mu      sync.Mutex
	sources map[string]*sourceSeries
}

// sourceSeries is one source's admitted devices and rate bucket.
type sourceSeries struct {
	admitted map[EUI]struct{}
	unsaved  []EUI // admitted since the last save
	tokens   float64
	last     time.Time
	refused  uint64
}

// NewSeriesGuard returns a guard admitting up to maxDevices per source,
// perMinute new ones a minute (both at least 1).
func NewSeriesGuard(maxDevices int, perMinute float64) *SeriesGuard {
	return &SeriesGuard{max: max(maxDevices, 1), perMinute: max(perMinute, 1), now: time.Now, sources: map[string]*sourceSeries{}}
}

func (g *SeriesGuard) source(name string) *sourceSeries {
	s, ok := g.sources[name]
	if !ok {
		s = &sourceSeries{admitted: map[EUI]struct{}{}, tokens: g.perMinute, last: g.now()}
		g.sources[name] = s
	}
	return s
}

// Admit reports whether the uplinks of unregistered device e may be
// written for source: nil for a device admitted before, or a new one
// within both limits; an error wrapping ErrSeriesLimit, which says what to
// do, otherwise.
func (g *SeriesGuard) Admit(source string, e EUI) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.source(source)
	if _, ok := s.admitted[e]; ok {
		return nil
	}
	if len(s.admitted) >= g.max {
		s.refused++
		return fmt.Errorf("%w: source %q already writes %d devices missing from the registry (devices.unknown_max_series): register device %s to have its uplinks written, or raise the limit if InfluxDB's max-values-per-tag allows",
			ErrSeriesLimit, source, len(s.admitted), e)
	}
	now := g.now()
	if dt := now.Sub(s.last); dt > 0 {
		s.tokens = min(g.perMinute, s.tokens+dt.Minutes()*g.perMinute)
		s.last = now
	}
	if s.tokens < 1 {
		s.refused++
		return fmt.Errorf("%w: source %q admits at most %g new devices missing from the registry a minute (devices.unknown_series_per_minute): register device %s, or replay this dead letter later",
			ErrSeriesLimit, source, g.perMinute, e)
	}
	s.tokens--
	s.admitted[e] = struct{}{}
	s.unsaved = append(s.unsaved, e)
	return nil
}

// SeriesStats is one source's guard state.
type SeriesStats struct {
	Source   string
	Admitted int
	Refused  uint64
}

// Stats returns each source's admitted and refused counts.
func (g *SeriesGuard) Stats() []SeriesStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]SeriesStats, 0, len(g.sources))
	for name, s := range g.sources {
		out = append(out, SeriesStats{Source: name, Admitted: len(s.admitted), Refused: s.refused})
	}
	return out
}

// seriesRow is one admitted device of a source, as saved.
type seriesRow struct {
	source string
	eui    EUI
}

// SaveSeries writes the devices admitted since the last save, in
// transactions of a few hundred rows, until done or ctx ends.
func (s *Store) SaveSeries(ctx context.Context, g *SeriesGuard) error {
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("devices: save unknown_series: %w", err)
		}
		var rows []seriesRow
		g.mu.Lock()
		for name, src := range g.sources {
			n := min(len(src.unsaved), saveBatch-len(rows))
			for _, e := range src.unsaved[:n] {
				rows = append(rows, seriesRow{name, e})
			}
			src.unsaved = src.unsaved[n:]
			if len(rows) >= saveBatch {
				break
			}
		}
		g.mu.Unlock()
		if len(rows) == 0 {
			return nil
		}
		if err := s.writeSeries(ctx, rows); err != nil {
			g.mu.Lock()
			for _, r := range rows {
				src := g.source(r.source)
				src.unsaved = append(src.unsaved, r.eui)
			}
			g.mu.Unlock()
			return err
		}
	}
}

func (s *Store) writeSeries(ctx context.Context, rows []seriesRow) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("devices: registry %s: save unknown_series: %w", s.path, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	ins, err := tx.PrepareContext(ctx, "INSERT OR IGNORE INTO unknown_series (source, dev_eui) VALUES (?, ?)")
	if err != nil {
		return fmt.Errorf("devices: registry %s: save unknown_series: %w", s.path, err)
	}
	defer ins.Close()
	for _, r := range rows {
		if _, err := ins.ExecContext(ctx, r.source, r.eui.String()); err != nil {
			return fmt.Errorf("devices: registry %s: save unknown_series: %w", s.path, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("devices: registry %s: save unknown_series: %w", s.path, err)
	}
	return nil
}

// LoadSeries reads the admitted devices into g, so that a restart does not
// admit another full set. Devices registered since are left out: their
// uplinks no longer pass the guard, and their place is free again.
func (s *Store) LoadSeries(ctx context.Context, g *SeriesGuard) error {
	rows, err := s.db.QueryContext(ctx, "SELECT source, dev_eui FROM unknown_series")
	if err != nil {
		return fmt.Errorf("devices: registry %s: read unknown_series: %w", s.path, err)
	}
	defer rows.Close()
	g.mu.Lock()
	defer g.mu.Unlock()
	for rows.Next() {
		var source, eui string
		if err := rows.Scan(&source, &eui); err != nil {
			return fmt.Errorf("devices: registry %s: read unknown_series: %w", s.path, err)
		}
		e, err := ParseEUI(eui)
		if err != nil {
			continue
		}
		if _, registered := s.reg.Lookup(e); registered {
			continue
		}
		g.source(source).admitted[e] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("devices: registry %s: read unknown_series: %w", s.path, err)
	}
	return nil
}
