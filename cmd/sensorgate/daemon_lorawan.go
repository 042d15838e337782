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
// an HTTP listener for network-server webhooks.
// Raw frames get uplink_gateway points: sensorgate is the only place that
// sees every gateway's copy.
func (d *Daemon) newSource(sc config.Source, devs lorawan.DevAddrLookup, log zerolog.Logger) (gateway.Source, gateway.SourcePolicy, error) {
	switch {
	case sc.UDP != nil:
		src, err := lorawan.New(*sc.UDP, devs, d.dlw, d.Counters, log)
		if err == nil {
			d.frames = append(d.frames, src.Frames())
		}
		return src, gateway.SourcePolicy{GatewayPoints: true}, err
	case sc.MQTT != nil && sc.MQTT.Format == mqtt.FormatGatewayBridge:
		fc, _ := sc.FrameConfig() // zero (lorawan's defaults) for a Config built without SetDefaults
		frames, err := lorawan.NewFrames(sc.MQTT.Name, fc, devs, d.dlw, d.Counters, log)
		if err != nil {
			return nil, gateway.SourcePolicy{}, err
		}
		d.frames = append(d.frames, frames)
		src, err := mqtt.New(*sc.MQTT, d.dlw, log, mqtt.WithMessageHandler(frames.HandleBridge))
		return src, gateway.SourcePolicy{GatewayPoints: true, Map: sc.MQTT.Map}, err
	case sc.MQTT != nil:
		src, err := mqtt.New(*sc.MQTT, eventCounted{next: d.dlw, counters: d.Counters}, log)
		return src, gateway.SourcePolicy{AcceptUnknown: !sc.MQTT.RejectUnknown(), Map: sc.MQTT.Map}, err
	case sc.HTTP != nil:
		src, err := webhook.New(*sc.HTTP, eventCounted{next: d.dlw, counters: d.Counters}, d.Counters, log, webhook.WithEvents(webhookEvents))
		if err == nil {
			d.webhooks = append(d.webhooks, src)
		}
		return src, gateway.SourcePolicy{AcceptUnknown: !sc.HTTP.RejectUnknown(), Map: sc.HTTP.Map}, err
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
	for _, f := range d.frames {
		f.UseCounterStore(d.ops.store)
	}
}

// webhookEvents routes the http sources' messages that are not uplinks:
// ChirpStack's status, join, log, … events and The Things Stack's
// join_accept, downlink_*, … messages. None has a handler yet, so each is
// counted (webhook.events.<type>) and answered 204; device and gateway
// events (issue 19, items 2 and 3) are to be routed here, e.g. format
// chirpstack-v4 with event "status" to the handler that writes the
// device's battery and margin.
func webhookEvents(format, event string) webhook.EventHandler { return nil }
