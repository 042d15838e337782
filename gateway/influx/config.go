package influx

import (
	stdcmp "cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/sensorgate/sensorgate/gateway/tlsconfig"
)

// Config is the InfluxDB connection and batching policy. Zero values mean
// the defaults, which New fills in.
type Config struct {
	// Version is the write API: 2 (default) is /api/v2/write, spoken by
	// InfluxDB 2.x, 3.x and 1.8+; 1 is the 1.x /write endpoint, for 1.x
	// servers, with Database, RetentionPolicy, Username and Password.
	Version int    `yaml:"version"`
	URL     string `yaml:"url"`    // http://127.0.0.1:8086
	Org     string `yaml:"org"`    // version 2; ignored by InfluxDB 1.8
	Bucket  string `yaml:"bucket"` // version 2; "db/rp" on InfluxDB 1.8
	Token   string `yaml:"token"`  // version 2; "user:password" on InfluxDB 1.8 with auth
	// Database and RetentionPolicy (empty: the database's default) are
	// where version 1 writes; Username and Password authenticate it
	// (HTTP basic authentication) on a server with auth-enabled.
	Database        string `yaml:"database"`
	RetentionPolicy string `yaml:"retention_policy"`
	Username        string `yaml:"username"`
	Password        string `yaml:"password"`
	// CreateDatabase (default true): when InfluxDB says the target's
	// database does not exist and the server is 1.x (version 1, or
	// version 2 against 1.8's "db/rp" bucket), create it with CREATE
	// DATABASE (idempotent; needs admin credentials with auth on).
	// False, or InfluxDB 2.x, leaves it to the operator: the log and
	// /readyz say what to run.
	CreateDatabase *bool `yaml:"create_database"`
	// BatchSize is the most points (lines) in one write request (default
	// 5000); a request also ends at BatchBytes.
	BatchSize int `yaml:"batch_size"`
	// BatchBytes ends a write request once it holds this many bytes of
	// line protocol (default 512 KiB, MinBatchBytes to MaxBatchBytes): a
	// request may pass it by its last spooled message, which is never
	// split. Delivery reads the spool in chunks of this size and holds
	// MaxInFlight of them, so it is also what delivery adds to the
	// daemon's memory. Larger requests cost InfluxDB less per
	// point: 2 MiB took 0.77–0.80× its CPU of 512 KiB requests for the
	// same points (sensorgate-bench ingest), for a few MB more RSS.
	BatchBytes int `yaml:"batch_bytes"`
	// FlushInterval is how long a point waits for its batch to fill
	// (default 100ms): without a backlog, delivery reads the spool at most
	// once per interval.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// Timeout bounds one write request (default 10s).
	Timeout time.Duration `yaml:"timeout"`
	// Gzip says when request bodies are compressed: GzipAuto (default),
	// GzipAlways or GzipNever.
	Gzip string `yaml:"gzip"`
	// MaxInFlight is the most batches under way at once (default 2): one
	// travels while the next is read and cut, and a slow InfluxDB leaves
	// the backlog in the spool instead of piling up requests. The sorting
	// lane's request comes on top.
	MaxInFlight int `yaml:"max_in_flight"`
	// TLS is used with an https URL: a private CA, a client certificate,
	// the name to verify.
	TLS tlsconfig.Config `yaml:"tls"`
}

// Defaults.
const (
	DefaultBatchSize     = 5000
	DefaultBatchBytes    = 512 << 10
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultTimeout       = 10 * time.Second
	DefaultMaxInFlight   = 2
)

// Bounds of Config.BatchBytes: MinBatchBytes keeps requests from
// shrinking to a handful of points, each costing InfluxDB a WAL sync;
// MaxBatchBytes stays under InfluxDB 1.8's default max-body-size (25 MB)
// with room for the message a request may end with past it.
const (
	MinBatchBytes = 64 << 10
	MaxBatchBytes = 16 << 20
)

// Values of Config.Gzip.
const (
	// GzipAuto compresses unless the URL's host is a loopback address or
	// localhost. Over loopback nothing is gained from smaller bodies, and
	// compressing them costs sensorgate, and InfluxDB inflating them, more
	// CPU than encoding the points did; over a network the bytes saved
	// (line protocol shrinks about tenfold) are worth it.
	GzipAuto   = "auto"
	GzipAlways = "always"
	GzipNever  = "never"
)

// gzipValues are the accepted values of Config.Gzip; "true" and "false"
// are kept as always and never, so configs written with them stay valid.
var gzipValues = map[string]bool{GzipAuto: true, GzipAlways: true, GzipNever: true, "true": true, "false": true}

// ValidGzip reports whether v is a value gzip accepts; "" means the
// default.
func ValidGzip(v string) bool { return v == "" || gzipValues[v] }

// compress resolves Gzip for the configured URL (after withDefaults and
// Validate).
func (c Config) compress() bool {
	switch c.Gzip {
	case GzipAlways, "true":
		return true
	case GzipNever, "false":
		return false
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return true
	}
	return !loopbackHost(u.Hostname())
}

// loopbackHost reports whether host names this machine without a
// lookup: "localhost" or a loopback IP. Any other name may resolve to a
// remote server, so it counts as remote.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// API versions (Config.Version).
const (
	V1 = 1
	V2 = 2
)

// versionProblems checks that the keys given are those of the write API
// chosen: a key of the other one would be silently ignored.
func (c Config) versionProblems() []error {
	var errs []error
	switch c.Version {
	case 0, V2:
		if c.Bucket == "" {
			errs = append(errs, errors.New(`influx: bucket is empty: set influx.bucket ("database/retention-policy" on InfluxDB 1.8, e.g. sensors/autogen), or version: 1 with database for a 1.x server`))
		}
		for _, k := range []struct{ key, v string }{{"database", c.Database}, {"retention_policy", c.RetentionPolicy}, {"username", c.Username}, {"password", c.Password}} {
			if k.v != "" {
				errs = append(errs, fmt.Errorf("influx: %s is a version 1 key, but version is 2 (the default): set influx.version: 1 to write through /write, or use bucket and token", k.key))
			}
		}
	case V1:
		if c.Database == "" {
			errs = append(errs, errors.New("influx: database is empty: version 1 writes to a database; set influx.database (e.g. sensors)"))
		}
		for _, k := range []struct{ key, v string }{{"org", c.Org}, {"bucket", c.Bucket}, {"token", c.Token}} {
			if k.v != "" {
				errs = append(errs, fmt.Errorf("influx: %s is a version 2 key, but version is 1: use database, retention_policy, username and password", k.key))
			}
		}
		if c.Password != "" && c.Username == "" {
			errs = append(errs, errors.New("influx: password without username: set influx.username"))
		}
	default:
		errs = append(errs, fmt.Errorf("influx: version %d: want 1 (InfluxDB 1.x /write) or 2 (/api/v2/write, the default)", c.Version))
	}
	return errs
}

// writeURL is the write endpoint with its query, and authorization the
// Authorization header's value ("" for none).
func (c Config) writeURL() (write, authorization string) {
	u, _ := url.Parse(c.URL) // checked by Validate
	if c.Version == V1 {
		q := url.Values{"db": {c.Database}, "precision": {"ns"}}
		if c.RetentionPolicy != "" {
			q.Set("rp", c.RetentionPolicy)
		}
		u = u.JoinPath("write")
		u.RawQuery = q.Encode()
		if c.Username != "" {
			authorization = "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password))
		}
		return u.String(), authorization
	}
	u = u.JoinPath("api", "v2", "write")
	u.RawQuery = url.Values{"org": {c.Org}, "bucket": {c.Bucket}, "precision": {"ns"}}.Encode()
	if c.Token != "" {
		authorization = "Token " + c.Token
	}
	return u.String(), authorization
}

// Target names where points go, for log lines: the bucket, or
// database/retention_policy for version 1.
func (c Config) Target() string {
	if c.Version == V1 {
		if c.RetentionPolicy == "" {
			return c.Database
		}
		return c.Database + "/" + c.RetentionPolicy
	}
	return c.Bucket
}

// withDefaults fills in the zero values.
func (c Config) withDefaults() Config {
	c.Version = stdcmp.Or(c.Version, V2)
	c.BatchSize = stdcmp.Or(c.BatchSize, DefaultBatchSize)
	c.BatchBytes = stdcmp.Or(c.BatchBytes, DefaultBatchBytes)
	c.FlushInterval = stdcmp.Or(c.FlushInterval, DefaultFlushInterval)
	c.Timeout = stdcmp.Or(c.Timeout, DefaultTimeout)
	c.Gzip = stdcmp.Or(c.Gzip, GzipAuto)
	c.MaxInFlight = stdcmp.Or(c.MaxInFlight, DefaultMaxInFlight)
	return c
}

// Validate reports every problem at once, each saying which setting to
// fix. Zero values are valid: they mean the defaults.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("influx: url is empty: set influx.url (e.g. http://127.0.0.1:8086)"))
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("influx: url %q is not an http(s) URL with a host: set influx.url like http://127.0.0.1:8086", c.URL))
	} else if u.RawQuery != "" || u.User != nil {
		errs = append(errs, fmt.Errorf("influx: url must not carry a query or credentials: put the credentials in influx.token"))
	}
	errs = append(errs, c.versionProblems()...)
	if c.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("influx: batch_size %d is negative: set a positive influx.batch_size or leave it out for %d", c.BatchSize, DefaultBatchSize))
	}
	if c.BatchBytes != 0 && (c.BatchBytes < MinBatchBytes || c.BatchBytes > MaxBatchBytes) {
		errs = append(errs, fmt.Errorf("influx: batch_bytes %d is outside %d to %d: set influx.batch_bytes within them or leave it out for %d", c.BatchBytes, MinBatchBytes, MaxBatchBytes, DefaultBatchBytes))
	}
	if c.FlushInterval < 0 {
		errs = append(errs, fmt.Errorf("influx: flush_interval %s is negative: set a positive influx.flush_interval or leave it out for %s", c.FlushInterval, DefaultFlushInterval))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("influx: timeout %s is negative: set a positive influx.timeout or leave it out for %s", c.Timeout, DefaultTimeout))
	}
	if !ValidGzip(c.Gzip) {
		errs = append(errs, fmt.Errorf("influx: gzip %q is not auto, always or never: set influx.gzip to one of them or leave it out for auto", c.Gzip))
	}
	if c.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("influx: max_in_flight %d is negative: set a positive influx.max_in_flight or leave it out for %d", c.MaxInFlight, DefaultMaxInFlight))
	}
	if u, err := url.Parse(c.URL); err == nil && !c.TLS.IsZero() && u.Scheme != "https" {
		errs = append(errs, fmt.Errorf("influx: tls is set but url %q is not https, so it would be ignored: write https://host:8086, or remove influx.tls", c.URL))
	}
	if err := c.TLS.Validate("influx.tls"); err != nil {
		errs = append(errs, fmt.Errorf("influx: %w", err))
	}
	return errors.Join(errs...)
}
