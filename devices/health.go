package devices

import (
	"container/list"
	"context"
	"encoding/json"
	"sort"
	"time"
)

// Health tuning. Not settings: they describe LoRaWAN, not a deployment.
const (
	// DefaultSilentFactor: a device is silent after this many of its
	// usual intervals without an uplink.
	DefaultSilentFactor = 3
	// maxFCntGap is the largest frame-counter jump counted as lost
	// frames; a bigger one is a counter reset or a rejoin, not 16,000
	// frames lost while the device was otherwise heard.
	maxFCntGap = 16384
	// intervalWeight is the weight of the newest interval in the moving
	// average of a device's reporting interval.
	intervalWeight = 0.2
	// hours is the window of the per-day counts, in hourly buckets.
	hours = 24
	// DefaultMaxUnknown is how many devices missing from the registry
	// health and the unknown-device list track (devices.max_unknown).
	DefaultMaxUnknown = 10000
)

// Observation is what device health learns from one uplink the pipeline
// took (written as points or kept as a dead letter).
type Observation struct {
	EUI EUI
	// Time is the uplink's network-server time.
	Time time.Time
	// Name, Model and Source are the device, model and source tags the
	// uplink's points carry, kept so that health points carry them too.
	Name, Model, Source string

	FCnt    uint32
	HasFCnt bool
	RSSI    float64
	SNR     float64
	HasRSSI bool
	HasSNR  bool
	// Battery is in volts, BatteryLevel in percent (catalogue quantities
	// battery and batteryLevel), when the uplink carried them.
	Battery         float64
	HasBattery      bool
	BatteryLevel    float64
	HasBatteryLevel bool
	// DeadLetter is the dead-letter reason, "" when points were written.
	DeadLetter string
	// Unknown is set for a device missing from the registry: health keeps
	// at most MaxUnknown of those (registered devices are bounded by the
	// registry).
	Unknown bool
}

// DeviceHealth is one device's health report.
type DeviceHealth struct {
	DevEUI    EUI       `json:"dev_eui"`
	Name      string    `json:"name,omitempty"`
	Model     string    `json:"model,omitempty"`
	Source    string    `json:"source,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// LastSeenAge is seconds since LastSeen at the time of the report.
	LastSeenAge float64 `json:"last_seen_age_s"`
	// Uplinks24h counts uplinks of the last 24 hours (by uplink time),
	// redeliveries of a frame counted once.
	Uplinks24h int `json:"uplinks_24h"`
	// Lost24h counts frames missing from the frame-counter sequence in
	// the last 24 hours; LossPct is lost / (received + lost).
	Lost24h int     `json:"lost_24h"`
	LossPct float64 `json:"loss_pct"`
	// UplinksHourly is Uplinks24h per hour, oldest first, the current
	// hour last (24 counts), for a sparkline of the day.
	UplinksHourly []int `json:"uplinks_hourly"`
	// DeadLetters24h counts uplinks that could not become points (a
	// decoder error, an unknown model…), LastDeadLetter the latest reason.
	DeadLetters24h int    `json:"dead_letters_24h"`
	LastDeadLetter string `json:"last_dead_letter,omitempty"`
	// Interval is the device's usual reporting interval in seconds (a
	// moving average per frame), 0 until known.
	Interval float64 `json:"interval_s"`
	// Silent is set when no uplink came for SilentFactor intervals.
	Silent bool `json:"silent"`
	// Colour sums the health up as the status page shows it: see Colour.
	Colour       Colour   `json:"colour"`
	LastFCnt     *uint32  `json:"last_f_cnt,omitempty"`
	RSSI         *float64 `json:"rssi,omitempty"`
	SNR          *float64 `json:"snr,omitempty"`
	Battery      *float64 `json:"battery,omitempty"`       // V
	BatteryLevel *float64 `json:"battery_level,omitempty"` // %
	// LastJoin is the device's latest join, LastError the network
	// server's latest error about it ("code: description") and when.
	LastJoin      *time.Time `json:"last_join,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	LastErrorTime *time.Time `json:"last_error_time,omitempty"`
}

// deviceLatest is what a device's newest uplink said: saved with its
// health, and what instances sharing health exchange per device.
type deviceLatest struct {
	Name           string   `json:"name,omitempty"`
	Model          string   `json:"model,omitempty"`
	Source         string   `json:"source,omitempty"`
	FCnt           *uint32  `json:"f_cnt,omitempty"`
	Interval       float64  `json:"interval,omitempty"`
	RSSI           *float64 `json:"rssi,omitempty"`
	SNR            *float64 `json:"snr,omitempty"`
	Battery        *float64 `json:"battery,omitempty"`
	BatteryLevel   *float64 `json:"battery_level,omitempty"`
	LastDeadLetter string   `json:"last_dead_letter,omitempty"`
}

// hourBucket counts one hour of one device.
type hourBucket struct {
	Hour        int64  `json:"h"` // unix time / 3600
	Uplinks     uint32 `json:"u,omitempty"`
	Lost        uint32 `json:"l,omitempty"`
	DeadLetters uint32 `json:"d,omitempty"`
}

// healthState is what is kept per device, and persisted as JSON.
type healthState struct {
	deviceLatest
	FirstSeen time.Time         `json:"first_seen"`
	LastSeen  time.Time         `json:"last_seen"`
	Hours     [hours]hourBucket `json:"hours"`
	events

	persisted
	// unknown is the device's place in Health.unknown while it is not
	// registered, nil for a registered device.
	unknown *list.Element
	// sh holds the figures shared with other instances; nil on a single
	// instance (see Share).
	sh *sharedHealth
	// readings is where deviceLatest's optional readings point once set
	// by an uplink (setOpt): a state is never copied, so they stay its
	// own.
	readings struct {
		fcnt                             uint32
		rssi, snr, battery, batteryLevel float64
	}
}

// Health tracks every observed device's link health in memory: last seen,
// uplinks per day, frame loss from frame-counter gaps, radio, battery and
// whether it went silent. It is safe for concurrent use; Observe is on the
// hot path and only takes a lock and updates a few numbers.
//
// Registered devices are tracked all; devices missing from the registry
// (accepted from a network server) at most MaxUnknown, the least recently
// heard one evicted for a new one, so that a flood of made-up EUIs costs a
// bounded table.
type Health struct {
	// SilentFactor: silent after this many usual intervals without an
	// uplink (DefaultSilentFactor when 0).
	SilentFactor float64

	// tracked holds the devices' states and their save state; its mu
	// guards all of Health.
	tracked[*healthState]
	max     int
	unknown *list.List // EUIs of unregistered devices, most recently heard first
	evicted uint64
	// sorted holds m's entries by ascending EUI for paged listings, nil
	// after a device came or went (rebuilt by the next listing).
	sorted []healthEntry
	// share is set when instances share health (Share); nil, the figures
	// are this instance's own and saved through changes.
	share *shareState
	// registered tells a shared Health which devices the others' rows
	// name are registered (the rest count towards max).
	registered func(EUI) bool
	// journal, when set (a shared Health), records each frame observed
	// until a sync wrote it: healthjournal.go. Set before the first
	// Observe, never changed after.
	journal *healthJournal
}

// NewHealth returns an empty tracker keeping up to DefaultMaxUnknown
// unregistered devices.
func NewHealth(silentFactor float64) *Health {
	return &Health{SilentFactor: silentFactor, tracked: newTracked(healthStateRow), max: DefaultMaxUnknown,
		unknown: list.New()}
}

// SetMaxUnknown sets how many unregistered devices are tracked (at least
// 1), evicting the least recently heard ones beyond it.
func (h *Health) SetMaxUnknown(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.max = max(n, 1)
	for h.unknown.Len() > h.max {
		h.evictOldest()
	}
}

// evictOldest drops the least recently heard unregistered device; h.mu is
// held.
func (h *Health) evictOldest() {
	back := h.unknown.Back()
	e := back.Value.(EUI)
	h.unknown.Remove(back)
	if st, ok := h.m[e]; ok {
		h.removed(e, st)
		delete(h.m, e)
		h.sorted = nil
	}
	h.evicted++
}

// Stats returns how many devices are tracked, how many of them are not
// registered, and how many unregistered ones were evicted since start.
func (h *Health) Stats() (devices, unknown int, evicted uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.m), h.unknown.Len(), h.evicted
}

// Observe records one uplink.
func (h *Health) Observe(o Observation) {
	if o.EUI.IsZero() || o.Time.IsZero() {
		return
	}
	if j := h.journal; j != nil && o.HasFCnt {
		// After the update below (defers run last first): a sync that
		// starts a new journal file has then taken the frame with it.
		defer j.append(o.EUI, o.Time, o.FCnt)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	st, ok := h.m[o.EUI]
	if !ok {
		st = &healthState{FirstSeen: o.Time}
		h.m[o.EUI] = st
		h.sorted = nil
	}
	switch {
	case o.Unknown && st.unknown == nil: // new, or no longer registered
		st.unknown = h.unknown.PushFront(o.EUI)
		for h.unknown.Len() > h.max { // never st: it is in front, and max is at least 1
			h.evictOldest()
		}
	case o.Unknown:
		h.unknown.MoveToFront(st.unknown)
	case st.unknown != nil: // registered since
		h.unknown.Remove(st.unknown)
		st.unknown = nil
	}
	h.touched(o.EUI, st)
	if o.Time.Before(st.FirstSeen) {
		st.FirstSeen = o.Time
	}
	latest := !o.Time.Before(st.LastSeen)
	lost := uint32(0)
	frames := uint32(1)
	late := false
	if o.HasFCnt && st.FCnt != nil {
		last := *st.FCnt
		switch {
		case o.FCnt == last:
			return // the same frame again (a redelivery): counted already
		case o.FCnt > last && o.FCnt-last-1 < maxFCntGap && latest:
			lost = o.FCnt - last - 1
			frames += lost
		case o.FCnt < last && last-o.FCnt < maxFCntGap && !latest:
			// A late frame (handled after a later one, e.g. concurrent
			// handlers or a redelivery after a reconnect) fills a gap
			// that was counted as lost when the later frame came.
			late = true
		}
		// Lower with a newer time (a reset) or a huge jump: a new sequence.
	}
	if h.share != nil {
		h.share.observe(o, st)
	} else {
		if late {
			st.found()
		}
		if b := st.bucket(o.Time); b != nil {
			b.Uplinks++
			b.Lost += lost
			if o.DeadLetter != "" {
				b.DeadLetters++
			}
		}
	}
	if o.DeadLetter != "" {
		st.LastDeadLetter = o.DeadLetter
	}
	if !latest {
		return // a late message: counted, but the last-seen values stay
	}
	if !st.LastSeen.IsZero() {
		if gap := o.Time.Sub(st.LastSeen).Seconds() / float64(frames); gap > 0 {
			if st.Interval == 0 {
				st.Interval = gap
			} else {
				st.Interval += intervalWeight * (gap - st.Interval)
			}
		}
	}
	st.LastSeen = o.Time
	if o.Name != "" {
		st.Name, st.Model, st.Source = o.Name, o.Model, o.Source
	}
	setOpt(&st.FCnt, &st.readings.fcnt, o.FCnt, o.HasFCnt)
	setOpt(&st.RSSI, &st.readings.rssi, o.RSSI, o.HasRSSI)
	setOpt(&st.SNR, &st.readings.snr, o.SNR, o.HasSNR)
	setOpt(&st.Battery, &st.readings.battery, o.Battery, o.HasBattery)
	setOpt(&st.BatteryLevel, &st.readings.batteryLevel, o.BatteryLevel, o.HasBatteryLevel)
}

// touched marks a device changed for the next save, or the next sync
// when shared; h.mu is held.
func (h *Health) touched(e EUI, st *healthState) {
	if h.share != nil {
		h.share.touched(e, st)
		return
	}
	h.changes.touched(e, &st.persisted)
}

// removed notes a device left the table; h.mu is held.
func (h *Health) removed(e EUI, st *healthState) {
	if h.share != nil {
		h.share.removed(e, st)
		return
	}
	h.changes.removed(e, &st.persisted)
}

// setOpt stores v in *dst if ok, pointing *dst at backing (memory of
// the state itself) the first time: this runs for every uplink, and a
// reading of its own was an allocation per device and a cache miss per
// uplink with a large fleet. Snapshots copy the values out.
func setOpt[T any](dst **T, backing *T, v T, ok bool) {
	if !ok {
		return
	}
	if *dst == nil {
		*dst = backing
	}
	**dst = v
}

// found takes back one frame counted as lost, from the newest hour that
// has one: the gap a late frame fills was counted when the frame after it
// arrived, which is at most a few buckets later.
func (st *healthState) found() {
	var newest *hourBucket
	for i := range st.Hours {
		if b := &st.Hours[i]; b.Lost > 0 && (newest == nil || b.Hour > newest.Hour) {
			newest = b
		}
	}
	if newest != nil {
		newest.Lost--
	}
}

// bucket returns the hour bucket of t, recycling the bucket of 24 hours
// earlier; nil when t is older than the window.
func (st *healthState) bucket(t time.Time) *hourBucket {
	h := t.Unix() / 3600
	b := &st.Hours[((h%hours)+hours)%hours]
	switch {
	case b.Hour == h:
	case b.Hour < h:
		*b = hourBucket{Hour: h}
	default:
		return nil
	}
	return b
}

// LastFCnt returns the frame counter of a device's latest uplink, if one
// had a counter: a caller that looks before Observe sees what the uplink
// follows (the daemon's check for a broker that dropped queued messages).
func (h *Health) LastFCnt(eui EUI) (uint32, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if st, ok := h.m[eui]; ok && st.FCnt != nil {
		return *st.FCnt, true
	}
	return 0, false
}

// Forget drops a device (deleted from the registry).
func (h *Health) Forget(eui EUI) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.drop(eui)
}

// drop removes a device; h.mu is held.
func (h *Health) drop(eui EUI) {
	st, ok := h.m[eui]
	if !ok {
		return
	}
	if st.unknown != nil {
		h.unknown.Remove(st.unknown)
	}
	h.removed(eui, st)
	delete(h.m, eui)
	h.sorted = nil
}

// Get returns one device's health at now.
func (h *Health) Get(eui EUI, now time.Time) (DeviceHealth, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, ok := h.m[eui]
	if !ok {
		return DeviceHealth{}, false
	}
	return h.report(eui, st, now), true
}

// Report returns every observed device's health at now, sorted by name.
func (h *Health) Report(now time.Time) []DeviceHealth {
	h.mu.Lock()
	out := make([]DeviceHealth, 0, len(h.m))
	for e, st := range h.m {
		out = append(out, h.report(e, st, now))
	}
	h.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].DevEUI.String() < out[j].DevEUI.String()
	})
	return out
}

func (h *Health) report(eui EUI, st *healthState, now time.Time) DeviceHealth {
	r := h.summary(eui, st, now, true)
	r.LastFCnt = cloneOpt(st.FCnt)
	r.RSSI, r.SNR = cloneOpt(st.RSSI), cloneOpt(st.SNR)
	r.Battery, r.BatteryLevel = cloneOpt(st.Battery), cloneOpt(st.BatteryLevel)
	st.events.report(&r)
	return r
}

// summary is report without the optional readings, and without the
// hourly counts unless hourly: what a filter and the counts of a paged
// listing need, without allocating per device.
func (h *Health) summary(eui EUI, st *healthState, now time.Time, hourly bool) DeviceHealth {
	r := DeviceHealth{
		DevEUI: eui, Name: st.Name, Model: st.Model, Source: st.Source,
		FirstSeen: st.FirstSeen, LastSeen: st.LastSeen, Interval: st.Interval,
		LastDeadLetter: st.LastDeadLetter,
	}
	if r.Name == "" {
		r.Name = eui.String()
	}
	r.LastSeenAge = max(now.Sub(st.LastSeen).Seconds(), 0)
	first := now.Unix()/3600 - hours + 1
	if hourly {
		r.UplinksHourly = make([]int, hours)
	}
	for _, b := range st.Hours {
		if b.Hour >= first {
			r.Uplinks24h += int(b.Uplinks)
			r.Lost24h += int(b.Lost)
			r.DeadLetters24h += int(b.DeadLetters)
			if i := b.Hour - first; hourly && i < hours { // a device clock ahead of ours lands past the end
				r.UplinksHourly[i] = int(b.Uplinks)
			}
		}
	}
	if n := r.Uplinks24h + r.Lost24h; n > 0 {
		r.LossPct = 100 * float64(r.Lost24h) / float64(n)
	}
	if r.Interval == 0 && r.Uplinks24h > 1 && st.LastSeen.After(st.FirstSeen) {
		// Every uplink after the first was handled out of time order, so
		// the running estimate never started: use the mean spacing.
		span := st.LastSeen.Sub(st.FirstSeen).Seconds()
		r.Interval = span / float64(r.Uplinks24h+r.Lost24h-1)
	}
	factor := h.SilentFactor
	if factor <= 0 {
		factor = DefaultSilentFactor
	}
	r.Silent = r.Interval > 0 && r.LastSeenAge > factor*r.Interval
	r.Colour = colourOf(&r)
	return r
}

func cloneOpt[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// SaveHealth writes what changed in device health since the last save
// (changed devices, evicted or forgotten ones), in transactions of a few
// hundred rows, until done or ctx ends: what is left is written by the
// next save. A restart keeps last seen, counts and intervals.
func (s *Store) SaveHealth(ctx context.Context, h *Health) error {
	return s.saveChanges(ctx, "health", h)
}

// healthStateRow is a health state's save state and row.
func healthStateRow(st *healthState) (*persisted, any) { return &st.persisted, st }

// LoadHealth reads the persisted health states into h. A state that does
// not decode is dropped: health rebuilds itself from the next uplinks.
// Devices the registry does not hold count towards MaxUnknown; beyond it
// their rows are deleted by the next save.
func (s *Store) LoadHealth(ctx context.Context, h *Health) error {
	states, err := s.loadStates(ctx, "health")
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	type loaded struct {
		eui EUI
		st  *healthState
	}
	var unknown []loaded
	for e, b := range states {
		st := new(healthState)
		if json.Unmarshal(b, st) != nil {
			h.changes.gone[e] = struct{}{}
			continue
		}
		st.saved = true
		if _, registered := s.reg.Lookup(e); registered {
			h.m[e] = st
			h.sorted = nil
			continue
		}
		unknown = append(unknown, loaded{e, st})
	}
	// The most recently heard unregistered devices are kept.
	sort.Slice(unknown, func(i, j int) bool { return unknown[i].st.LastSeen.After(unknown[j].st.LastSeen) })
	for _, u := range unknown {
		if _, dup := h.m[u.eui]; dup {
			continue
		}
		if h.unknown.Len() >= h.max {
			h.changes.gone[u.eui] = struct{}{}
			continue
		}
		u.st.unknown = h.unknown.PushBack(u.eui)
		h.m[u.eui] = u.st
		h.sorted = nil
	}
	return nil
}
