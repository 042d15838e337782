package config

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway/deadletter"
	"github.com/sensorgate/sensorgate/gateway/influx"
	"github.com/sensorgate/sensorgate/gateway/lorawan"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/gateway/spool"
	"github.com/sensorgate/sensorgate/gateways"
)

// Defaults of the daemon-level keys a file may leave out; example.yaml
// documents each. The defaults of sources and influx are their packages'.
const (
	defaultLogLevel   = "info"
	defaultLogFormat  = "console"
	defaultHTTPListen = "127.0.0.1:8080"
	defaultStateDir   = "/var/lib/sensorgate"
	// defaultMaxBodyBytes is httpapi.DefaultMaxBodyBytes (a test keeps
	// them equal).
	defaultMaxBodyBytes = 16 << 20
	// defaultMaxImportBytes is httpapi.DefaultMaxImportBytes.
	defaultMaxImportBytes = 256 << 20
	defaultHealthInterval = 5 * time.Minute
	defaultSilentFactor   = 3
	// The bounds of device state; devices' defaults, repeated so that
	// config stays free of the registry package.
	defaultMaxUnknown             = 10000
	defaultUnknownMaxSeries       = 1000
	defaultUnknownSeriesPerMinute = 100
	defaultStateSaveInterval      = 30 * time.Second
	// defaultDecoderTimeout is decoders/script's DefaultTimeout (a test
	// keeps them equal); config does not import the JavaScript engine for
	// one constant.
	defaultDecoderTimeout = 100 * time.Millisecond
	// The codec sandbox's defaults are decoders/sandbox's (a test keeps
	// them equal).
	defaultWorkerTimeout = 400 * time.Millisecond
	defaultWorkerMemory  = 32 << 20
	defaultMaxOutput     = 256 << 10
)

// SetDefaults fills every key left at its zero value with its default, for
// a Config built in code. Load and Parse apply defaults themselves.
func (c *Config) SetDefaults() { c.setDefaults(nil) }

// setDefaults fills keys the file does not give. A number or duration the
// file sets to zero explicitly keeps it, so that Validate reports
// "batch_size: 0" instead of silently writing batches of 5000.
func (c *Config) setDefaults(t *tree) {
	setString(&c.Log.Level, defaultLogLevel)
	setString(&c.Log.Format, defaultLogFormat)
	setString(&c.HTTP.Listen, defaultHTTPListen)
	setString(&c.StateDir, defaultStateDir)
	setString(&c.Registry.Driver, devices.DriverSQLite)
	setDuration(&c.Registry.HealthSyncInterval, DefaultHealthSyncInterval, t, "registry.health_sync_interval")
	setInt(&c.HTTP.MaxBodyBytes, defaultMaxBodyBytes, t, "http.max_body_bytes")
	setInt(&c.HTTP.MaxImportBytes, defaultMaxImportBytes, t, "http.max_import_bytes")
	setDuration(&c.Devices.HealthInterval, defaultHealthInterval, t, "devices.health_interval")
	if c.Devices.SilentFactor == 0 && !t.present("devices.silent_factor") {
		c.Devices.SilentFactor = defaultSilentFactor
	}
	setInt(&c.Devices.MaxUnknown, defaultMaxUnknown, t, "devices.max_unknown")
	setInt(&c.Devices.UnknownMaxSeries, defaultUnknownMaxSeries, t, "devices.unknown_max_series")
	setInt(&c.Devices.UnknownSeriesPerMinute, defaultUnknownSeriesPerMinute, t, "devices.unknown_series_per_minute")
	setDuration(&c.Devices.StateSaveInterval, defaultStateSaveInterval, t, "devices.state_save_interval")
	setInt(&c.Gateways.Max, gateways.DefaultMax, t, "gateways.max")
	if c.Gateways.SilentFactor == 0 && !t.present("gateways.silent_factor") {
		c.Gateways.SilentFactor = gateways.DefaultSilentFactor
	}
	setDuration(&c.Gateways.StatsInterval, gateways.DefaultStatsInterval, t, "gateways.stats_interval")
	for i := range c.Sources {
		c.Sources[i].setDefaults(t, sourcePath(i))
	}
	in := &c.Influx
	setInt(&in.BatchSize, influx.DefaultBatchSize, t, "influx.batch_size")
	setInt(&in.BatchBytes, influx.DefaultBatchBytes, t, "influx.batch_bytes")
	setDuration(&in.FlushInterval, influx.DefaultFlushInterval, t, "influx.flush_interval")
	setDuration(&in.Timeout, influx.DefaultTimeout, t, "influx.timeout")
	setString(&in.Gzip, influx.GzipAuto)
	setInt(&in.MaxInFlight, influx.DefaultMaxInFlight, t, "influx.max_in_flight")
	setDuration(&c.Decoders.Timeout, defaultDecoderTimeout, t, "decoders.timeout")
	setString(&c.Decoders.Sandbox, SandboxWorkers)
	// A raised decoders.timeout raises the kill's limit with it.
	setDuration(&c.Decoders.WorkerTimeout, max(defaultWorkerTimeout, 4*c.Decoders.Timeout), t, "decoders.worker_timeout")
	if c.Decoders.WorkerMemory == 0 && !t.present("decoders.worker_memory") {
		c.Decoders.WorkerMemory = defaultWorkerMemory
	}
	setInt(&c.Decoders.MaxOutput, defaultMaxOutput, t, "decoders.max_output")
	if c.Spool.Dir == "" && c.StateDir != "" {
		c.Spool.Dir = filepath.Join(c.StateDir, "spool")
	}
	setString(&c.Spool.Fsync, spool.FsyncAlways)
	if c.Spool.MaxBytes == 0 && !t.present("spool.max_bytes") {
		c.Spool.MaxBytes = spool.DefaultMaxBytes
	}
	if c.DeadLetters.MaxBytes == 0 && !t.present("deadletters.max_bytes") {
		c.DeadLetters.MaxBytes = deadletter.DefaultMaxBytes
	}
}

// defaultUnknownDevices accepts devices missing from the registry for feeds
// of a network server, which names the device and carries its tags,
// rejects them for generic JSON, which has no such source of truth, and
// drops raw frames of addresses no session has (gateway-bridge).
func defaultUnknownDevices(format string) string {
	switch format {
	case mqtt.FormatChirpStackV4, mqtt.FormatChirpStackV3, mqtt.FormatTTSV3:
		return mqtt.UnknownAccept
	case mqtt.FormatJSON:
		return mqtt.UnknownReject
	case mqtt.FormatGatewayBridge:
		// Raw frames name no device; a gateway hears other networks too.
		return lorawan.UnknownDrop
	}
	return "" // unknown format: reported by Validate
}

func setString(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

func setInt(n *int, def int, t *tree, path string) {
	if *n == 0 && !t.present(path) {
		*n = def
	}
}

func setDuration(d *time.Duration, def time.Duration, t *tree, path string) {
	if *d == 0 && !t.present(path) {
		*d = def
	}
}

// sourcePath names source i in problems.
func sourcePath(i int) string { return fmt.Sprintf("sources[%d]", i) }
