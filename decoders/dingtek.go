package decoders

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
)

// Frame layout constants of the Dingtek DF702/DF703 uplink.
const (
	df703Head       = 0x80
	df703Tail       = 0x81
	df703Short      = 17 // level report without GPS
	df703Long       = 25 // level report with GPS, or parameter report
	df703TypeParams = 0x03
)

// df703 decodes the Dingtek DF703 ultrasonic waste-bin sensor, per
// "DF702&DF703 Waste Bin Sensor Protocol_LoRaWAN" (Dingtek, V2.8,
// 2021-08-09; https://www.dingtek.com/waste-bin-sensor-df703).
//
// Two reference bugs are not reproduced (vector file decoder_quirks): GPS
// coordinates are exact IEEE-754 float32 values, and the angle takes its
// sign from the sign byte instead of always being negated.
var df703 = Func(decodeDF703)

func decodeDF703(in Input) (Result, error) {
	if in.FPort != 3 {
		return Result{}, fmt.Errorf("%w: df703: unknown fPort %d (uplinks use fPort 3)", ErrInvalid, in.FPort)
	}
	b := in.Bytes
	if err := needBytes(b, df703Short, "df703 frame"); err != nil {
		return Result{}, err
	}
	if len(b) != df703Short && len(b) != df703Long {
		return Result{}, fmt.Errorf("%w: df703: wrong length %d (want %d or %d)", ErrInvalid, len(b), df703Short, df703Long)
	}
	// Head, tail and the length byte are checked although the reference
	// dispatches on length alone: they are what tells a frame from noise.
	if b[0] != df703Head || b[len(b)-1] != df703Tail || int(b[4]) != len(b) {
		return Result{}, fmt.Errorf("%w: df703: bad frame head %#02x, tail %#02x or length byte %d", ErrInvalid, b[0], b[len(b)-1], b[4])
	}
	switch {
	case len(b) == df703Short:
		data := df703Level(b, 7)
		return Result{Data: data, Samples: df703Samples(data, nil, nil)}, nil
	case b[3] == df703TypeParams:
		return Result{Data: df703Params(b)}, nil
	default:
		lon := df703Float(b[8:12])
		lat := df703Float(b[12:16])
		data := df703Level(b, 15)
		// The vendor renders coordinates with six decimals; exact float32
		// values (not the reference's approximation, see decoder_quirks).
		data["longitude"] = strconv.FormatFloat(lon, 'f', 6, 64)
		data["latitude"] = strconv.FormatFloat(lat, 'f', 6, 64)
		return Result{Data: data, Samples: df703Samples(data, &lat, &lon)}, nil
	}
}

// df703Float reads a little-endian IEEE-754 float32.
func df703Float(b []byte) float64 {
	return float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
}

// df703Level reads the fields common to both level reports; base is the
// offset of the byte before the temperature (7 without GPS, 15 with), since
// the GPS block shifts everything after the level by eight bytes.
func df703Level(b []byte, base int) map[string]any {
	angle := int(b[base+3])
	if b[base+2] != 0 {
		angle = -angle
	}
	return map[string]any{
		"level":        binary.BigEndian.Uint16(b[5:7]),
		"temperature":  int(int8(b[base+1])), // signed: bins freeze
		"angle":        angle,
		"alarmLevel":   b[base+4]>>4 != 0,
		"alarmFire":    b[base+4]&0x0F != 0,
		"alarmFall":    b[base+5]>>4 != 0,
		"alarmBattery": b[base+5]&0x0F != 0,
		"frameCounter": binary.BigEndian.Uint16(b[base+6 : base+8]),
	}
}

// df703Params reads the parameter report (data type 0x03).
func df703Params(b []byte) map[string]any {
	return map[string]any{
		"firmware":       strconv.Itoa(int(b[5])) + "." + strconv.Itoa(int(b[6])),
		"uploadInterval": b[7],  // hours
		"detectInterval": b[8],  // minutes
		"levelThreshold": b[9],  // cm
		"fireThreshold":  b[10], // °C
		"fallThreshold":  b[11], // degrees
		"fallEnable":     b[12] != 0,
		"workMode":       b[14],
	}
}

// df703Samples maps a level report: the distance from the sensor to the
// waste surface (mm → m), and the position where the frame carries one.
// Coordinates are taken from the float, not the rounded strings.
func df703Samples(data map[string]any, lat, lon *float64) []Sample {
	s := []Sample{{Quantity: "level.distance", Value: float64(data["level"].(uint16)) / 1000}}
	if lat != nil && lon != nil {
		s = append(s,
			Sample{Quantity: "position.latitude", Value: *lat},
			Sample{Quantity: "position.longitude", Value: *lon})
	}
	return s
}
