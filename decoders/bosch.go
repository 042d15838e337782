package decoders

import (
	"encoding/binary"
	"fmt"
)

// tps110ResetCauses names the start-up frame's reset cause byte.
var tps110ResetCauses = map[byte]string{
	1: "watchdog",
	2: "power on",
	3: "system request",
	4: "other",
}

// tps110 decodes the Bosch TPS110 Parking Lot Sensor (firmware 0.29.x), per
// "Parking Lot Sensor - LoRaWAN communication interface description" (Bosch
// Connected Devices and Solutions; datasheet
// https://www.bosch-connectivity.com/media/product_detail_pls/parking-lot-sensor-datasheet.pdf).
// The message is chosen by fPort.
var tps110 = Mapped{
	DecodeData: decodeTPS110,
	Map:        []Mapping{{Key: "occupied", Quantity: "parking.occupied"}},
}

func decodeTPS110(in Input) (map[string]any, error) {
	b := in.Bytes
	switch in.FPort {
	case 1:
		if err := needBytes(b, 1, "tps110 parking status"); err != nil {
			return nil, err
		}
		return map[string]any{"type": "parking status", "occupied": b[0]&1 == 1}, nil
	case 2:
		if err := needBytes(b, 1, "tps110 heartbeat"); err != nil {
			return nil, err
		}
		data := map[string]any{"type": "heartbeat", "occupied": b[0]&1 == 1}
		if len(b) > 1 {
			data["temperature"] = int(int8(b[1])) // °C, device temperature
		}
		return data, nil
	case 3:
		return tps110Startup(b)
	case 4, 5:
		if err := needBytes(b, 1, "tps110 device information"); err != nil {
			return nil, err
		}
		typ := "device information"
		if in.FPort == 5 {
			typ = "device usage"
		}
		// Passed through as numbers: the layout is not published.
		raw := make([]int, len(b))
		for i, c := range b {
			raw[i] = int(c)
		}
		return map[string]any{"type": typ, "bytes": raw}, nil
	case 6:
		if err := needBytes(b, 10, "tps110 debug message"); err != nil {
			return nil, err
		}
		return map[string]any{
			"type":           "debug",
			"timestamp":      binary.LittleEndian.Uint32(b[0:4]),
			"debugCode":      tps110Code(b[4:6]),
			"sequenceNumber": binary.LittleEndian.Uint16(b[8:10]),
		}, nil
	}
	return nil, fmt.Errorf("%w: tps110: unknown fPort %d", ErrInvalid, in.FPort)
}

// tps110Startup reads the 17-byte start-up message: three debug codes,
// firmware version, reset cause and the parking state.
func tps110Startup(b []byte) (map[string]any, error) {
	if err := needBytes(b, 17, "tps110 start-up message"); err != nil {
		return nil, err
	}
	codes := []int{}
	for i := 0; i <= 8; i += 4 {
		// A zero code is an empty slot, not a code.
		if c := tps110Code(b[i : i+2]); c != 0 {
			codes = append(codes, c)
		}
	}
	cause, ok := tps110ResetCauses[b[15]]
	if !ok {
		cause = "unknown"
	}
	return map[string]any{
		"type":            "startup",
		"debugCodes":      codes,
		"firmwareVersion": fmt.Sprintf("%d.%d.%d", b[12], b[13], b[14]),
		"resetCause":      cause,
		"occupied":        b[16]&1 == 1,
	}, nil
}

// tps110Code reads a 12-bit little-endian debug code.
func tps110Code(b []byte) int {
	return int(b[1]&0x0F)<<8 | int(b[0])
}
