package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// handleEvent takes a message that is not an uplink (Uplink.Kind): a
// device's status, join or log event becomes a point of the device or
// device_event measurement, tagged like the device's uplinks; gateway
// statistics a point of the gateway measurement; an ignored event is
// counted. As Handle, nil means durable (points or a dead letter).
func (p *Pipeline) handleEvent(ctx context.Context, up Uplink) error {
	if up.Kind == KindIgnored {
		p.inc("events_ignored")
		return nil
	}
	if up.Time.IsZero() {
		up.Time, up.LocalTime = p.now(), true
	}
	if up.LocalTime {
		p.count(cLocalTime)
	}
	pts, counter, err := p.eventPoints(up)
	if err != nil {
		var rej *Rejection
		if errors.As(err, &rej) {
			return p.deadLetter(ctx, up, rej, Seen{EUI: up.DevEUI, Time: up.Time})
		}
		return err
	}
	if len(pts) > 0 {
		if err := p.Sink.Write(ctx, pts); err != nil {
			if errors.Is(err, ErrRejected) {
				return p.deadLetter(ctx, up, &Rejection{Reason: ReasonRejected, Err: err}, Seen{EUI: up.DevEUI, Time: up.Time})
			}
			return fmt.Errorf("store the %s event's points: %w", counter, err)
		}
		p.countN(cPointsWritten, uint64(len(pts)))
	}
	p.inc(counter)
	if p.Observer != nil {
		p.Observer.Observe(up, Seen{Points: pts, EUI: up.DevEUI, Time: up.Time})
	}
	return nil
}

func (p *Pipeline) inc(name string) {
	if p.Counters != nil {
		p.Counters.Inc(name)
	}
}

// eventPoints builds an event's points and names the counter it counts
// under (a closed set).
func (p *Pipeline) eventPoints(up Uplink) ([]Point, string, error) {
	switch {
	case up.Kind == KindGatewayStats && up.Gateway != nil:
		return p.gatewayPoints(up), "gateway_stats", nil
	case up.Kind == KindStatus && up.Status != nil:
		dev, err := p.device(up, p.Sources[up.Source])
		if err != nil {
			return nil, "", err
		}
		return statusPoints(up, dev.tags), "device_status", nil
	case up.Kind == KindEvent && up.Event != nil:
		dev, err := p.device(up, p.Sources[up.Source])
		if err != nil {
			return nil, "", err
		}
		pt, counter := eventPoint(up, dev.tags)
		return []Point{pt}, counter, nil
	}
	return nil, "", reject(ReasonMalformed, "message of kind %d without its contents", up.Kind)
}

// statusPoints is the device point of a status event: batteryLevel (the
// catalogue quantity, %), margin (dB) and externalPower. None when the
// status says nothing.
func statusPoints(up Uplink, tags []Tag) []Point {
	st := up.Status
	var f []Field
	if st.HasBatteryLevel {
		f = append(f, FloatField("batteryLevel", st.BatteryLevel))
	}
	f = append(f, BoolField("externalPower", st.ExternalPower))
	if st.HasMargin {
		f = append(f, FloatField("margin", float64(st.Margin)))
	}
	return []Point{{Measurement: "device", Tags: tags, Fields: f, Time: up.Time}}
}

// eventTags are the device_event point's own tags.
var eventTags = map[string]bool{"type": true, "code": true, "level": true}

// eventPoint is the device_event point of a join or log event: the
// device's tags plus type, and for a log event level and code (each a
// closed set, so the tags stay bounded); fields dev_addr (join) or
// description (log).
func eventPoint(up Uplink, tags []Tag) (Point, string) {
	ev := up.Event
	t := make([]Tag, 0, len(tags)+3)
	for _, tg := range tags {
		if !eventTags[tg.Key] { // a device tag of the same key gives way
			t = append(t, tg)
		}
	}
	t = append(t, Tag{"type", ev.Type})
	var f []Field
	counter := "device_events." + ev.Type
	switch ev.Type {
	case EventJoin:
		f = []Field{StringField("dev_addr", ev.DevAddr)}
	default:
		t = append(t, Tag{"code", ev.Code}, Tag{"level", ev.Level})
		f = []Field{StringField("description", ev.Description)}
		counter += "." + ev.Level
	}
	slices.SortFunc(t, byTagKey)
	return Point{Measurement: "device_event", Tags: t, Fields: f, Time: up.Time}, counter
}

// GatewayTagger gives a gateway's configured tags (the gateways file or
// the API); nil when it has none.
type GatewayTagger interface {
	GatewayTags(id string) map[string]string
}

// gatewayPoints is the gateway point of a stats message: tags gateway_id,
// source and the gateway's configured tags GatewayTags allows; fields
// rx, rx_ok, tx, tx_ok (integers, counts of the stats interval) and
// latitude, longitude, altitude when the gateway sent a location.
func (p *Pipeline) gatewayPoints(up Uplink) []Point {
	st := up.Gateway
	tags := []Tag{{"gateway_id", st.ID}, {"source", up.Source}}
	if p.Gateways != nil && len(p.GatewayTags) > 0 {
		if gt := p.Gateways.GatewayTags(st.ID); gt != nil {
			for _, k := range p.GatewayTags {
				if v := gt[k]; v != "" && k != "gateway_id" && k != "source" {
					tags = append(tags, Tag{k, v})
				}
			}
		}
	}
	slices.SortFunc(tags, byTagKey)
	var f []Field
	if l := st.Location; l != nil {
		f = append(f, FloatField("altitude", l.Altitude), FloatField("latitude", l.Latitude), FloatField("longitude", l.Longitude))
	}
	f = append(f, IntField("rx", int64(min(st.RxReceived, 1<<62))), IntField("rx_ok", int64(min(st.RxOK, 1<<62))),
		IntField("tx", int64(min(st.TxReceived, 1<<62))), IntField("tx_ok", int64(min(st.TxEmitted, 1<<62))))
	return []Point{{Measurement: "gateway", Tags: tags, Fields: f, Time: up.Time}}
}
