package gateway

import (
	"context"
	"time"

	"github.com/sensorgate/sensorgate/devices"
)

// Uplink is one device message as a feed delivers it, whatever the feed
// format.
type Uplink struct {
	Source string // feed name from config
	Topic  string // MQTT topic it arrived on, for dead letters and debugging
	DevEUI devices.EUI

	// What the network server knows of the device, used when the registry
	// does not list it (unknown_devices: accept).
	DeviceName string            // ChirpStack deviceName, TTS device_id
	Profile    string            // ChirpStack deviceProfileName, TTS brand-model
	Tags       map[string]string // network-server device tags/attributes

	FPort    uint8
	FCnt     uint32
	HasFCnt  bool // the feed carried an FCnt (TTS omits zero values)
	HasFPort bool
	Payload  []byte // application payload, decrypted unless Encrypted

	// Encrypted marks a Payload the network server forwarded still
	// encrypted (ChirpStack v4 with a join server, TTS skip_payload_crypto).
	// The pipeline decrypts it with the registry's AppSKey, using DevAddr
	// (the session's when zero: not every feed carries it) and the 32-bit
	// FCnt, or dead-letters it.
	Encrypted bool
	DevAddr   devices.DevAddr

	// Object is the network server's decoded payload (ChirpStack object or
	// objectJSON, TTS decoded_payload), nil if none.
	Object map[string]any
	// Normalized holds TTS normalized_payload measurement objects.
	Normalized []map[string]any

	// Time is the network-server receive time and the points' time unless a
	// sample carries its own. LocalTime is set when the feed carried no time
	// and the local clock was used instead.
	Time      time.Time
	LocalTime bool

	// ID is the idempotency key: ChirpStack deduplicationId, TTS as:up id,
	// or DevEUI+FCnt.
	ID    string
	Radio Radio

	// Raw is the message as received, kept for dead letters.
	Raw []byte

	// Kind is what the message carries: an uplink (the zero value) or a
	// network-server event, which feeds hand to the same Handler so that
	// every source acknowledges it the same way. An event sets the member
	// of its kind (Status, Event, Gateway) and, for a device event, the
	// device fields, Time and ID above.
	Kind    Kind
	Status  *DeviceStatus
	Event   *DeviceEvent
	Gateway *GatewayStats

	// GatewayCopies marks receptions of an uplink another handler took
	// already (another instance sharing the feed, or the same frame's
	// earlier copies): only Radio.Gateways are written, as uplink_gateway
	// points at Time, the taken uplink's time.
	GatewayCopies bool
}

// Kind is the kind of message a feed delivered.
type Kind uint8

// Message kinds.
const (
	KindUplink       Kind = iota // a device uplink
	KindStatus                   // device status (LoRaWAN DevStatusAns): Status
	KindEvent                    // device join or log event: Event
	KindGatewayStats             // gateway statistics: Gateway
	// KindIgnored is an event sensorgate does not use (downlink acks,
	// locations): counted (events_ignored) and acknowledged.
	KindIgnored
)

// DeviceStatus is a device's answer to the network server's status
// request, as ChirpStack's status event carries it.
type DeviceStatus struct {
	BatteryLevel    float64 // percent
	HasBatteryLevel bool    // false when the device cannot measure it
	Margin          int     // demodulation margin, dB
	HasMargin       bool
	ExternalPower   bool // powered from an external source
}

// Device event types and log levels: the device_event measurement's
// type and level tags, a closed set.
const (
	EventJoin = "join"
	EventLog  = "log"

	LevelInfo    = "info"
	LevelWarning = "warning"
	LevelError   = "error"
)

// DeviceEvent is a device's join or a network server's log event about a
// device (a frame-counter reset, a codec error, a MIC mismatch).
type DeviceEvent struct {
	Type string // EventJoin or EventLog
	// Level and Code are a log event's level (LevelInfo, …) and its
	// network server's code in lower case ("uplink_codec"); the parser
	// maps codes outside the server's documented set to "other", since
	// both are tags.
	Level, Code string
	Description string // log text, truncated
	DevAddr     string // a join's new device address, lower-case hex
}

// Radio is the link-layer metadata of an uplink.
type Radio struct {
	Frequency uint64 // Hz, 0 if unknown
	DR        int    // data rate index, -1 if unknown
	SF        int    // LoRa spreading factor, 0 if unknown or not LoRa
	Bandwidth int    // Hz, 0 if unknown
	// Gateways lists every receiving gateway; the best (highest RSSI) is
	// written to the uplink measurement.
	Gateways []GatewayRx
}

// GatewayRx is one gateway's reception of an uplink.
type GatewayRx struct {
	ID   string // gateway EUI in lower-case hex, or its name if no EUI
	RSSI float64
	SNR  float64
	// HasSNR is false for FSK and for feeds that omit a zero SNR value.
	HasSNR bool
}

// Best returns the reception with the highest RSSI, ties broken by SNR.
func (r *Radio) Best() (GatewayRx, bool) {
	if len(r.Gateways) == 0 {
		return GatewayRx{}, false
	}
	best := r.Gateways[0]
	for _, g := range r.Gateways[1:] {
		if g.RSSI > best.RSSI || (g.RSSI == best.RSSI && g.SNR > best.SNR) {
			best = g
		}
	}
	return best, true
}

// Handler takes one uplink through the pipeline. It returns nil once the
// uplink is durable, as points in the sink or as a dead letter; only then
// may the source acknowledge the message. An error means "not taken":
// the source must not acknowledge, so the broker redelivers.
type Handler func(ctx context.Context, up Uplink) error

// Source delivers uplinks from one feed until ctx is cancelled.
type Source interface {
	Run(ctx context.Context, h Handler) error
}

// GatewayStats is one statistics message of a gateway (ChirpStack Gateway
// Bridge or MQTT Forwarder stats event), sent every stats interval
// (30 s by default). Counts are of that interval.
type GatewayStats struct {
	ID string // gateway EUI, lower-case hex
	// RxReceived and RxOK count frames received, and received with a
	// good CRC; TxReceived and TxEmitted downlinks asked of the gateway,
	// and sent.
	RxReceived, RxOK, TxReceived, TxEmitted uint64
	// Location is set when the message carries one (a GPS gateway, or a
	// location configured in the bridge).
	Location *GatewayLocation
}

// GatewayLocation is where a gateway says it is.
type GatewayLocation struct {
	Latitude, Longitude, Altitude float64
}
