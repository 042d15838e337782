package gateway

import (
	"context"
	"time"
)

// Reason classifies why a message could not become points. Reasons are a
// closed set so counters and the replay filter stay bounded.
type Reason string

// Dead-letter reasons.
const (
	ReasonMalformed     Reason = "malformed"      // not parseable as the feed's format
	ReasonUnknownDevice Reason = "unknown_device" // not in the registry and the source rejects unknowns
	ReasonUnknownModel  Reason = "unknown_model"  // the registry names a model no decoder has
	ReasonDecode        Reason = "decode_error"   // the decoder rejected the payload
	ReasonNormalize     Reason = "normalize_error"
	ReasonRejected      Reason = "rejected_by_influx" // InfluxDB refused the lines (400/422)
	ReasonReplay        Reason = "replay"             // LoRaWAN frame counter not increasing
	ReasonBadMIC        Reason = "bad_mic"            // LoRaWAN MIC matches no session of the DevAddr
	ReasonEncrypted     Reason = "encrypted"          // payload forwarded encrypted, and no AppSKey to decrypt it
	// ReasonUnknownDeviceLimit: an unregistered device past its source's
	// cardinality guard (devices.unknown_max_series, unknown_series_per_minute).
	ReasonUnknownDeviceLimit Reason = "unknown_device_limit"
	// The message names another device than its topic (with per-device
	// broker ACLs, a device writing as another), or a time no set clock
	// gives (1970 or before, past 2262).
	ReasonDeviceMismatch Reason = "device_mismatch"
	ReasonBadTime        Reason = "bad_time"
)

// DeadLetter is a message that could not become points, kept with
// everything needed to replay it after a fix.
type DeadLetter struct {
	Time   time.Time `json:"time"` // when it was dead-lettered
	Source string    `json:"source"`
	Topic  string    `json:"topic,omitempty"`
	DevEUI string    `json:"dev_eui,omitempty"`
	Reason Reason    `json:"reason"`
	Detail string    `json:"detail"` // the error, for the operator
	Raw    []byte    `json:"raw"`    // the message as received (base64 in JSON)
}

// DeadLetters stores dead letters; Put returns nil once the letter is
// taken (the store queues it for a writer that syncs in groups) and an
// error when it is not kept, so the caller can leave the message for a
// redelivery.
type DeadLetters interface {
	Put(ctx context.Context, dl DeadLetter) error
}
