package devices

import (
	"container/list"
	"time"
)

// Device health's table. With a city's fleet every registered device has
// a record, and the collector marks whatever holds pointers on every
// cycle: a record per device as its own object, full of strings, times
// (a *Location each) and boxed readings, cost it a scan of 100,000
// objects per cycle and a cache miss or more per uplink. So the figures
// an uplink updates live in chunks of pointer-free records (the
// collector does not look inside them), found by a slot number from a
// map whose keys and values hold no pointers either; the few strings
// and links a record has live beside it, in chunks of their own.

// stateChunk is how many records one chunk holds: chunks never move, so
// a record's address stays valid while it is in the table.
const stateChunk = 1024

// stamp is a time without location (reported in UTC), kept without the
// pointer a time.Time holds. sec counts from the zero time, so the zero
// stamp is the zero time.
type stamp struct {
	sec  int64
	nsec int32
}

// zeroToUnix is the Unix time of time.Time{}.
const zeroToUnix = -62135596800

func stampOf(t time.Time) stamp {
	return stamp{sec: t.Unix() - zeroToUnix, nsec: int32(t.Nanosecond())}
}

func (s stamp) time() time.Time {
	if s == (stamp{}) {
		return time.Time{}
	}
	return time.Unix(s.sec+zeroToUnix, int64(s.nsec)).UTC()
}

func (s stamp) isZero() bool { return s == stamp{} }

func (s stamp) before(u stamp) bool { return s.sec < u.sec || s.sec == u.sec && s.nsec < u.nsec }

// sub is s - u in seconds, as time.Time.Sub(…).Seconds() has it.
func (s stamp) sub(u stamp) float64 { return s.time().Sub(u.time()).Seconds() }

// Which optional readings a record holds (healthState.has).
const (
	hasFCnt uint8 = 1 << iota
	hasRSSI
	hasSNR
	hasBattery
	hasBatteryLevel
)

// healthState is one device's figures: no pointers (see above). What
// every uplink reads and writes is in the first 64 bytes, and a record
// is a whole number of cache lines (chunks are page-aligned), so an
// uplink touches that line and its hour's.
type healthState struct {
	LastSeen, FirstSeen stamp
	// Interval is the moving average of the reporting interval, seconds.
	Interval float64
	fcnt     uint32
	has      uint8
	persisted
	rssi, snr float64
	// The rest is read by reports, written by some uplinks and events.
	battery, batteryLevel   float64
	LastJoin, LastErrorTime stamp
	_                       [16]byte
	Hours                   [hours]hourBucket
}

// healthAux is what a record has that holds pointers.
type healthAux struct {
	name, model, source string
	lastDeadLetter      string
	lastError           string
	// unknown is the device's place in Health.unknown while it is not
	// registered, nil for a registered device.
	unknown *list.Element
	// sh holds the figures shared with other instances; nil on a single
	// instance (see Share).
	sh *sharedHealth
}

// healthRef is a record and its pointers, as the table hands it out: on
// the stack only (the table's slot is what is kept), valid while
// Health.mu is held and the device stays.
type healthRef struct {
	*healthState
	*healthAux
}

// healthTable is the records' storage; Health.mu guards it.
type healthTable struct {
	states []*[stateChunk]healthState
	aux    []*[stateChunk]healthAux
	free   []int32 // released slots, reused first
	used   int32   // slots handed out from the chunks so far
}

func (t *healthTable) at(i int32) healthRef {
	return healthRef{&t.states[i/stateChunk][i%stateChunk], &t.aux[i/stateChunk][i%stateChunk]}
}

// add returns a zeroed record and its slot.
func (t *healthTable) add() (int32, healthRef) {
	var i int32
	if n := len(t.free); n > 0 {
		i, t.free = t.free[n-1], t.free[:n-1]
	} else {
		if int(t.used) == len(t.states)*stateChunk {
			t.states = append(t.states, new([stateChunk]healthState))
			t.aux = append(t.aux, new([stateChunk]healthAux))
		}
		i = t.used
		t.used++
	}
	return i, t.at(i)
}

// release zeroes slot i for reuse; the free list is bounded by the
// slots ever handed out.
func (t *healthTable) release(i int32) {
	r := t.at(i)
	*r.healthState, *r.healthAux = healthState{}, healthAux{}
	t.free = append(t.free, i)
}

// setReading stores an optional reading v if ok (the uplink carried it).
func (st *healthState) setReading(bit uint8, dst *float64, v float64, ok bool) {
	if ok {
		*dst = v
		st.has |= bit
	}
}

// opt returns v as a reading of its own if the record holds it.
func opt[T any](st *healthState, bit uint8, v T) *T {
	if st.has&bit == 0 {
		return nil
	}
	return &v
}

// latest is the record's deviceLatest, as saved and shared.
func (r healthRef) latest() deviceLatest {
	return deviceLatest{
		Name: r.name, Model: r.model, Source: r.source, Interval: r.Interval,
		FCnt: opt(r.healthState, hasFCnt, r.fcnt), RSSI: opt(r.healthState, hasRSSI, r.rssi),
		SNR: opt(r.healthState, hasSNR, r.snr), Battery: opt(r.healthState, hasBattery, r.battery),
		BatteryLevel:   opt(r.healthState, hasBatteryLevel, r.batteryLevel),
		LastDeadLetter: r.lastDeadLetter,
	}
}

// setLatest replaces the record's latest values with v.
func (r healthRef) setLatest(v *deviceLatest) {
	r.name, r.model, r.source, r.Interval, r.lastDeadLetter = v.Name, v.Model, v.Source, v.Interval, v.LastDeadLetter
	r.has = 0
	if v.FCnt != nil {
		r.fcnt, r.has = *v.FCnt, r.has|hasFCnt
	}
	set := func(bit uint8, dst *float64, p *float64) {
		if p != nil {
			r.setReading(bit, dst, *p, true)
		}
	}
	set(hasRSSI, &r.rssi, v.RSSI)
	set(hasSNR, &r.snr, v.SNR)
	set(hasBattery, &r.battery, v.Battery)
	set(hasBatteryLevel, &r.batteryLevel, v.BatteryLevel)
}

// healthRow is a record as saved (the health table's JSON, unchanged
// from when the record itself was written).
type healthRow struct {
	deviceLatest
	FirstSeen time.Time         `json:"first_seen"`
	LastSeen  time.Time         `json:"last_seen"`
	Hours     [hours]hourBucket `json:"hours"`
	events
}

func (r healthRef) row() healthRow {
	return healthRow{
		deviceLatest: r.latest(), FirstSeen: r.FirstSeen.time(), LastSeen: r.LastSeen.time(), Hours: r.Hours,
		events: events{LastJoin: r.LastJoin.time(), LastError: r.lastError, LastErrorTime: r.LastErrorTime.time()},
	}
}

func (r healthRef) setRow(row *healthRow) {
	r.setLatest(&row.deviceLatest)
	r.FirstSeen, r.LastSeen, r.Hours = stampOf(row.FirstSeen), stampOf(row.LastSeen), row.Hours
	r.LastJoin, r.lastError, r.LastErrorTime = stampOf(row.LastJoin), row.LastError, stampOf(row.LastErrorTime)
}
