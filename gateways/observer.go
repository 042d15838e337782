package gateways

import (
	"time"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

// Observer feeds gateway health from the stats messages the pipeline
// took (a gateway.Observer).
type Observer struct {
	Table *Table
	// Now is when a message arrived.
	Now func() time.Time
}

var _ gateway.Observer = (*Observer)(nil)

// Observe implements gateway.Observer. The gateway was seen when it sent
// the message, or when it arrived if the message says a later time (a
// clock ahead) or none: a message queued while sensorgate was down then
// does not make a gateway that went silent look alive.
func (o *Observer) Observe(up gateway.Uplink, s gateway.Seen) {
	st := up.Gateway
	if up.Kind == gateway.KindUplink || st == nil || s.Rejection != nil {
		return
	}
	id, err := devices.ParseEUI(st.ID)
	if err != nil {
		return
	}
	seen := o.Now()
	if !up.LocalTime && !up.Time.IsZero() && up.Time.Before(seen) {
		seen = up.Time
	}
	ob := Observation{ID: id, Source: up.Source, Seen: seen,
		RxReceived: st.RxReceived, RxOK: st.RxOK, TxReceived: st.TxReceived, TxEmitted: st.TxEmitted}
	if l := st.Location; l != nil {
		ob.Location = &Location{Latitude: l.Latitude, Longitude: l.Longitude, Altitude: l.Altitude}
	}
	o.Table.Observe(ob)
}

// Tagger gives the pipeline a gateway's configured tags
// (gateway.Pipeline.Gateways).
type Tagger struct{ Table *Table }

// GatewayTags returns the tags configured for the gateway id, nil for
// none or an id that is not an EUI.
func (g Tagger) GatewayTags(id string) map[string]string {
	eui, err := devices.ParseEUI(id)
	if err != nil {
		return nil
	}
	_, tags, _ := g.Table.Lookup(eui)
	return tags
}
