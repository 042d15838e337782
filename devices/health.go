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

	// tracked holds the devices' slots in table and their save state;
	// its mu guards all of Health.
	tracked[int32]
	table healthTable
	// slots is m again, for the uplink's lookup (one cache line where
	// the map takes two); add and remove keep both.
	slots   euiIndex
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
	h := &Health{SilentFactor: silentFactor, max: DefaultMaxUnknown, unknown: list.New()}
	h.tracked = newTracked(h.stateRow)
	return h
}

// lookup returns a device's record; h.mu is held.
func (h *Health) lookup(e EUI) (healthRef, bool) {
	i, ok := h.slots.get(e)
	if !ok {
		return healthRef{}, false
	}
	return h.table.at(i), true
}

// add starts a record for a device not in the table (e not zero); h.mu
// is held.
func (h *Health) add(e EUI) healthRef {
	i, st := h.table.add()
	h.m[e] = i
	h.slots.set(e, i)
	h.sorted = nil
	return st
}

// remove drops a device's record (its list element and save state are
// the caller's); h.mu is held.
func (h *Health) remove(e EUI) {
	if i, ok := h.m[e]; ok {
		delete(h.m, e)
		h.slots.del(e)
		h.table.release(i)
		h.sorted = nil
	}
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
	if st, ok := h.lookup(e); ok {
		h.removed(e, st)
		h.remove(e)
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
	t := stampOf(o.Time)
	st, ok := h.lookup(o.EUI)
	if !ok {
		st = h.add(o.EUI)
		st.FirstSeen = t
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
	if t.before(st.FirstSeen) {
		st.FirstSeen = t
	}
	latest := !t.before(st.LastSeen)
	lost := uint32(0)
	frames := uint32(1)
	late := false
	if o.HasFCnt && st.has&hasFCnt != 0 {
		last := st.fcnt
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
		st.lastDeadLetter = o.DeadLetter
	}
	if !latest {
		return // a late message: counted, but the last-seen values stay
	}
	if !st.LastSeen.isZero() {
		if gap := t.sub(st.LastSeen) / float64(frames); gap > 0 {
			if st.Interval == 0 {
				st.Interval = gap
			} else {
				st.Interval += intervalWeight * (gap - st.Interval)
			}
		}
	}
	st.LastSeen = t
	if o.Name != "" {
		st.name, st.model, st.source = o.Name, o.Model, o.Source
	}
	if o.HasFCnt {
		st.fcnt, st.has = o.FCnt, st.has|hasFCnt
	}
	st.setReading(hasRSSI, &st.rssi, o.RSSI, o.HasRSSI)
	st.setReading(hasSNR, &st.snr, o.SNR, o.HasSNR)
	st.setReading(hasBattery, &st.battery, o.Battery, o.HasBattery)
	st.setReading(hasBatteryLevel, &st.batteryLevel, o.BatteryLevel, o.HasBatteryLevel)
}

// touched marks a device changed for the next save, or the next sync
// when shared; h.mu is held.
func (h *Health) touched(e EUI, st healthRef) {
	if h.share != nil {
		h.share.touched(e, st)
		return
	}
	h.changes.touched(e, &st.persisted)
}

// removed notes a device left the table; h.mu is held.
func (h *Health) removed(e EUI, st healthRef) {
	if h.share != nil {
		h.share.removed(e, st)
		return
	}
	h.changes.removed(e, &st.persisted)
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
	if st, ok := h.lookup(eui); ok && st.has&hasFCnt != 0 {
		return st.fcnt, true
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
	st, ok := h.lookup(eui)
	if !ok {
		return
	}
	if st.unknown != nil {
		h.unknown.Remove(st.unknown)
	}
	h.removed(eui, st)
	h.remove(eui)
}

// Get returns one device's health at now.
func (h *Health) Get(eui EUI, now time.Time) (DeviceHealth, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, ok := h.lookup(eui)
	if !ok {
		return DeviceHealth{}, false
	}
	return h.report(eui, st, now), true
}

// Report returns every observed device's health at now, sorted by name.
func (h *Health) Report(now time.Time) []DeviceHealth {
	h.mu.Lock()
	out := make([]DeviceHealth, 0, len(h.m))
	for e, i := range h.m {
		out = append(out, h.report(e, h.table.at(i), now))
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

func (h *Health) report(eui EUI, st healthRef, now time.Time) DeviceHealth {
	r := h.summary(eui, st, now, true)
	r.LastFCnt = opt(st.healthState, hasFCnt, st.fcnt)
	r.RSSI, r.SNR = opt(st.healthState, hasRSSI, st.rssi), opt(st.healthState, hasSNR, st.snr)
	r.Battery = opt(st.healthState, hasBattery, st.battery)
	r.BatteryLevel = opt(st.healthState, hasBatteryLevel, st.batteryLevel)
	st.reportEvents(&r)
	return r
}

// summary is report without the optional readings, and without the
// hourly counts unless hourly: what a filter and the counts of a paged
// listing need, without allocating per device.
func (h *Health) summary(eui EUI, st healthRef, now time.Time, hourly bool) DeviceHealth {
	r := DeviceHealth{
		DevEUI: eui, Name: st.name, Model: st.model, Source: st.source,
		FirstSeen: st.FirstSeen.time(), LastSeen: st.LastSeen.time(), Interval: st.Interval,
		LastDeadLetter: st.lastDeadLetter,
	}
	if r.Name == "" {
		r.Name = eui.String()
	}
	r.LastSeenAge = max(now.Sub(r.LastSeen).Seconds(), 0)
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
	if r.Interval == 0 && r.Uplinks24h > 1 && st.FirstSeen.before(st.LastSeen) {
		// Every uplink after the first was handled out of time order, so
		// the running estimate never started: use the mean spacing.
		span := st.LastSeen.sub(st.FirstSeen)
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

// SaveHealth writes what changed in device health since the last save
// (changed devices, evicted or forgotten ones), in transactions of a few
// hundred rows, until done or ctx ends: what is left is written by the
// next save. A restart keeps last seen, counts and intervals.
func (s *Store) SaveHealth(ctx context.Context, h *Health) error {
	return s.saveChanges(ctx, "health", h)
}

// stateRow is a device's save state and row, by slot.
func (h *Health) stateRow(i int32) (*persisted, any) {
	st := h.table.at(i)
	return &st.persisted, st.row()
}

// LoadHealth reads the persisted health states into h. A state that does
// not decode (or of the zero EUI, which no uplink has) is dropped: health rebuilds itself from the next uplinks.
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
		row *healthRow
	}
	var unknown []loaded
	for e, b := range states {
		row := new(healthRow)
		if e.IsZero() || json.Unmarshal(b, row) != nil {
			h.changes.gone[e] = struct{}{}
			continue
		}
		if _, registered := s.reg.Lookup(e); registered {
			h.load(e, row)
			continue
		}
		unknown = append(unknown, loaded{e, row})
	}
	// The most recently heard unregistered devices are kept.
	sort.Slice(unknown, func(i, j int) bool { return unknown[i].row.LastSeen.After(unknown[j].row.LastSeen) })
	for _, u := range unknown {
		if _, dup := h.m[u.eui]; dup {
			continue
		}
		if h.unknown.Len() >= h.max {
			h.changes.gone[u.eui] = struct{}{}
			continue
		}
		h.load(u.eui, u.row).unknown = h.unknown.PushBack(u.eui)
	}
	return nil
}

// load adds a saved record; h.mu is held.
func (h *Health) load(e EUI, row *healthRow) healthRef {
	st, ok := h.lookup(e)
	if !ok {
		st = h.add(e)
	}
	st.setRow(row)
	st.saved = true
	return st
}
