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
	// channel %s"), held as constants: fmt.Sprintf would allocate.
	var channel, typ string
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
	// bytes, type, status and its five flags, timestamp, decodingInfo,
	// counterValues and the counters: sized once.
	r := NewRecord(12 + len(body)/2)
	r.Object("bytes")
	r.String("type", typ)
	r.Object("status")
	r.Number("frameCounter", float64(st>>5))
	r.Bool("hardwareError", false)
	r.Bool("lowBattery", st&0x02 != 0)
	r.Bool("configurationDone", st&0x01 != 0)
	r.Bool("timestamp", hasTime)
	r.End()
	if hasTime {
		r.String("timestamp", ts.Format("2006-01-02T15:04:05.000"))
	}
	r.String("decodingInfo", "counterValues: [t=0, t-1, t-2, ...]")
	// The frame carries the counter now and, going back in time, how much
	// it grew over each history period.
	now := int64(binary.BigEndian.Uint32(b[2:6]))
	r.Array("counterValues")
	r.Number("", float64(now))
	for i, c := 0, now; i < len(body); i += 2 {
		c -= int64(binary.BigEndian.Uint16(body[i : i+2]))
		r.Number("", float64(c))
	}
	r.End()
	r.End()
	// Only t=0 becomes a sample: the history period that spaces the older
	// values is a device register (S321), not part of the frame.
	s := Sample{Quantity: "metering.pulse.count", Value: NumberVal(float64(now)), Channel: channel, Time: ts}
	return Result{Record: r, Samples: []Sample{s}}, nil
}
