package health

import (
	"time"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

// Observer feeds device health and the unknown-device list from the
// pipeline. It runs on the hot path and does no lookup of its own: the
// pipeline's Seen says which device it was and what its points carry. It
// copies bytes only for unregistered devices.
type Observer struct {
	Health   *devices.Health
	Unknowns *devices.Unknowns
	// Registry names the device of a network-server event that carries
	// only a device name (events are not resolved by the pipeline).
	Registry *devices.Registry
	// Now dates an uplink the pipeline refused before it had a time.
	Now func() time.Time
}

var _ gateway.Observer = (*Observer)(nil)

// Observe implements gateway.Observer.
func (o *Observer) Observe(up gateway.Uplink, s gateway.Seen) {
	if up.Kind != gateway.KindUplink {
		o.observeEvent(up, s)
		return
	}
	if s.EUI.IsZero() {
		return // a message that named no device, or a name nobody knows
	}
	t := s.Time
	if t.IsZero() {
		t = up.Time
	}
	if t.IsZero() {
		t = o.Now()
	}
	if !s.Registered {
		o.Unknowns.Observe(devices.UnknownObservation{EUI: s.EUI, Time: t, Source: up.Source, Name: up.DeviceName,
			Profile: up.Profile, Accepted: s.Rejection == nil, FPort: up.FPort, Payload: up.Payload, Raw: up.Raw})
		if s.Rejection != nil {
			return // not ours to track until adopted
		}
	}
	obs := devices.Observation{EUI: s.EUI, Time: t, Name: s.Name, Model: s.Model, Source: up.Source,
		FCnt: up.FCnt, HasFCnt: up.HasFCnt, Unknown: !s.Registered,
		Battery: s.Battery, HasBattery: s.HasBattery, BatteryLevel: s.BatteryLevel, HasBatteryLevel: s.HasBatteryLevel}
	if best, ok := up.Radio.Best(); ok {
		obs.RSSI, obs.HasRSSI = best.RSSI, true
		obs.SNR, obs.HasSNR = best.SNR, best.HasSNR
	}
	if s.Rejection != nil {
		obs.DeadLetter = string(s.Rejection.Reason)
	}
	o.Health.Observe(obs)
}

// observeEvent feeds device health from a device event the pipeline
// wrote: last join, latest error, battery level. Events of devices the
// registry does not list, and events that became dead letters, change
// nothing (the unknown-device list is of uplinks).
func (o *Observer) observeEvent(up gateway.Uplink, s gateway.Seen) {
	if s.Rejection != nil || (up.Event == nil && up.Status == nil) || o.Registry == nil {
		return
	}
	eui := up.DevEUI
	_, known := o.Registry.Lookup(eui)
	if eui.IsZero() {
		var d *devices.Device
		if d, known = o.Registry.LookupName(up.DeviceName); known {
			eui = d.EUI
		}
	}
	ev := devices.EventObservation{EUI: eui, Time: up.Time, Registered: known}
	switch {
	case up.Status != nil:
		ev.BatteryLevel, ev.HasBatteryLevel = up.Status.BatteryLevel, up.Status.HasBatteryLevel
	case up.Event.Type == gateway.EventJoin:
		ev.Join = true
	case up.Event.Level == gateway.LevelError:
		ev.Error = up.Event.Code + ": " + up.Event.Description
	default:
		return
	}
	o.Health.ObserveEvent(ev)
}
