package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// TestHealthSyncWhilePostgresIsAway: while PostgreSQL refuses the
// registry's database, each exchange of health and heartbeat fails; the
// instance logs that once (not every interval), counts every failure for
// /metrics, and logs once more when an exchange succeeds again.
func TestHealthSyncWhilePostgresIsAway(t *testing.T) {
	dsn := testserver.PostgresDB(t)
	ctx := context.Background()
	logs := &lockedBuffer{}
	store, err := devices.Open(ctx, devices.StoreOptions{Driver: devices.DriverPostgres, DSN: dsn, Log: zerolog.Nop()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := &config.Config{Registry: config.RegistryConfig{Driver: devices.DriverPostgres, DSN: dsn, HealthSyncInterval: time.Second}}
	d := &Daemon{ops: &ops{log: zerolog.New(logs), store: store, health: devices.NewHealth(0), now: time.Now}}
	if err := d.shareHealth(ctx, withStateDir(cfg, t.TempDir())); err != nil {
		t.Fatal(err)
	}
	o := d.ops
	o.sync(ctx)
	if list := o.instances(); len(list) != 1 || list[0].ID == "" || list[0].Version != version {
		t.Fatalf("instances %+v: want this one", list)
	}

	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	testserver.PostgresAdminExec(t, "ALTER DATABASE "+cc.Database+" ALLOW_CONNECTIONS false")
	testserver.PostgresAdminExec(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '"+cc.Database+"'")
	for range 3 {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		o.sync(sctx)
		cancel()
	}
	if n := strings.Count(logs.String(), "exchange with PostgreSQL failed"); n != 1 {
		t.Errorf("%d warnings for three failed exchanges, want 1:\n%s", n, logs)
	}
	if st, _ := o.health.ShareStats(); st.Failures < 3 {
		t.Errorf("%d failures counted, want 3", st.Failures)
	}
	testserver.PostgresAdminExec(t, "ALTER DATABASE "+cc.Database+" ALLOW_CONNECTIONS true")
	// Pooled connections PostgreSQL ended fail once each before they are
	// replaced; the exchange succeeds within a few tries.
	for i := 0; i < 10 && !strings.Contains(logs.String(), "exchanging with PostgreSQL again"); i++ {
		o.sync(ctx)
	}
	if !strings.Contains(logs.String(), "exchanging with PostgreSQL again") {
		t.Errorf("no recovery logged:\n%s", logs)
	}
}

func withStateDir(cfg *config.Config, dir string) *config.Config {
	cfg.StateDir = dir
	return cfg
}

// TestInstanceID: registry.instance_id, else the first MQTT source's
// client id, else the host name; and none without a shared registry.
func TestInstanceID(t *testing.T) {
	mq := func(id string) config.Source { return config.Source{MQTT: &mqtt.Config{ClientID: id}} }
	pg := config.RegistryConfig{Driver: devices.DriverPostgres}
	for _, tc := range []struct {
		name string
		cfg  config.Config
		want string
	}{
		{"configured", config.Config{Registry: config.RegistryConfig{Driver: devices.DriverPostgres, InstanceID: "north-1"}, Sources: []config.Source{mq("c")}}, "north-1"},
		{"client id", config.Config{Registry: pg, Sources: []config.Source{{}, mq("cs-2")}}, "cs-2"},
		{"sqlite", config.Config{Registry: config.RegistryConfig{Driver: devices.DriverSQLite}, Sources: []config.Source{mq("c")}}, ""},
	} {
		if got := sharedInstanceID(&tc.cfg); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := sharedInstanceID(&config.Config{Registry: pg}); got == "" {
		t.Error("no MQTT source: want the host name")
	}
}
