package mqtt

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/sensorgate/sensorgate/gateway/tlsconfig"
)

// Defaults applied by New.
const (
	DefaultQoS          = 1
	DefaultMaxInFlight  = 128
	DefaultReconnectMax = time.Minute
	// ClientIDPrefix starts the client id derived from the source name.
	ClientIDPrefix = "sensorgate-"

	connectRetryMax = 5 * time.Second // start-up retry interval, at most
)

// Unknown-device policies (Config.UnknownDevices).
const (
	UnknownAccept = "accept"
	UnknownReject = "reject"
)

// withDefaults fills what the operator may leave out. The client id is
// derived from the source name, never random, because the broker keeps the
// persistent session (and what was queued while we were down) under it.
func (c Config) withDefaults() Config {
	if c.ClientID == "" && c.Name != "" {
		c.ClientID = ClientIDPrefix + c.Name
	}
	if c.QoS == nil {
		q := DefaultQoS
		c.QoS = &q
	}
	if c.UnknownDevices == "" && c.Format != FormatGatewayBridge {
		c.UnknownDevices = UnknownAccept
		if c.Format == FormatJSON {
			// A sensor's own JSON names no device the way a network
			// server does, so unknown ids are more likely typos.
			c.UnknownDevices = UnknownReject
		}
	}
	c.MaxInFlight = cmp.Or(c.MaxInFlight, DefaultMaxInFlight)
	c.ReconnectMax = cmp.Or(c.ReconnectMax, DefaultReconnectMax)
	return c
}

// Validate reports every problem of one source's settings at once, each
// naming the setting and what to do.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("mqtt source %q: "+format, append([]any{c.Name}, args...)...))
	}
	if c.Name == "" {
		add("name missing: every source needs a unique name (it tags points and dead letters)")
	}
	if c.Type != "" && c.Type != "mqtt" {
		add("type %q: this is the mqtt source; want type: mqtt", c.Type)
	}
	if _, ok := parsers[c.Format]; !ok && c.Format != FormatGatewayBridge {
		add("format %q: want one of %s", c.Format, formatList())
	}
	if c.Broker == "" {
		add("broker missing: want tcp://host:1883 or ssl://host:8883")
	} else if u, err := url.Parse(c.Broker); err != nil || u.Host == "" {
		add("broker %q: want scheme://host:port, e.g. tcp://127.0.0.1:1883", RedactBroker(c.Broker))
	} else {
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts", "tcps", "ws", "wss":
		default:
			add("broker %q: scheme %q not supported: want tcp, ssl, ws or wss", u.Redacted(), u.Scheme)
		}
		if !c.TLS.IsZero() && !tlsconfig.Scheme(u.Scheme) {
			add("tls is set but broker %q is not a TLS URL: write ssl://host:8883 (or wss://) so the settings are used, or remove tls", c.Broker)
		}
	}
	if err := c.TLS.Validate("tls"); err != nil {
		add("%v", err)
	}
	if len(c.Topics) == 0 {
		add("topics missing: list the topic filters to subscribe to, e.g. application/+/device/+/event/up")
	}
	for i, t := range c.Topics {
		if t == "" {
			add("topics[%d] is empty", i)
		}
		if c.ShareGroup != "" && strings.HasPrefix(t, SharePrefix) {
			add("topics[%d] %q is a shared subscription already, and share_group %q would share it again: write the plain topic", i, t, c.ShareGroup)
		}
	}
	if msg := ShareGroupProblem(c.ShareGroup); msg != "" {
		add("share_group %q %s", c.ShareGroup, msg)
	}
	if c.QoS != nil && (*c.QoS < 0 || *c.QoS > 2) {
		add("qos %d: want 0, 1 or 2 (1 is the default and what the delivery contract needs)", *c.QoS)
	}
	// A gateway-bridge source's unknown_devices is the frame handler's
	// policy (drop or reject), checked where that handler is configured.
	switch c.UnknownDevices {
	case "", UnknownAccept, UnknownReject:
	default:
		if c.Format != FormatGatewayBridge {
			add("unknown_devices %q: want accept or reject", c.UnknownDevices)
		}
	}
	if c.MaxInFlight < 0 {
		add("max_in_flight %d: want a positive number (default %d)", c.MaxInFlight, DefaultMaxInFlight)
	}
	if c.ReconnectMax < 0 {
		add("reconnect_max %s: want a positive duration (default %s)", c.ReconnectMax, DefaultReconnectMax)
	}
	if c.Format == FormatJSON {
		if _, err := compileJSONConfig(c.JSON); err != nil {
			add("%v", err)
		}
	}
	return errors.Join(errs...)
}

// RejectUnknown reports whether uplinks of devices missing from the
// registry go to dead letters, with the format's default applied.
func (c Config) RejectUnknown() bool {
	return c.withDefaults().UnknownDevices == UnknownReject
}

// RedactBroker is a broker URL fit for a log or a message: a password in
// it (user:password@) is replaced by xxxxx, also when the URL does not
// parse. The config refuses credentials in broker URLs; this keeps one
// out of the logs wherever a URL comes from.
func RedactBroker(broker string) string {
	at := strings.LastIndexByte(broker, '@')
	if at < 0 {
		return broker
	}
	if u, err := url.Parse(broker); err == nil && u.User != nil {
		return u.Redacted()
	}
	start := 0
	if i := strings.Index(broker, "://"); i >= 0 && i < at {
		start = i + len("://")
	}
	return broker[:start] + "xxxxx" + broker[at:]
}
