package ttsstorage

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Defaults.
const (
	// DefaultPageSize is the limit of one request: large enough that a
	// day of a few hundred devices takes a few dozen requests, small
	// enough that one request ends well within The Things Stack's
	// request deadlines.
	DefaultPageSize = 1000
	// DefaultRequestInterval is the least time between two requests of
	// one source: The Things Stack rate-limits its HTTP API per key and
	// IP, and a backfill is never urgent enough to crowd out others.
	DefaultRequestInterval = time.Second
	// DefaultTimeout bounds each wait on the server: for the response
	// headers, and between two reads of a response body. A server that
	// stalls longer is given up on (and asked again later).
	DefaultTimeout = 30 * time.Second
	// DefaultDelay is how long after a (re)connection the fetch starts:
	// the Storage Integration writes an uplink a moment after the
	// Application Server publishes it, so uplinks of the last seconds
	// before the connection may not be stored yet.
	DefaultDelay = 10 * time.Second
	// MaxPageSize is The Things Stack's own bound on limit.
	MaxPageSize = 1000
)

// Config is the storage key of a tts-v3 MQTT source:
//
//	storage:
//	  url: https://eu1.cloud.thethings.network
//	  api_key: "${TTS_STORAGE_API_KEY}"
//	  application_id: city-sensors
type Config struct {
	// URL is The Things Stack's address (scheme and host, optionally a
	// path prefix); /api/v3/... is appended.
	URL string `yaml:"url"`
	// APIKey is an API key of the application with the right to read
	// application traffic. Every text form of it is masked.
	APIKey APIKey `yaml:"api_key"`
	// ApplicationID is the application whose stored uplinks are fetched
	// (the id, without @tenant).
	ApplicationID string `yaml:"application_id"`
	// PageSize is the limit of one request (default and at most 1000).
	PageSize int `yaml:"page_size"`
	// RequestInterval is the least time between two requests (default 1s).
	RequestInterval time.Duration `yaml:"request_interval"`
	// Timeout bounds waiting for response headers and between reads of a
	// response (default 30s).
	Timeout time.Duration `yaml:"timeout"`
	// Delay is the wait after a (re)connection before fetching (default 10s).
	Delay time.Duration `yaml:"delay"`
}

// WithDefaults fills what is unset.
func (c Config) WithDefaults() Config {
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.RequestInterval == 0 {
		c.RequestInterval = DefaultRequestInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Delay == 0 {
		c.Delay = DefaultDelay
	}
	return c
}

// Problems lists what is wrong with the settings, each as "key: problem".
func (c Config) Problems() []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if c.URL == "" {
		add("url: required: The Things Stack's address, e.g. https://eu1.cloud.thethings.network")
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		add("url: %q is not an http(s) URL: write e.g. https://eu1.cloud.thethings.network", c.URL)
	} else if u.User != nil {
		add("url: %q carries credentials: put the API key in api_key instead", u.Redacted())
	} else if u.RawQuery != "" {
		add("url: %q has a query: give only scheme, host and an optional path prefix", u.Redacted())
	}
	if c.APIKey.Secret() == "" {
		add("api_key: required: an API key of the application with the right to read application traffic (Read application traffic), e.g. \"${TTS_STORAGE_API_KEY}\"")
	} else if strings.Contains(c.APIKey.Secret(), "***") {
		add("api_key: masked: this is how sensorgate shows a key, not the key; give the key itself (or \"${NAME}\" of an environment variable holding it)")
	} else if strings.ContainsAny(c.APIKey.Secret(), " \t\r\n") {
		add("api_key: holds white space: a stray space or line break from copying; give the key exactly")
	}
	if c.ApplicationID == "" {
		add("application_id: required: the application's id in The Things Stack")
	} else if strings.ContainsAny(c.ApplicationID, "/?#@ ") {
		add("application_id: %q is not an application id (lower-case letters, digits and dashes; without @tenant)", c.ApplicationID)
	}
	if c.PageSize < 0 || c.PageSize > MaxPageSize {
		add("page_size: %d: want 1 to %d", c.PageSize, MaxPageSize)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"request_interval", c.RequestInterval}, {"timeout", c.Timeout}, {"delay", c.Delay}} {
		if d.v < 0 {
			add("%s: %s: must not be negative", d.key, d.v)
		}
	}
	return out
}

// Validate returns the problems as one error, nil if there are none.
func (c Config) Validate() error {
	p := c.Problems()
	if len(p) == 0 {
		return nil
	}
	return errors.New("storage: " + strings.Join(p, "; "))
}

// APIKey is a The Things Stack API key. Its text, JSON and YAML forms are
// masked: "NNSXS.<key id>.***" for a key of The Things Stack's own form
// (the key id is what the Console lists, so an operator can tell which key
// a message means; the secret part is never shown), else "***" and the
// last 4 characters. Only Secret gives the key itself, for the request
// header.
type APIKey struct{ s string }

// NewAPIKey wraps a key.
func NewAPIKey(s string) APIKey { return APIKey{s} }

// Secret is the key itself.
func (k APIKey) Secret() string { return k.s }

// IsZero reports whether no key is set.
func (k APIKey) IsZero() bool { return k.s == "" }

// String is the masked form; "" for no key.
func (k APIKey) String() string {
	if k.s == "" {
		return ""
	}
	if parts := strings.Split(k.s, "."); len(parts) == 3 && parts[0] == "NNSXS" && parts[1] != "" {
		return parts[0] + "." + parts[1] + ".***"
	}
	if len(k.s) <= 8 {
		return "***"
	}
	return "***" + k.s[len(k.s)-4:]
}

// Format masks the key whatever the verb.
func (k APIKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// GoString masks the key for %#v too.
func (k APIKey) GoString() string { return k.String() }

// MarshalText writes the masked form.
func (k APIKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// MarshalYAML writes the masked form.
func (k APIKey) MarshalYAML() (any, error) { return k.String(), nil }

// UnmarshalText reads a key; Problems refuses a masked one.
func (k *APIKey) UnmarshalText(text []byte) error {
	k.s = string(text)
	return nil
}
