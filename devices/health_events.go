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

// events is the part of a device's health its events set, persisted with
// the rest.
type events struct {
	LastJoin      time.Time `json:"last_join,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
}

func (e *events) report(r *DeviceHealth) {
	if !e.LastJoin.IsZero() {
		t := e.LastJoin
		r.LastJoin = &t
	}
	if e.LastError != "" {
		t := e.LastErrorTime
		r.LastError, r.LastErrorTime = e.LastError, &t
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
	st, ok := h.m[o.EUI]
	if !ok {
		if !o.Registered || !o.Join {
			return
		}
		st = &healthState{FirstSeen: o.Time, LastSeen: o.Time}
		h.m[o.EUI] = st
		h.sorted = nil
	}
	h.changes.touched(o.EUI, &st.persisted)
	if o.Join && o.Time.After(st.LastJoin) {
		st.LastJoin = o.Time
	}
	if o.Error != "" && !o.Time.Before(st.LastErrorTime) {
		st.LastError, st.LastErrorTime = o.Error, o.Time
	}
	if o.HasBatteryLevel && !o.Time.Before(st.LastSeen) {
		setOpt(&st.BatteryLevel, &st.readings.batteryLevel, o.BatteryLevel, true)
	}
}
