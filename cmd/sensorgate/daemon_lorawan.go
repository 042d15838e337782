package main

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/lorawan"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/gateway/webhook"
)

// newSource builds the source of one config entry and the pipeline's
// policy for it: an MQTT feed of a network server or of sensors, an MQTT
// feed of raw frames (format gateway-bridge), a Semtech UDP listener, or
// an HTTP listener for network-server webhooks. Every source gets
// uplink_gateway points: raw frames because sensorgate is the only place
// that sees every gateway's copy, network-server feeds because they list
// every gateway's reception (a generic JSON feed lists none, so it writes
// none).
func (d *Daemon) newSource(sc config.Source, devs lorawan.DevAddrLookup, log zerolog.Logger) (gateway.Source, gateway.SourcePolicy, error) {
	switch {
	case sc.UDP != nil:
		src, err := lorawan.New(*sc.UDP, devs, d.dlw, d.Counters, log)
		if err == nil {
			d.frames = append(d.frames, rawFeed{frames: src.Frames()}) // UDP cannot redeliver: no instance name
		}
		return src, gateway.SourcePolicy{GatewayPoints: true}, err
	case sc.MQTT != nil && sc.MQTT.Format == mqtt.FormatGatewayBridge:
		fc, _ := sc.FrameConfig() // zero (lorawan's defaults) for a Config built without SetDefaults
		frames, err := lorawan.NewFrames(sc.MQTT.Name, fc, devs, d.dlw, d.Counters, log)
		if err != nil {
			return nil, gateway.SourcePolicy{}, err
		}
		d.frames = append(d.frames, rawFeed{frames: frames, instance: sc.MQTT.ClientID})
		src, err := mqtt.New(*sc.MQTT, d.dlw, log, mqtt.WithMessageHandler(frames.HandleBridge))
		return src, gateway.SourcePolicy{GatewayPoints: true, Map: sc.MQTT.Map}, err
	case sc.MQTT != nil:
		src, err := mqtt.New(*sc.MQTT, eventCounted{next: d.dlw, counters: d.Counters}, log)
		return src, gateway.SourcePolicy{AcceptUnknown: !sc.MQTT.RejectUnknown(), Map: sc.MQTT.Map, GatewayPoints: true}, err
	case sc.HTTP != nil:
		src, err := webhook.New(*sc.HTTP, eventCounted{next: d.dlw, counters: d.Counters}, d.Counters, log, webhook.WithEvents(webhookEvents))
		if err == nil {
			d.webhooks = append(d.webhooks, src)
		}
		return src, gateway.SourcePolicy{AcceptUnknown: !sc.HTTP.RejectUnknown(), Map: sc.HTTP.Map, GatewayPoints: true}, err
	}
	return nil, gateway.SourcePolicy{}, fmt.Errorf("source %q: type %q is not one sensorgate runs: use %s, %s or %s", sc.Name(), sc.Type, config.SourceMQTT, config.SourceSemtechUDP, config.SourceHTTP)
}

// eventCounted counts a letter a feed source stores itself (a message
// its parser refused, before the pipeline sees it) as the pipeline counts
// its own, dead_letters.<reason>: sensorgate_pipeline_events_total then
// counts every letter of these sources once, as
// sensorgate_dead_letters_total does. Reasons are the parser's closed set.
type eventCounted struct {
	next     gateway.DeadLetters
	counters *gateway.Counters
}

func (e eventCounted) Put(ctx context.Context, dl gateway.DeadLetter) error {
	if err := e.next.Put(ctx, dl); err != nil {
		return err
	}
	e.counters.Inc("dead_letters." + string(dl.Reason))
	return nil
}

// storeFrameCounters keeps the raw-frame sources' counters in the registry
// (SQLite, or the PostgreSQL the instances share), so that a recorded
// frame replayed after a restart or to another instance is refused.
func (d *Daemon) storeFrameCounters() {
	for _, r := range d.frames {
		r.frames.UseCounterStore(d.ops.store, r.instance)
	}
}

// rawFeed is a raw-frame source's handler and the name its frame-counter
// claims carry: an MQTT source's client id, under which the broker
// redelivers what a killed instance had not acknowledged.
type rawFeed struct {
	frames   *lorawan.Frames
	instance string
}

// webhookEvents routes the http sources' messages that are neither
// uplinks nor device events the feed parsers read (those go to the
// pipeline): ChirpStack's ack, txack, location, … events and The Things
// Stack's downlink_*, location_solved, … messages. sensorgate writes
// nothing for them, so each is counted (webhook.events.<type>) and
// answered 204.
func webhookEvents(format, event string) webhook.EventHandler { return nil }
