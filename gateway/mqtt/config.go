package mqtt

import (
	"strings"
	"time"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/gateway/tlsconfig"
)

// Feed formats.
const (
	FormatChirpStackV4 = "chirpstack-v4"
	FormatChirpStackV3 = "chirpstack-v3" // json_v3 and protobuf-JSON "json", told apart per message
	FormatTTSV3        = "tts-v3"        // up and up/normalized
	FormatJSON         = "json"          // sensors publishing their own JSON
	// FormatGatewayBridge is ChirpStack Gateway Bridge / MQTT Forwarder
	// uplink events: raw LoRaWAN frames, one message per gateway copy.
	// This package has no parser for them: the Source hands them to a
	// MessageHandler (WithMessageHandler) that decrypts and de-duplicates.
	FormatGatewayBridge = "gateway-bridge"
)

// Config is one MQTT source (an entry of the config's sources list with
// type: mqtt).
type Config struct {
	Name   string   `yaml:"name"`
	Type   string   `yaml:"type"`
	Format string   `yaml:"format"`
	Broker string   `yaml:"broker"` // tcp://host:port, ssl://host:port
	Topics []string `yaml:"topics"`
	// ShareGroup subscribes every topic as the MQTT shared subscription
	// $share/<ShareGroup>/<topic>: instances with the same group (and
	// their own client ids) split the feed between them.
	ShareGroup string `yaml:"share_group"`
	ClientID   string `yaml:"client_id"` // stable: the broker keeps the session under it
	Username   string `yaml:"username"`
	Password   string `yaml:"password"`
	// TLS is used with a TLS broker scheme (ssl, tls, mqtts, tcps, wss):
	// a private CA, a client certificate, the name to verify.
	TLS   tlsconfig.Config `yaml:"tls"`
	QoS   *int             `yaml:"qos"`           // default 1; The Things Stack's broker offers 0 only
	Clean bool             `yaml:"clean_session"` // default false: a persistent session keeps messages while we are down
	// UnknownDevices is accept or reject; default accept for network-server
	// feeds (they name the device) and reject for generic JSON.
	UnknownDevices string `yaml:"unknown_devices"`
	// Map lifts keys of the network server's decoded object (or of a
	// generic JSON message) onto catalogue quantities.
	Map []decoders.Mapping `yaml:"map"`
	// JSON says where a generic JSON message keeps its device and time.
	JSON JSONConfig `yaml:"json"`
	// MaxInFlight bounds the messages received and not yet acknowledged
	// (default 128), and is the number of workers handling them. When all
	// are taken the source stops reading the connection, so memory stays
	// flat however large the broker's backlog is. More in flight means
	// fuller group commits in the spool. Messages of one device are
	// handled in order; a message waits for its device's previous one,
	// overtaken by fewer than MaxInFlight others.
	MaxInFlight int `yaml:"max_in_flight"`
	// ReconnectMax caps the wait between connection attempts, after a loss
	// (exponential backoff up to it) and at start-up (every
	// min(ReconnectMax, 5s)). Default 1m.
	ReconnectMax time.Duration `yaml:"reconnect_max"`
}

// JSONConfig maps a generic JSON message onto an uplink.
type JSONConfig struct {
	// DeviceID is "topic:N" (the Nth topic segment, from 0) or a JSON path
	// ("a.b"); the value is matched against the registry as a DevEUI, else
	// as a device name.
	DeviceID string `yaml:"device_id"`
	// Time is a JSON path; empty means the local clock (counted).
	Time string `yaml:"time"`
	// TimeFormat is rfc3339 (default), unix, unix_ms or unix_ns.
	TimeFormat string `yaml:"time_format"`
	// Object is a JSON path to the object holding the values; empty means
	// the whole message.
	Object string `yaml:"object"`
}

// SharePrefix starts a shared subscription's topic filter (MQTT 5, and
// MQTT 3.1.1 on Mosquitto, EMQX, HiveMQ and VerneMQ).
const SharePrefix = "$share/"

// Subscriptions are the topic filters subscribed to: Topics, each under
// $share/<ShareGroup>/ when a share group is set.
func (c Config) Subscriptions() []string {
	if c.ShareGroup == "" {
		return c.Topics
	}
	out := make([]string, len(c.Topics))
	for i, t := range c.Topics {
		out[i] = SharePrefix + c.ShareGroup + "/" + t
	}
	return out
}

// ShareGroupProblem says what is wrong with a share group name, or "".
func ShareGroupProblem(g string) string {
	if strings.ContainsAny(g, "/+#\x00") {
		return "must not contain /, +, # or NUL: it is one topic level"
	}
	return ""
}
