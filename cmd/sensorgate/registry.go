package main

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/devices"
)

// openRegistry opens the registry the config's registry section names
// (SQLite under state_dir, or a PostgreSQL shared with other instances)
// into reg. With a shared registry, a device another instance registers
// or adopts leaves this instance's unknown devices at once, and one
// another instance deletes leaves its health, as on the deleting one.
func openRegistry(ctx context.Context, cfg *config.Config, reg *devices.Registry, unknowns *devices.Unknowns, health *devices.Health, log zerolog.Logger) (*devices.Store, error) {
	store, err := devices.Open(ctx, devices.StoreOptions{
		Driver: cfg.Registry.Driver, DSN: cfg.Registry.DSN, StateDir: cfg.StateDir, Log: log,
	}, reg)
	if err != nil {
		return nil, err
	}
	store.OnRemoteChange(func(euis []devices.EUI) {
		for _, e := range euis {
			if _, ok := reg.Lookup(e); ok {
				unknowns.Remove(e)
			} else {
				health.Forget(e)
			}
		}
	})
	return store, nil
}
