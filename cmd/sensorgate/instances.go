package main

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/devices"
)

// instances is this instance's side of a shared registry: its id, the
// heartbeat it writes and the list of instances it last read, next to
// the exchange of device health (devices.Store.SyncHealth). All of it
// runs every registry.health_sync_interval, off the uplinks' path.
type instances struct {
	self    devices.Instance
	sources func() []devices.InstanceSource
	every   time.Duration

	mu      sync.Mutex
	list    []devices.Instance
	failing bool // the last exchange failed: the next success is logged
}

// instanceID is registry.instance_id, else the client id of the first
// MQTT source (instances on one shared subscription differ there), else
// the host name.
func instanceID(cfg *config.Config) string {
	if cfg.Registry.InstanceID != "" {
		return cfg.Registry.InstanceID
	}
	for _, sc := range cfg.Sources {
		if sc.MQTT != nil && sc.MQTT.ClientID != "" {
			return sc.MQTT.ClientID
		}
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "sensorgate"
}

// sharedInstanceID is instanceID with a shared registry, "" without:
// a single instance needs no name.
func sharedInstanceID(cfg *config.Config) string {
	if cfg.Registry.Driver != devices.DriverPostgres {
		return ""
	}
	return instanceID(cfg)
}

// shareHealth makes device health count across the instances of a shared
// registry, reading the shared figures once; on a single instance it
// loads the health saved in state_dir.
func (d *Daemon) shareHealth(ctx context.Context, cfg *config.Config) error {
	o := d.ops
	if !o.store.Shared() {
		if err := o.store.LoadHealth(ctx, o.health); err != nil {
			o.log.Warn().Err(err).Msg("saved device health not loaded; it rebuilds from the next uplinks")
		}
		return nil
	}
	o.inst = &instances{
		self:  devices.Instance{ID: instanceID(cfg), Version: version, Started: time.Now().UTC()},
		every: cfg.Registry.HealthSyncInterval,
		sources: func() []devices.InstanceSource {
			var out []devices.InstanceSource
			for i, sc := range cfg.Sources {
				s := devices.InstanceSource{Name: sc.Name()}
				if sc.MQTT != nil {
					ready := d.sourceReady(i)
					s.Connected = &ready
				}
				out = append(out, s)
			}
			return out
		},
	}
	o.inst.list = []devices.Instance{o.inst.self}
	if _, err := o.store.ShareHealth(ctx, o.health); err != nil {
		o.log.Warn().Err(err).Msg("shared device health not read at start; it is read again every registry.health_sync_interval")
	}
	n, err := o.health.JournalHealth(filepath.Join(cfg.StateDir, healthJournalDir))
	if err != nil {
		return err
	}
	if n > 0 {
		o.log.Info().Int("frames", n).Msg("device health: replayed the frames the last run took but had not yet shared")
	}
	return nil
}

// healthJournalDir is the shared-health journal's directory under
// state_dir (devices/healthjournal.go).
const healthJournalDir = "health-journal"

// syncLoop exchanges device health and the heartbeat every
// health_sync_interval until ctx ends.
func (o *ops) syncLoop(ctx context.Context) {
	if o.inst == nil {
		return
	}
	o.sync(ctx)
	every(ctx, o.inst.every, func() { o.sync(ctx) }) // every.go
}

// sync runs one exchange. A failure is logged once until the next
// success (and counted in /metrics), since it repeats every few seconds
// while PostgreSQL is away; health then shows this instance's uplinks
// on top of what it last read.
func (o *ops) sync(ctx context.Context) {
	in := o.inst
	if in == nil {
		return
	}
	err := o.store.SyncHealth(ctx, o.health)
	self := in.self
	self.Heartbeat, self.Sources = time.Now().UTC(), in.sources()
	list, hbErr := o.store.Heartbeat(ctx, self)
	if err == nil {
		err = hbErr
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if hbErr == nil {
		in.list = list
	}
	switch {
	case err != nil && !in.failing && ctx.Err() == nil:
		in.failing = true
		o.log.Warn().Err(err).Msg("shared device health and heartbeat: exchange with PostgreSQL failed; retrying every registry.health_sync_interval")
	case err == nil && in.failing:
		in.failing = false
		o.log.Info().Msg("shared device health and heartbeat: exchanging with PostgreSQL again")
	}
}

// Instances returns the instances of the shared registry as last read
// (this one included), nil on a single instance.
func (o *ops) instances() []devices.Instance {
	if o == nil || o.inst == nil {
		return nil
	}
	o.inst.mu.Lock()
	defer o.inst.mu.Unlock()
	return append([]devices.Instance(nil), o.inst.list...)
}
