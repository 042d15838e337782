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
	DecodeRecord: decodeTPS110,
	Map:          []Mapping{{Key: "occupied", Quantity: "parking.occupied"}},
	// A heartbeat; status and heartbeats are most of a parking sensor's
	// traffic, the rarer start-up message grows the record.
	Size: 3,
}

func decodeTPS110(in Input, r *Record) error {
	b := in.Bytes
	switch in.FPort {
	case 1:
		if err := needBytes(b, 1, "tps110 parking status"); err != nil {
			return err
		}
		r.String("type", "parking status")
		r.Bool("occupied", b[0]&1 == 1)
		return nil
	case 2:
		if err := needBytes(b, 1, "tps110 heartbeat"); err != nil {
			return err
		}
		r.String("type", "heartbeat")
		r.Bool("occupied", b[0]&1 == 1)
		if len(b) > 1 {
			r.Number("temperature", float64(int8(b[1]))) // °C, device temperature
		}
		return nil
	case 3:
		return tps110Startup(b, r)
	case 4, 5:
		if err := needBytes(b, 1, "tps110 device information"); err != nil {
			return err
		}
		typ := "device information"
		if in.FPort == 5 {
			typ = "device usage"
		}
		r.String("type", typ)
		// Passed through as numbers: the layout is not published.
		r.Array("bytes")
		for _, c := range b {
			r.Number("", float64(c))
		}
		r.End()
		return nil
	case 6:
		if err := needBytes(b, 10, "tps110 debug message"); err != nil {
			return err
		}
		r.String("type", "debug")
		r.Number("timestamp", float64(binary.LittleEndian.Uint32(b[0:4])))
		r.Number("debugCode", float64(tps110Code(b[4:6])))
		r.Number("sequenceNumber", float64(binary.LittleEndian.Uint16(b[8:10])))
		return nil
	}
	return fmt.Errorf("%w: tps110: unknown fPort %d", ErrInvalid, in.FPort)
}

// tps110Startup reads the 17-byte start-up message: three debug codes,
// firmware version, reset cause and the parking state.
func tps110Startup(b []byte, r *Record) error {
	if err := needBytes(b, 17, "tps110 start-up message"); err != nil {
		return err
	}
	r.String("type", "startup")
	r.Array("debugCodes")
	for i := 0; i <= 8; i += 4 {
		// A zero code is an empty slot, not a code.
		if c := tps110Code(b[i : i+2]); c != 0 {
			r.Number("", float64(c))
		}
	}
	r.End()
	cause, ok := tps110ResetCauses[b[15]]
	if !ok {
		cause = "unknown"
	}
	r.String("firmwareVersion", fmt.Sprintf("%d.%d.%d", b[12], b[13], b[14]))
	r.String("resetCause", cause)
	r.Bool("occupied", b[16]&1 == 1)
	return nil
}

// tps110Code reads a 12-bit little-endian debug code.
func tps110Code(b []byte) int {
	return int(b[1]&0x0F)<<8 | int(b[0])
}
