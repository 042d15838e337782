package decoders

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
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
	DecodeData: decodeNPS405,
	Map: []Mapping{
		{Key: "occupied", Quantity: "parking.occupied"},
		{Key: "battery_voltage", Quantity: "battery"},
	},
}

func decodeNPS405(in Input) (map[string]any, error) {
	b := in.Bytes
	switch in.FPort {
	case 1:
		if err := needBytes(b, 1, "nps405 parking status"); err != nil {
			return nil, err
		}
		data := map[string]any{"type": "parking_status"}
		nps405State(b[0], data)
		return data, nil
	case 2:
		return nps405Heartbeat(b)
	case 3:
		if err := needBytes(b, 5, "nps405 start-up"); err != nil {
			return nil, err
		}
		cause := "unknown"
		if int(b[3]) < len(nps405ResetCauses) && nps405ResetCauses[b[3]] != "" {
			cause = nps405ResetCauses[b[3]]
		}
		return map[string]any{
			"type":             "startup",
			"firmware_version": fmt.Sprintf("%d.%d.%d", b[0], b[1], b[2]),
			"reset_cause":      cause,
			"occupied":         b[4]&1 == 1,
		}, nil
	case 6:
		if err := needBytes(b, 1, "nps405 debug"); err != nil {
			return nil, err
		}
		raw := make([]int, len(b))
		for i, c := range b {
			raw[i] = int(c)
		}
		return map[string]any{"type": "debug", "bytes": raw}, nil
	case 10:
		return nps405Registration(b)
	}
	return nil, fmt.Errorf("%w: nps405: unknown fPort %d", ErrInvalid, in.FPort)
}

// nps405State reads the parking state byte: bit 0 occupied, bits 7-1 the
// compressed duration of the previous state (minutes), whose resolution
// coarsens as it grows; 127 means "longer than the scale".
func nps405State(s byte, data map[string]any) {
	data["occupied"] = s&1 == 1
	c := int(s >> 1)
	var dur int
	var errMargin any
	overflow := false
	switch {
	case c < 90:
		dur, errMargin = c, 0
	case c < 120:
		dur, errMargin = 90+(c-90)*5, 4
	case c < 127:
		dur, errMargin = 240+(c-120)*60, 59
	default:
		dur, errMargin, overflow = 660, nil, true
	}
	data["previous_state_duration"] = dur
	data["previous_state_duration_error"] = errMargin
	data["previous_state_duration_overflow"] = overflow
}

// nps405Heartbeat reads the 6-byte heartbeat: health and state, battery
// (2500 mV + 4 mV steps) and temperature (0.5 °C steps from -54 °C).
func nps405Heartbeat(b []byte) (map[string]any, error) {
	if err := needBytes(b, 6, "nps405 heartbeat"); err != nil {
		return nil, err
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
	return map[string]any{
		"type":             "heartbeat",
		"occupied":         b[0]&1 == 1,
		"hw_health_status": int(b[0] & 0x7F),
		"battery_voltage":  float64(mv) / 1000,
		"temperature":      temp,
		"battery_health":   health,
	}, nil
}

// nps405Registration reads the SDI tag ("user") registration: the state
// byte, then the tag id. Newer firmware (seen only in a later codec, see
// the vector file's index_variants) inserts the tag battery (0.1 V) before
// the id; the two layouts differ in length.
func nps405Registration(b []byte) (map[string]any, error) {
	if err := needBytes(b, 5, "nps405 tag registration"); err != nil {
		return nil, err
	}
	data := map[string]any{"type": "user_registration"}
	if b[0]&1 == 1 {
		nps405State(b[0], data)
	} else {
		// Without a vehicle the state fields carry no information.
		for _, k := range []string{"occupied", "previous_state_duration", "previous_state_duration_error", "previous_state_duration_overflow"} {
			data[k] = nil
		}
	}
	id := b[1:5]
	if len(b) >= 6 {
		data["tag_battery_voltage"] = float64(b[1]) / 10
		id = b[2:6]
	}
	data["tag_id"] = strings.ToUpper(strconv.FormatUint(uint64(binary.BigEndian.Uint32(id)), 16))
	return data, nil
}
