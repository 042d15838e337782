package webhook

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
)

// SourceType is the config source type of an HTTP source.
const SourceType = "http"

// Defaults.
const (
	// DefaultMaxBodyBytes holds the largest webhook a network server sends
	// (a The Things Stack uplink with decoded and normalized payloads and
	// a dozen gateways is under 16 KiB) many times over.
	DefaultMaxBodyBytes = 1 << 20
	DefaultMaxInFlight  = 64
	DefaultDrainTimeout = 10 * time.Second
	DefaultRetryAfter   = 10 * time.Second
	DefaultPath         = "/"
)

// Formats an HTTP source reads: the MQTT feeds' formats, whose messages
// the network servers post unchanged.
var Formats = []string{mqtt.FormatTTSV3, mqtt.FormatChirpStackV4, mqtt.FormatChirpStackV3, mqtt.FormatJSON}

// Config is an HTTP source:
//
//	sources:
//	  - name: tts-hook
//	    type: http
//	    format: tts-v3
//	    listen: "0.0.0.0:8090"
//	    path: /tts/
//	    auth: {header: X-Sensorgate-Secret, value: "${TTS_WEBHOOK_SECRET}"}
type Config struct {
	Name   string `yaml:"name"`
	Type   string `yaml:"type"` // SourceType
	Format string `yaml:"format"`
	// Listen is the TCP address the network server posts to.
	Listen string `yaml:"listen"`
	// Path is the URL path taken (default /); one ending in / takes every
	// path below it too, as The Things Stack appends each message type's
	// own path to the webhook's base URL.
	Path string `yaml:"path"`
	// Auth is how a request proves it comes from the network server; a
	// source without it does not start unless it says auth: none.
	Auth Auth `yaml:"auth"`
	// TLSCert and TLSKey are PEM files; both set serves HTTPS.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// MaxBodyBytes bounds a request body (default 1 MiB); a larger one is
	// answered 413 without being read.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// MaxInFlight bounds the requests being handled at once (default 64);
	// beyond it a request is answered 503 with Retry-After at once.
	MaxInFlight int `yaml:"max_in_flight"`
	// DrainTimeout bounds how long requests already taken may finish after
	// shutdown begins (default 10s); requests arriving meanwhile get 503.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// RetryAfter is what a 503 asks the sender to wait (default 10s,
	// rounded up to whole seconds).
	RetryAfter time.Duration `yaml:"retry_after"`
	// UnknownDevices is accept or reject; default accept for network-server
	// formats and reject for generic JSON, as for MQTT sources.
	UnknownDevices string `yaml:"unknown_devices"`
	// Map lifts keys of the network server's decoded object (or of a
	// generic JSON message) onto catalogue quantities.
	Map []decoders.Mapping `yaml:"map"`
	// JSON says where a generic JSON message keeps its device and time;
	// the device is a JSON path (an HTTP request has no topic).
	JSON mqtt.JSONConfig `yaml:"json"`
}

// Auth is an HTTP source's authentication: exactly one of a shared secret
// header (The Things Stack's webhook "additional headers", ChirpStack's
// HTTP integration headers), basic auth, or a bearer token, or None.
type Auth struct {
	// None is auth: none, written out by the operator: anyone who reaches
	// the port can write data.
	None bool `yaml:"-"`
	// Header and Value: the request must carry header Header with Value.
	Header string `yaml:"header"`
	Value  string `yaml:"value"`
	// Username and Password: HTTP basic auth.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// BearerToken: Authorization: Bearer <token>.
	BearerToken string `yaml:"bearer_token"`
}

// authNone is the one scalar auth takes.
const authNone = "none"

type authFields Auth // without the methods, for the YAML codec

// UnmarshalYAML takes auth: none or a mapping of one method's keys.
func (a *Auth) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		if strings.TrimSpace(n.Value) != authNone {
			// The value is not repeated: it may be a secret written in
			// the wrong place.
			return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: auth: write auth: none, or a mapping with header and value, username and password, or bearer_token", n.Line)}}
		}
		*a = Auth{None: true}
		return nil
	}
	var f authFields
	if err := n.Decode(&f); err != nil {
		return err
	}
	*a = Auth(f)
	return nil
}

// MarshalYAML writes auth: none, or the method's keys.
func (a Auth) MarshalYAML() (any, error) {
	if a.None {
		return authNone, nil
	}
	return authFields(a), nil
}

// Method names the configured method ("header", "basic", "bearer",
// "none"), or "" when none or several are set.
func (a Auth) Method() string {
	var m []string
	if a.Header != "" || a.Value != "" {
		m = append(m, "header")
	}
	if a.Username != "" || a.Password != "" {
		m = append(m, "basic")
	}
	if a.BearerToken != "" {
		m = append(m, "bearer")
	}
	switch {
	case a.None && len(m) == 0:
		return authNone
	case len(m) == 1 && !a.None:
		return m[0]
	}
	return ""
}

// WithDefaults fills what the operator may leave out.
func (c Config) WithDefaults() Config {
	c.Type = cmp.Or(c.Type, SourceType)
	c.Path = cmp.Or(c.Path, DefaultPath)
	c.MaxBodyBytes = cmp.Or(c.MaxBodyBytes, DefaultMaxBodyBytes)
	c.MaxInFlight = cmp.Or(c.MaxInFlight, DefaultMaxInFlight)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, DefaultDrainTimeout)
	c.RetryAfter = cmp.Or(c.RetryAfter, DefaultRetryAfter)
	if c.UnknownDevices == "" {
		c.UnknownDevices = mqtt.UnknownAccept
		if c.Format == mqtt.FormatJSON {
			c.UnknownDevices = mqtt.UnknownReject
		}
	}
	return c
}

// RejectUnknown reports whether devices missing from the registry are
// dead-lettered rather than accepted.
func (c Config) RejectUnknown() bool { return c.WithDefaults().UnknownDevices == mqtt.UnknownReject }

// ParserConfig is the MQTT source config whose parser reads this source's
// messages (the same parser replays its dead letters).
func (c Config) ParserConfig() mqtt.Config {
	return mqtt.Config{Name: c.Name, Type: SourceType, Format: c.Format, JSON: c.JSON, Map: c.Map, UnknownDevices: c.UnknownDevices}
}

// Problem is one thing wrong with a Config: the key (relative to the
// source entry) and what to do.
type Problem struct {
	Key string
	Msg string
}

// Problems lists every problem of c, zero values meaning the defaults;
// the config package reports them at their lines, Validate joins them.
func (c Config) Problems() []Problem {
	var ps []Problem
	add := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if c.Type != "" && c.Type != SourceType {
		add("type", "%q: this source is %s", c.Type, SourceType)
	}
	switch {
	case c.Format == "":
		add("format", "missing: use %s", orList(Formats))
	case !contains(Formats, c.Format):
		add("format", "%q is not a format an HTTP source reads: use %s", c.Format, orList(Formats))
	}
	if c.Listen == "" {
		add("listen", `missing: give the TCP address the network server posts to, e.g. "0.0.0.0:8090"`)
	} else if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen", `%q is not host:port: write e.g. "0.0.0.0:8090", or ":8090" for every interface`, c.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		add("listen", "port %q: use 1 to 65535", port)
	}
	if c.Path != "" && !strings.HasPrefix(c.Path, "/") {
		add("path", "%q: a URL path starts with /, e.g. /tts/ (a trailing / takes every path below it)", c.Path)
	}
	for _, p := range c.Auth.problems() {
		add("auth"+p.Key, "%s", p.Msg)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		add("tls_cert", "TLS needs both tls_cert and tls_key (PEM files), or neither for plain HTTP")
	}
	if c.MaxBodyBytes < 0 {
		add("max_body_bytes", "%d is negative: leave it out for %d (1 MiB)", c.MaxBodyBytes, DefaultMaxBodyBytes)
	}
	if c.MaxInFlight < 0 {
		add("max_in_flight", "%d is negative: leave it out for %d", c.MaxInFlight, DefaultMaxInFlight)
	}
	if c.DrainTimeout < 0 {
		add("drain_timeout", "%s is negative: leave it out for %s", c.DrainTimeout, DefaultDrainTimeout)
	}
	if c.RetryAfter < 0 {
		add("retry_after", "%s is negative: leave it out for %s", c.RetryAfter, DefaultRetryAfter)
	}
	switch c.UnknownDevices {
	case "", mqtt.UnknownAccept, mqtt.UnknownReject:
	default:
		add("unknown_devices", "%q: use %s or %s", c.UnknownDevices, mqtt.UnknownAccept, mqtt.UnknownReject)
	}
	if c.Format == mqtt.FormatJSON && strings.HasPrefix(c.JSON.DeviceID, "topic:") {
		add("json.device_id", "%q: an HTTP request has no topic; give the JSON path of the device id in the message, e.g. deviceId", c.JSON.DeviceID)
	}
	return ps
}

func (a Auth) problems() []Problem {
	var ps []Problem
	add := func(key, msg string) { ps = append(ps, Problem{Key: key, Msg: msg}) }
	const methods = "header and value (a shared secret header, as The Things Stack's webhook additional headers send), username and password (basic auth), or bearer_token"
	switch a.Method() {
	case "":
		if a == (Auth{}) {
			add("", "missing: anyone who can reach the port could write data; set "+methods+" (secrets from the environment: \"${NAME}\"), or write auth: none to run without")
		} else {
			add("", "set exactly one of "+methods)
		}
	case "header":
		if a.Header == "" {
			add(".header", "missing: name the header the sender sets, e.g. X-Sensorgate-Secret")
		} else if !validHeaderName(a.Header) {
			add(".header", fmt.Sprintf("%q is not an HTTP header name: use letters, digits and -", a.Header))
		} else if strings.EqualFold(a.Header, "Authorization") {
			add(".header", "Authorization is for username/password (basic) or bearer_token: use those keys, or another header name")
		}
		if a.Value == "" {
			add(".value", "missing or empty: set the shared secret, from the environment: \"${NAME}\"")
		}
	case "basic":
		if a.Username == "" {
			add(".username", "missing: basic auth needs a username and a password")
		}
		if a.Password == "" {
			add(".password", "missing or empty: set it from the environment: \"${NAME}\"")
		}
	}
	return ps
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name is empty: give the source a name (it is the source tag)"))
	}
	for _, p := range c.Problems() {
		errs = append(errs, fmt.Errorf("%s: %s", p.Key, p.Msg))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("http source %q: %w", c.Name, err)
	}
	return nil
}

func validHeaderName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return s != ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
