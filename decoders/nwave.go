package decoders

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// nps405ResetCauses indexes the start-up frame's reset cause byte; empty
// entries are reserved.
var nps405ResetCauses = []string{
	"rejoining_lorawan_network", "watchdog", "power_on", "user_request", "", "", "brownout", "other",
}

// nps405 decodes the Nwave NPS405 (G4 FM / G4 SM) smart parking sensors,
// per "Nwave LoRaWAN Parking Sensor - Getting Started", §4 Application
// protocol description
// (https://nwaveio.atlassian.net/wiki/spaces/ND/pages/1654784042). The
// message is chosen by fPort.
var nps405 = Mapped{
	DecodeRecord: decodeNPS405,
	Map: []Mapping{
		{Key: "occupied", Quantity: "parking.occupied"},
		{Key: "battery_voltage", Quantity: "battery"},
	},
	// A heartbeat; status and heartbeats are most of a parking sensor's
	// traffic, a tag registration with its battery grows the record.
	Size: 6,
}

func decodeNPS405(in Input, r *Record) error {
	b := in.Bytes
	switch in.FPort {
	case 1:
		if err := needBytes(b, 1, "nps405 parking status"); err != nil {
			return err
		}
		r.String("type", "parking_status")
		nps405State(b[0], r)
		return nil
	case 2:
		return nps405Heartbeat(b, r)
	case 3:
		if err := needBytes(b, 5, "nps405 start-up"); err != nil {
			return err
		}
		cause := "unknown"
		if int(b[3]) < len(nps405ResetCauses) && nps405ResetCauses[b[3]] != "" {
			cause = nps405ResetCauses[b[3]]
		}
		r.String("type", "startup")
		r.String("firmware_version", fmt.Sprintf("%d.%d.%d", b[0], b[1], b[2]))
		r.String("reset_cause", cause)
		r.Bool("occupied", b[4]&1 == 1)
		return nil
	case 6:
		if err := needBytes(b, 1, "nps405 debug"); err != nil {
			return err
		}
		r.String("type", "debug")
		r.Array("bytes")
		for _, c := range b {
			r.Number("", float64(c))
		}
		r.End()
		return nil
	case 10:
		return nps405Registration(b, r)
	}
	return fmt.Errorf("%w: nps405: unknown fPort %d", ErrInvalid, in.FPort)
}

// nps405State reads the parking state byte: bit 0 occupied, bits 7-1 the
// compressed duration of the previous state (minutes), whose resolution
// coarsens as it grows; 127 means "longer than the scale".
func nps405State(s byte, r *Record) {
	r.Bool("occupied", s&1 == 1)
	c := float64(s >> 1)
	switch {
	case c < 90:
		nps405Duration(r, c, 0)
	case c < 120:
		nps405Duration(r, 90+(c-90)*5, 4)
	case c < 127:
		nps405Duration(r, 240+(c-120)*60, 59)
	default:
		// Past the scale the margin is unknown: null, as the vendor
		// codec has it.
		r.Number("previous_state_duration", 660)
		r.Null("previous_state_duration_error")
		r.Bool("previous_state_duration_overflow", true)
	}
}

// nps405Duration writes a previous state duration within the scale.
func nps405Duration(r *Record, minutes, margin float64) {
	r.Number("previous_state_duration", minutes)
	r.Number("previous_state_duration_error", margin)
	r.Bool("previous_state_duration_overflow", false)
}

// nps405Heartbeat reads the 6-byte heartbeat: health and state, battery
// (2500 mV + 4 mV steps) and temperature (0.5 °C steps from -54 °C).
func nps405Heartbeat(b []byte, r *Record) error {
	if err := needBytes(b, 6, "nps405 heartbeat"); err != nil {
		return err
	}
	mv := 2500 + 4*int(b[1])
	temp := float64(int8(b[2]))/2 + 10
	// Cold batteries sag: the thresholds drop by 100 mV below -5 °C.
	hi, lo := 3000, 2900
	if temp < -5 {
		hi, lo = 2900, 2800
	}
	health := "critical"
	switch {
	case mv >= hi:
		health = "normal"
	case mv >= lo:
		health = "low"
	}
	r.String("type", "heartbeat")
	r.Bool("occupied", b[0]&1 == 1)
	r.Number("hw_health_status", float64(b[0]&0x7F))
	r.Number("battery_voltage", float64(mv)/1000)
	r.Number("temperature", temp)
	r.String("battery_health", health)
	return nil
}

// nps405Registration reads the SDI tag ("user") registration: the state
// byte, then the tag id. Newer firmware (seen only in a later codec, see
// the vector file's index_variants) inserts the tag battery (0.1 V) before
// the id; the two layouts differ in length.
func nps405Registration(b []byte, r *Record) error {
	if err := needBytes(b, 5, "nps405 tag registration"); err != nil {
		return err
	}
	r.String("type", "user_registration")
	if b[0]&1 == 1 {
		nps405State(b[0], r)
	} else {
		// Without a vehicle the state fields carry no information.
		for _, k := range [...]string{"occupied", "previous_state_duration", "previous_state_duration_error", "previous_state_duration_overflow"} {
			r.Null(k)
		}
	}
	id := b[1:5]
	if len(b) >= 6 {
		r.Number("tag_battery_voltage", float64(b[1])/10)
		id = b[2:6]
	}
	// Upper-case hex without leading zeros, as the vendor codec prints
	// it; formatted in place, so the string is the only allocation.
	var buf [8]byte
	hex := strconv.AppendUint(buf[:0], uint64(binary.BigEndian.Uint32(id)), 16)
	for i, c := range hex {
		if c >= 'a' {
			hex[i] = c - 'a' + 'A'
		}
	}
	r.String("tag_id", string(hex))
	return nil
}
