package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sensorgate/sensorgate/gateway/deadletter"
	"github.com/sensorgate/sensorgate/gateway/influx"
	"github.com/sensorgate/sensorgate/gateway/spool"
)

// Example is example.yaml, the documented reference of every key. Its tests
// load it and fail when a key of Config is missing from it.
//
//go:embed example.yaml
var Example []byte

// Config is the whole configuration file. The section structs of sources
// and influx belong to the packages that use them; the daemon-level
// sections are defined here.
type Config struct {
	Log  LogConfig  `yaml:"log"`
	HTTP HTTPConfig `yaml:"http"`
	// StateDir holds the embedded device registry, the spool and the dead
	// letters (deadletters/). Default /var/lib/sensorgate.
	StateDir string `yaml:"state_dir"`
	// Registry is the device registry's database: SQLite under state_dir
	// (default) or a PostgreSQL several instances share.
	Registry RegistryConfig `yaml:"registry"`
	Sources  Sources        `yaml:"sources"`
	Influx   influx.Config  `yaml:"influx"`
	// Spool is the on-disk queue between the sources and InfluxDB; its
	// dir defaults to <state_dir>/spool.
	Spool    spool.Config   `yaml:"spool"`
	Devices  DevicesConfig  `yaml:"devices"`
	Gateways GatewaysConfig `yaml:"gateways"`
	Decoders DecodersConfig `yaml:"decoders"`

	// DeadLetters bounds the dead-letter store in <state_dir>/deadletters.
	DeadLetters deadletter.Config `yaml:"deadletters"`
}

// LogConfig is where and how the daemon logs.
type LogConfig struct {
	// Level is debug, info, warn or error (default info).
	Level string `yaml:"level"`
	// Format is console (default, for a terminal) or json (for a log
	// collector).
	Format string `yaml:"format"`
}

// HTTPConfig is the HTTP API (health, metrics, devices, dead letters, the
// status page).
type HTTPConfig struct {
	// Listen is host:port (default 127.0.0.1:8080: local only, since the
	// API can replay dead letters).
	Listen string `yaml:"listen"`
	// Token is the bearer token the API requires. Empty: the daemon
	// generates one at first start into state_dir/http.token (mode 0600)
	// and reuses it; the CLI reads it from there.
	Token string `yaml:"token"`
	// AllowedHosts are names (or addresses) clients reach the API by
	// besides those of Listen, such as a DNS name or a proxy's; a request
	// with another Host is refused (DNS rebinding).
	AllowedHosts []string `yaml:"allowed_hosts"`
	// TLSCert and TLSKey are PEM files; with both set the API serves HTTPS.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// MaxBodyBytes bounds a request body (default 16 MiB: a 10,000-device
	// import is about 1 MiB).
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// MaxImportBytes bounds a CSV device import (default 256 MiB: a
	// 1,000,000-device CSV is about 75 MB), which is read as it is
	// checked, never held whole.
	MaxImportBytes int `yaml:"max_import_bytes"`
}

// DevicesConfig is the device registry's input.
type DevicesConfig struct {
	// Import is a YAML (.yaml, .yml) or CSV (.csv) devices file loaded into
	// the registry at start; empty means the registry keeps what it has.
	Import string `yaml:"import"`
	// Tags are the device tag keys written onto points. The default is none:
	// every tag is an InfluxDB series dimension, so the operator opts in to
	// each one rather than a stray spreadsheet column multiplying series.
	Tags []string `yaml:"tags"`
	// HealthInterval is how often device health is written to InfluxDB
	// (measurement device_health) and saved to the registry (default 5m).
	HealthInterval time.Duration `yaml:"health_interval"`
	// SilentFactor: a device is silent after this many of its usual
	// intervals without an uplink (default 3, at least 1).
	SilentFactor float64 `yaml:"silent_factor"`
	// MaxUnknown bounds the devices missing from the registry that are
	// listed as unknown and tracked by device health (default 10000);
	// the least recently heard are evicted for new ones.
	MaxUnknown int `yaml:"max_unknown"`
	// UnknownMaxSeries bounds, per source, the unregistered devices whose
	// uplinks are written to InfluxDB (default 1000); the others' uplinks
	// are dead letters (unknown_device_limit).
	UnknownMaxSeries int `yaml:"unknown_max_series"`
	// UnknownSeriesPerMinute bounds, per source, how many new ones of
	// those are admitted a minute (default 100).
	UnknownSeriesPerMinute int `yaml:"unknown_series_per_minute"`
	// StateSaveInterval is how often what changed in device health, the
	// unknown devices and the admitted unregistered devices is saved to
	// state_dir (default 30s); shutdown then saves only what changed since.
	StateSaveInterval time.Duration `yaml:"state_save_interval"`
}

// GatewaysConfig is what sensorgate knows of the LoRaWAN gateways, from
// their statistics (gateway-bridge sources) and the operator.
type GatewaysConfig struct {
	// File is a YAML gateways file ({id, name, tags} entries) loaded at
	// start; the API's changes are saved under state_dir and win.
	File string `yaml:"file"`
	// Tags are the gateway tag keys written onto gateway points (default
	// none, as devices.tags).
	Tags []string `yaml:"tags"`
	// Max bounds the gateways heard but not in the file or the API
	// (default 1000); the least recently heard are evicted.
	Max int `yaml:"max"`
	// SilentFactor: a gateway is silent after this many stats intervals
	// without a stats message (default 3, at least 1).
	SilentFactor float64 `yaml:"silent_factor"`
	// StatsInterval is a gateway's stats interval until its own is
	// measured (default 30s, the Gateway Bridge's).
	StatsInterval time.Duration `yaml:"stats_interval"`
}

// DecodersConfig is the payload decoders' configuration.
type DecodersConfig struct {
	// Scripts is a folder of JavaScript codecs (TTN/ChirpStack style),
	// one file per model named <model-id>.js, reloaded when they change.
	Scripts string `yaml:"scripts"`
	// Timeout bounds one script decode (default 100ms), so a codec stuck
	// in a loop costs one dead letter, not the pipeline.
	Timeout time.Duration `yaml:"timeout"`
	// Sandbox is where JavaScript codecs run: "workers" (default), in
	// child processes with memory and time limits that are killed and
	// replaced when a codec overruns them, or "in-process" (development:
	// a runaway codec can then exhaust the daemon).
	Sandbox string `yaml:"sandbox"`
	// Workers is the number of codec worker processes (default: the
	// number of CPUs the daemon may use).
	Workers int `yaml:"workers"`
	// WorkerTimeout is the wall-clock limit of one decode in a worker,
	// after which the worker is killed (default 400ms, or 4 × Timeout
	// when more); more than twice Timeout, which the worker enforces
	// itself where it can.
	WorkerTimeout time.Duration `yaml:"worker_timeout"`
	// WorkerMemory is the memory in bytes a worker may allocate beyond
	// its baseline (default 32 MiB); past it the worker dies.
	WorkerMemory int64 `yaml:"worker_memory"`
	// MaxOutput bounds one decode's output in bytes (default 256 KiB).
	MaxOutput int `yaml:"max_output"`
	// DecodedAll names models whose decoded_<model> points keep every
	// value of the decoder, those written as catalogue quantities too
	// (schema 1); the others keep only the values no quantity holds.
	DecodedAll []string `yaml:"decoded_all"`
}

// Where codecs run (DecodersConfig.Sandbox).
const (
	SandboxWorkers   = "workers"
	SandboxInProcess = "in-process"
)

// Load reads and checks the config file at path: ${ENV} expansion, YAML
// decoding with unknown keys rejected, defaults, validation. Problems with
// the file's content come back together as *Problems.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(b, path)
}

// Parse is Load for a file already read; name is used in problem reports.
// Environment variables are taken from the process environment.
func Parse(b []byte, name string) (*Config, error) {
	return parse(b, name, os.LookupEnv)
}

// parse takes the environment as a function so tests need not touch the
// process environment.
func parse(b []byte, name string, lookup func(string) (string, bool)) (*Config, error) {
	c := newCollector(nil)
	root, ok := readDocument(b, c)
	if !ok {
		return nil, c.err(name)
	}
	t := newTree(root)
	c.tree = t
	cfg := new(Config)
	if root != nil {
		expandEnv(root, "", lookup, c)
		if err := checkKeys(root, c); err != nil {
			return nil, err
		}
		decode(root, cfg, c)
	}
	cfg.setDefaults(t)
	cfg.check(c)
	if err := c.err(name); err != nil {
		return nil, err
	}
	return cfg, nil
}

// readDocument parses b into its root node: a mapping, or nil for an empty
// file. It reports syntax errors and files that are not one mapping.
func readDocument(b []byte, c *collector) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true // empty: validation says what is missing
		}
		line, msg := syntaxError(err)
		c.addLine(line, "", msg)
		return nil, false
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		line, msg := syntaxError(err)
		c.addLine(line, "", msg)
		return nil, false
	default:
		c.addLine(next.Line, "", "a second YAML document: the config is one document; remove the extra ---")
		return nil, false
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	switch {
	case root.Kind == yaml.MappingNode:
		return root, true
	case root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null":
		return nil, true // only comments or a lone ---
	}
	c.addLine(root.Line, "", "the config must be a mapping of sections (log, http, state_dir, sources, influx, devices, decoders); see example.yaml")
	return nil, false
}
