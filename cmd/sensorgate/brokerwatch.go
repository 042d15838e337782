package main

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
)

// The dropping-broker check. Not settings: they describe what a broker
// that drops a session's queue looks like, not a deployment.
const (
	// dropWatchWindow is how long after a connection uplinks are checked:
	// long enough that most devices report live once (LoRaWAN devices
	// report every few minutes), after the queued messages, which come
	// first and in sequence.
	dropWatchWindow = 5 * time.Minute
	// dropWatchShare of the devices seen in the window with a gap is
	// far more than radio loss explains (a few percent of frames).
	dropWatchShare = 0.2
	// dropWatchMinDevices with gaps, so that a handful of devices on the
	// edge of coverage never look like a dropping broker.
	dropWatchMinDevices = 10
	// dropWatchMaxGap is the largest frame-counter jump counted as lost
	// frames, as device health counts them; a bigger one is a reset.
	dropWatchMaxGap = 16384
)

// dropWatch warns when the broker probably dropped messages queued for
// sensorgate while it was away. Mosquitto's defaults (max_queued_messages
// 1000) make a persistent QoS 1 session lose everything beyond the queue
// during an outage, silently; what shows is frame-counter gaps across
// many devices at once, right after sensorgate connects again: the queued
// messages arrive in sequence, then each device's next live uplink jumps.
//
// It is a pipeline Observer placed before device health's, so device
// health still holds each device's previous frame counter: the check
// keeps no counters of its own. Outside the window after a connection it
// costs one atomic load per uplink.
type dropWatch struct {
	health *devices.Health
	log    zerolog.Logger
	window time.Duration

	open  atomic.Bool
	mu    sync.Mutex
	seen  map[devices.EUI]bool // devices health knows, seen in the window: true once one had a gap
	timer *time.Timer
	gen   int // counts windows, so a late timer cannot end the next one
}

var _ gateway.Observer = (*dropWatch)(nil)

func newDropWatch(health *devices.Health, log zerolog.Logger) *dropWatch {
	return &dropWatch{health: health, log: log, window: dropWatchWindow}
}

// watchDrops puts the check in front of the pipeline's Observer and opens
// its window on every connection of an MQTT source.
//
// Not with a shared registry: on a shared subscription every instance
// sees gaps in every device's counters (the other instances' frames), and
// the previous counter health holds may be another instance's.
func (d *Daemon) watchDrops() {
	if d.ops == nil || d.ops.health == nil || d.ops.inst != nil {
		return
	}
	w := newDropWatch(d.ops.health, d.log.With().Str("component", "broker").Logger())
	d.drops = w
	if d.pipeline.Observer != nil {
		d.pipeline.Observer = observers{w, d.pipeline.Observer} // daemon_metrics.go
	} else {
		d.pipeline.Observer = w
	}
	for _, src := range d.sources {
		if m, ok := src.(*mqtt.Source); ok {
			m.OnConnect(w.connected)
		}
	}
}

// connected opens a new window, ending the one open without a verdict: a
// reconnection during the window is the start of what to check.
func (w *dropWatch) connected() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
	}
	w.gen++
	gen := w.gen
	w.seen = make(map[devices.EUI]bool)
	w.open.Store(true)
	w.timer = time.AfterFunc(w.window, func() { w.evaluate(gen) })
}

// Observe notes whether an uplink's frame counter skips frames after the
// device's previous one.
func (w *dropWatch) Observe(up gateway.Uplink, _ gateway.Seen) {
	if !w.open.Load() || !up.HasFCnt || up.DevEUI.IsZero() {
		return
	}
	last, known := w.health.LastFCnt(up.DevEUI)
	if !known {
		// Nothing to compare with; and seen stays within the devices
		// health tracks, however many new EUIs a flood brings.
		return
	}
	gap := up.FCnt > last+1 && up.FCnt-last <= dropWatchMaxGap
	w.mu.Lock()
	if w.seen != nil {
		w.seen[up.DevEUI] = w.seen[up.DevEUI] || gap
	}
	w.mu.Unlock()
}

// stop ends the window without a verdict: the daemon is stopping.
func (w *dropWatch) stop() {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
	}
	w.seen, w.timer = nil, nil
	w.gen++
	w.open.Store(false)
}

// evaluate ends window gen and warns once if gaps were widespread.
func (w *dropWatch) evaluate(gen int) {
	w.mu.Lock()
	if gen != w.gen {
		w.mu.Unlock()
		return
	}
	seen := w.seen
	w.seen, w.timer = nil, nil
	w.open.Store(false)
	w.mu.Unlock()
	gaps := 0
	for _, g := range seen {
		if g {
			gaps++
		}
	}
	if gaps < dropWatchMinDevices || float64(gaps) < dropWatchShare*float64(len(seen)) {
		return
	}
	w.log.Warn().Int("devices", len(seen)).Int("devices_with_gaps", gaps).Stringer("after_connect", w.window).
		Msg("frame counters skip frames on many devices at once after connecting: the broker probably dropped messages it queued for sensorgate while it was away. " +
			"Lift the broker's queue limit for this client: Mosquitto max_queued_messages 0 and max_queued_bytes 0 (default 1000 messages), " +
			"EMQX mqtt.max_mqueue_len, HiveMQ queued-messages/max-queue-size; keep clean_session false (docs/delivery.md: Broker settings)")
}
