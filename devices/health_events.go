package devices

import "time"

// EventObservation is what device health learns from a network server's
// event about a device (ChirpStack's status, join and log events, The
// Things Stack's join): not an uplink, so it counts as none.
type EventObservation struct {
	EUI  EUI
	Time time.Time
	// Join marks a join: the device sent a join request and was let in.
	Join bool
	// Error is an error-level log event's "code: description".
	Error string
	// BatteryLevel is a status event's battery level (%).
	BatteryLevel    float64
	HasBatteryLevel bool
	// Registered is set for a device in the registry: only those get an
	// entry from an event alone (a join comes before the first uplink),
	// so events cannot grow the table past the registry.
	Registered bool
}

// events is the part of a device's health its events set, as saved with
// the rest (healthRow).
type events struct {
	LastJoin      time.Time `json:"last_join,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
}

// reportEvents adds what the device's events set to r.
func (st healthRef) reportEvents(r *DeviceHealth) {
	if !st.LastJoin.isZero() {
		t := st.LastJoin.time()
		r.LastJoin = &t
	}
	if st.lastError != "" {
		t := st.LastErrorTime.time()
		r.LastError, r.LastErrorTime = st.lastError, &t
	}
}

// ObserveEvent records a device event. A device health does not track yet
// gets an entry only when it is registered and the event is a join, the
// one event that comes before a device's first uplink.
func (h *Health) ObserveEvent(o EventObservation) {
	if o.EUI.IsZero() || o.Time.IsZero() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	t := stampOf(o.Time)
	st, ok := h.lookup(o.EUI)
	if !ok {
		if !o.Registered || !o.Join {
			return
		}
		st = h.add(o.EUI)
		st.FirstSeen, st.LastSeen = t, t
	}
	h.changes.touched(o.EUI, &st.persisted)
	if o.Join && st.LastJoin.before(t) {
		st.LastJoin = t
	}
	if o.Error != "" && !t.before(st.LastErrorTime) {
		st.lastError, st.LastErrorTime = o.Error, t
	}
	if o.HasBatteryLevel && !t.before(st.LastSeen) {
		st.setReading(hasBatteryLevel, &st.batteryLevel, o.BatteryLevel, true)
	}
}
