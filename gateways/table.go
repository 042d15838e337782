package gateways

import (
	"container/list"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/sensorgate/sensorgate/devices"
)

// Defaults of the gateways config section.
const (
	// DefaultMax is how many gateways heard but not configured are kept.
	DefaultMax = 1000
	// DefaultSilentFactor: silent after this many stats intervals
	// without a stats message.
	DefaultSilentFactor = 3
	// DefaultStatsInterval is the stats interval assumed until a
	// gateway's own is measured: the Gateway Bridge's default.
	DefaultStatsInterval = 30 * time.Second
	// intervalWeight is the weight of the newest gap in the moving
	// average of a gateway's stats interval.
	intervalWeight = 0.2
)

// Gateway is the operator's entry for a gateway.
type Gateway struct {
	ID   devices.EUI       `yaml:"id" json:"id"`
	Name string            `yaml:"name" json:"name,omitempty"`
	Tags map[string]string `yaml:"tags" json:"tags,omitempty"`
}

// Observation is one statistics message of a gateway.
type Observation struct {
	ID     devices.EUI
	Source string
	// Seen is when the message was sent (its time, or when received if
	// it carried none or one in the future): last seen and the interval
	// go by it.
	Seen                                    time.Time
	RxReceived, RxOK, TxReceived, TxEmitted uint64
	Location                                *Location
}

// Location is where a gateway says it is.
type Location struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
	Altitude  float64 `json:"altitude"`
}

// Health is one gateway's report.
type Health struct {
	ID         devices.EUI       `json:"id"`
	Name       string            `json:"name,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
	Configured bool              `json:"configured"`
	Source     string            `json:"source,omitempty"`
	// FirstSeen and LastSeen are nil for a configured gateway never
	// heard from; LastSeenAge is seconds since LastSeen.
	FirstSeen   *time.Time `json:"first_seen,omitempty"`
	LastSeen    *time.Time `json:"last_seen,omitempty"`
	LastSeenAge float64    `json:"last_seen_age_s"`
	// Interval is the measured stats interval in seconds (the default
	// until two messages came); Silent is set after SilentFactor of them
	// without a message.
	Interval float64 `json:"stats_interval_s"`
	Silent   bool    `json:"silent"`
	// Stats counts the statistics messages since start; the rest are the
	// latest message's counts (of its interval) and location.
	Stats      uint64    `json:"stats"`
	RxReceived uint64    `json:"rx"`
	RxOK       uint64    `json:"rx_ok"`
	TxReceived uint64    `json:"tx"`
	TxEmitted  uint64    `json:"tx_ok"`
	Location   *Location `json:"location,omitempty"`
}

type entry struct {
	cfg        *Gateway // nil: heard, not configured
	source     string
	first      time.Time
	last       time.Time
	interval   float64
	stats      uint64
	rx, rxOK   uint64
	tx, txOK   uint64
	location   *Location
	heardOnly  *list.Element // place in Table.lru while not configured
	configured bool
}

// Table tracks every configured or heard gateway. It is safe for
// concurrent use.
type Table struct {
	// SilentFactor and StatsInterval tune silence (defaults when 0).
	SilentFactor  float64
	StatsInterval time.Duration

	mu      sync.Mutex
	m       map[devices.EUI]*entry
	lru     *list.List // heard-only gateways, most recently heard first
	max     int
	evicted uint64
	sorted  []devices.EUI // m's keys in order, nil after a change
}

// NewTable returns an empty table keeping up to max gateways that are
// heard but not configured (DefaultMax when max <= 0).
func NewTable(max int) *Table {
	if max <= 0 {
		max = DefaultMax
	}
	return &Table{m: map[devices.EUI]*entry{}, lru: list.New(), max: max}
}

// Configure sets the configured gateways, replacing the previous set (the
// gateways file and the API's changes); gateways no longer configured
// stay as heard ones if they were heard, else they go.
func (t *Table) Configure(gws []Gateway) {
	t.mu.Lock()
	defer t.mu.Unlock()
	want := make(map[devices.EUI]Gateway, len(gws))
	for _, g := range gws {
		want[g.ID] = g
	}
	for id, e := range t.m {
		if _, ok := want[id]; ok || !e.configured {
			continue
		}
		t.unconfigure(id, e)
	}
	for id, g := range want {
		t.set(id, g)
	}
}

// Set configures one gateway (name and tags); created reports a gateway
// the table did not know.
func (t *Table) Set(g Gateway) (created bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, known := t.m[g.ID]
	t.set(g.ID, g)
	return !known
}

func (t *Table) set(id devices.EUI, g Gateway) {
	g.Tags = cloneTags(g.Tags)
	e, ok := t.m[id]
	if !ok {
		e = &entry{}
		t.m[id] = e
		t.sorted = nil
	}
	if e.heardOnly != nil {
		t.lru.Remove(e.heardOnly)
		e.heardOnly = nil
	}
	e.cfg, e.configured = &g, true
}

// Unset removes a gateway's configuration; ok is false if it had none.
func (t *Table) Unset(id devices.EUI) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[id]
	if !ok || !e.configured {
		return false
	}
	t.unconfigure(id, e)
	return true
}

// unconfigure makes e a heard-only gateway, or drops it if never heard;
// t.mu is held.
func (t *Table) unconfigure(id devices.EUI, e *entry) {
	e.cfg, e.configured = nil, false
	if e.last.IsZero() {
		delete(t.m, id)
		t.sorted = nil
		return
	}
	e.heardOnly = t.lru.PushFront(id)
	t.trim()
}

// trim evicts the least recently heard heard-only gateways beyond max;
// t.mu is held.
func (t *Table) trim() {
	for t.lru.Len() > t.max {
		back := t.lru.Back()
		t.lru.Remove(back)
		delete(t.m, back.Value.(devices.EUI))
		t.sorted = nil
		t.evicted++
	}
}

// Configured returns the configured gateways in ID order.
func (t *Table) Configured() []Gateway {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Gateway
	for _, e := range t.m {
		if e.configured {
			g := *e.cfg
			g.Tags = cloneTags(g.Tags)
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i].ID[:]) < string(out[j].ID[:]) })
	return out
}

// Observe records a statistics message.
func (t *Table) Observe(o Observation) {
	if o.Seen.IsZero() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[o.ID]
	if !ok {
		e = &entry{first: o.Seen}
		t.m[o.ID] = e
		t.sorted = nil
	}
	if !e.configured {
		if e.heardOnly == nil {
			e.heardOnly = t.lru.PushFront(o.ID)
			t.trim() // never e: it is in front
		} else {
			t.lru.MoveToFront(e.heardOnly)
		}
	}
	e.stats++
	if e.first.IsZero() || o.Seen.Before(e.first) {
		e.first = o.Seen
	}
	if !o.Seen.After(e.last) {
		return // late or repeated: counted, the latest values stay
	}
	if !e.last.IsZero() {
		gap := o.Seen.Sub(e.last).Seconds()
		if e.interval == 0 {
			e.interval = gap
		} else {
			e.interval += intervalWeight * (gap - e.interval)
		}
	}
	e.last, e.source = o.Seen, o.Source
	e.rx, e.rxOK, e.tx, e.txOK = o.RxReceived, o.RxOK, o.TxReceived, o.TxEmitted
	if o.Location != nil {
		l := *o.Location
		e.location = &l
	}
}

// Lookup returns a configured gateway's name and tags (shared: read
// only) for its points.
func (t *Table) Lookup(id devices.EUI) (name string, tags map[string]string, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[id]
	if !ok || !e.configured {
		return "", nil, false
	}
	return e.cfg.Name, e.cfg.Tags, true
}

// Get returns one gateway's report.
func (t *Table) Get(id devices.EUI, now time.Time) (Health, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[id]
	if !ok {
		return Health{}, false
	}
	return t.report(id, e, now), true
}

func (t *Table) report(id devices.EUI, e *entry, now time.Time) Health {
	h := Health{ID: id, Configured: e.configured, Source: e.source, Stats: e.stats,
		RxReceived: e.rx, RxOK: e.rxOK, TxReceived: e.tx, TxEmitted: e.txOK}
	if e.configured {
		h.Name, h.Tags = e.cfg.Name, cloneTags(e.cfg.Tags)
	}
	h.Interval = t.StatsInterval.Seconds()
	if h.Interval <= 0 {
		h.Interval = DefaultStatsInterval.Seconds()
	}
	if e.interval > 0 {
		h.Interval = e.interval
	}
	if !e.last.IsZero() {
		first, last := e.first, e.last
		h.FirstSeen, h.LastSeen = &first, &last
		h.LastSeenAge = max(now.Sub(last).Seconds(), 0)
		factor := t.SilentFactor
		if factor <= 0 {
			factor = DefaultSilentFactor
		}
		h.Silent = h.LastSeenAge > factor*h.Interval
	}
	if e.location != nil {
		l := *e.location
		h.Location = &l
	}
	return h
}

// Page is one page of the gateway listing in ID order.
type Page struct {
	Gateways []Health
	// Matched counts the gateways matching the query, Total all of them,
	// Silent the silent ones among all.
	Matched, Total, Silent int
	More                   bool
}

// Page lists up to limit gateways after cursor (the zero EUI: from the
// start; limit 0: all) that match q (name, id, source, tags).
func (t *Table) Page(cursor devices.EUI, limit int, now time.Time, q devices.Search) Page {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sorted == nil {
		t.sorted = make([]devices.EUI, 0, len(t.m))
		for id := range t.m {
			t.sorted = append(t.sorted, id)
		}
		slices.SortFunc(t.sorted, func(a, b devices.EUI) int { return compareEUI(a, b) })
	}
	p := Page{Total: len(t.sorted)}
	for _, id := range t.sorted {
		h := t.report(id, t.m[id], now)
		if h.Silent {
			p.Silent++
		}
		if !t.matches(&h, q) {
			continue
		}
		p.Matched++
		if compareEUI(id, cursor) <= 0 && !cursor.IsZero() {
			continue
		}
		if limit > 0 && len(p.Gateways) == limit {
			p.More = true
			continue
		}
		p.Gateways = append(p.Gateways, h)
	}
	return p
}

func (t *Table) matches(h *Health, q devices.Search) bool {
	if q == "" {
		return true
	}
	if q.MatchText(h.ID.String(), h.Name, h.Source) {
		return true
	}
	for k, v := range h.Tags {
		if q.MatchText(k, v) {
			return true
		}
	}
	return false
}

// Stats returns how many gateways are tracked, the bound on heard-only
// ones, how many of those were evicted since start, and how many are
// silent now.
func (t *Table) Stats(now time.Time) (entries, limit int, evicted uint64, silent int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, e := range t.m {
		if t.report(id, e, now).Silent {
			silent++
		}
	}
	return len(t.m), t.max, t.evicted, silent
}

// Each calls f with every gateway's report, in no order (for /metrics).
func (t *Table) Each(now time.Time, f func(Health)) {
	t.mu.Lock()
	reports := make([]Health, 0, len(t.m))
	for id, e := range t.m {
		reports = append(reports, t.report(id, e, now))
	}
	t.mu.Unlock()
	for _, h := range reports {
		f(h)
	}
}

func compareEUI(a, b devices.EUI) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

func cloneTags(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
