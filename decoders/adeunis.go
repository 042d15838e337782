package decoders

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Frame codes of the Adeunis PULSE 4 historical counter data frames.
const (
	pulseHistoryA = 0x5A
	pulseHistoryB = 0x5B
)

// pulseEpoch is the origin of the PULSE 4 timestamp (2013-01-01 UTC).
var pulseEpoch = time.Date(2013, 1, 1, 0, 0, 0, 0, time.UTC)

// pulse decodes the Adeunis PULSE 4 and PULSE 4 ATEX metering interfaces,
// per "PULSE V4 Technical Reference Manual, LoRaWAN / Sigfox" (Adeunis, APP
// >= 2.1.0; https://www.adeunis.com/en/produit/pulse-impulse-interface/),
// §2 Radio protocol. It reads the historical counter frames 0x5A (channel
// A) and 0x5B (channel B); other frame codes are rejected so they are kept
// as dead letters until they are supported.
var pulse = Func(decodePulse)

func decodePulse(in Input) (Result, error) {
	b := in.Bytes
	if err := needBytes(b, 1, "pulse frame"); err != nil {
		return Result{}, err
	}
	// The frame type as the reference words it ("%#02x Pulse 4 data -
	// channel %s"), held as constants: an interface made from a constant
	// costs no allocation, fmt.Sprintf two.
	var channel string
	var typ any
	switch b[0] {
	case pulseHistoryA:
		channel, typ = "A", "0x5a Pulse 4 data - channel A"
	case pulseHistoryB:
		channel, typ = "B", "0x5b Pulse 4 data - channel B"
	default:
		return Result{}, fmt.Errorf("%w: pulse: frame code %#02x not supported (only 0x5a/0x5b counter history)", ErrInvalid, b[0])
	}
	if err := needBytes(b, 6, "pulse counter frame"); err != nil {
		return Result{}, err
	}
	st := b[1]
	hasTime := st&0x04 != 0
	body := b[6:]
	var ts time.Time
	if hasTime {
		if err := needBytes(body, 4, "pulse timestamp"); err != nil {
			return Result{}, err
		}
		ts = pulseEpoch.Add(time.Duration(binary.BigEndian.Uint32(body[len(body)-4:])) * time.Second)
		body = body[:len(body)-4]
	}
	if len(body)%2 != 0 {
		return Result{}, fmt.Errorf("%w: pulse: %d bytes of counter deltas, want an even number", ErrTruncated, len(body))
	}
	// The frame carries the counter now and, going back in time, how much
	// it grew over each history period.
	counts := make([]int64, 1, 1+len(body)/2)
	counts[0] = int64(binary.BigEndian.Uint32(b[2:6]))
	for i := 0; i < len(body); i += 2 {
		counts = append(counts, counts[len(counts)-1]-int64(binary.BigEndian.Uint16(body[i:i+2])))
	}
	frame := map[string]any{
		"type": typ,
		"status": map[string]any{
			"frameCounter":      int(st >> 5),
			"hardwareError":     false,
			"lowBattery":        st&0x02 != 0,
			"configurationDone": st&0x01 != 0,
			"timestamp":         hasTime,
		},
		"decodingInfo":  "counterValues: [t=0, t-1, t-2, ...]",
		"counterValues": counts,
	}
	if hasTime {
		frame["timestamp"] = ts.Format("2006-01-02T15:04:05.000")
	}
	// Only t=0 becomes a sample: the history period that spaces the older
	// values is a device register (S321), not part of the frame.
	s := Sample{Quantity: "metering.pulse.count", Value: float64(counts[0]), Channel: channel, Time: ts}
	return Result{Data: map[string]any{"bytes": frame}, Samples: []Sample{s}}, nil
}
