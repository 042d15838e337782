package config

import (
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorgate/sensorgate/devices"
)

// RegistryConfig is where the device registry lives.
type RegistryConfig struct {
	// Driver is sqlite (default: registry.db under state_dir, for one
	// instance) or postgres (a database every instance shares: devices,
	// sessions, unknown devices, adoption and frame counters).
	Driver string `yaml:"driver"`
	// DSN is PostgreSQL's connection string,
	// postgres://user:password@host:5432/database; give it as ${PG_DSN}
	// so the password stays out of the file. Only with driver postgres.
	DSN string `yaml:"dsn"`
	// InstanceID names this instance in the shared tables, the status
	// page and the instance label of /metrics. Default: the client_id of
	// the first MQTT source (instances on one shared subscription must
	// differ there already), else the host name. Only with driver postgres.
	InstanceID string `yaml:"instance_id"`
	// HealthSyncInterval is how often device health is exchanged with the
	// other instances and the heartbeat written (default 5s). Only with
	// driver postgres.
	HealthSyncInterval time.Duration `yaml:"health_sync_interval"`
}

// DefaultHealthSyncInterval is registry.health_sync_interval's default:
// a few seconds keep the instances' figures in step at a cost of a few
// statements per interval, whatever the uplink rate.
const DefaultHealthSyncInterval = 5 * time.Second

var registryDrivers = []string{devices.DriverSQLite, devices.DriverPostgres}

func (c *Config) checkRegistry(p *collector) {
	r := c.Registry
	oneOf(p, "registry.driver", r.Driver, registryDrivers, "registry driver")
	switch r.Driver {
	case devices.DriverPostgres:
		if len(r.InstanceID) > 200 {
			p.add("registry.instance_id", "longer than 200 characters: give a short name (it is a label of every metric)")
		}
		if r.DSN == "" {
			p.add("registry.dsn", "missing: driver postgres needs a connection string, e.g. dsn: \"${PG_DSN}\" with PG_DSN=postgres://sensorgate:PASSWORD@db:5432/sensorgate")
			return
		}
		// The parser's error is not repeated: it could quote the password.
		if _, err := pgx.ParseConfig(r.DSN); err != nil {
			p.add("registry.dsn", "not a PostgreSQL connection string: write postgres://user:password@host:5432/database (or key=value pairs: host=... dbname=...)")
		}
	case devices.DriverSQLite:
		if r.DSN != "" {
			p.add("registry.dsn", "only used with driver postgres: the sqlite registry is registry.db under state_dir; remove dsn or set driver: postgres")
		}
		if r.InstanceID != "" {
			p.add("registry.instance_id", "only used with driver postgres: a single instance needs no name; remove it or set driver: postgres")
		}
	}
}
