package main

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// Two daemons' registries on one PostgreSQL: a device adopted through one
// leaves the other's unknown devices, as its status page lists them.
func TestSharedRegistryAdoptionLeavesOtherInstancesUnknowns(t *testing.T) {
	ctx := context.Background()
	cfg := &config.Config{StateDir: t.TempDir(), Registry: config.RegistryConfig{Driver: devices.DriverPostgres, DSN: testserver.PostgresDB(t)}}
	open := func() (*devices.Store, *devices.Unknowns) {
		u := devices.NewUnknowns()
		s, err := openRegistry(ctx, cfg, &devices.Registry{}, u, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, u
	}
	a, ua := open()
	b, ub := open()
	e := devices.EUI{0x70, 0xb3, 1}
	for _, u := range []*devices.Unknowns{ua, ub} {
		u.Observe(devices.UnknownObservation{EUI: e, Time: time.Now(), Source: "cs", Name: "ns-name"})
	}
	if err := a.Adopt(ctx, devices.Device{EUI: e, Name: "adopted", Model: "cayenne-lpp"}, ua); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, unknown := ub.Get(e)
		d, registered := b.Registry().Lookup(e)
		if !unknown && registered && d.Model == "cayenne-lpp" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("2 s after the adoption on A, B lists it as unknown %v, registered %v", unknown, registered)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
