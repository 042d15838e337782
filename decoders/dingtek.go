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
	// Eight values, and the coordinates of a long level report.
	size := 8
	if len(b) == df703Long {
		size = 10
	}
	r := NewRecord(size)
	switch {
	case len(b) == df703Short:
		level := df703Level(b, 7, r)
		return Result{Record: r, Samples: []Sample{df703Distance(level)}}, nil
	case b[3] == df703TypeParams:
		df703Params(b, r)
		return Result{Record: r}, nil
	default:
		lon := df703Float(b[8:12])
		lat := df703Float(b[12:16])
		level := df703Level(b, 15, r)
		// The vendor renders coordinates with six decimals; exact float32
		// values (not the reference's approximation, see decoder_quirks).
		r.String("longitude", strconv.FormatFloat(lon, 'f', 6, 64))
		r.String("latitude", strconv.FormatFloat(lat, 'f', 6, 64))
		// Coordinates are taken from the float, not the rounded strings.
		return Result{Record: r, Samples: []Sample{
			df703Distance(level),
			{Quantity: "position.latitude", Value: NumberVal(lat)},
			{Quantity: "position.longitude", Value: NumberVal(lon)},
		}}, nil
	}
}

// df703Float reads a little-endian IEEE-754 float32.
func df703Float(b []byte) float64 {
	return float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
}

// df703Level writes the fields common to both level reports and returns
// the level (mm); base is the offset of the byte before the temperature (7
// without GPS, 15 with), since the GPS block shifts everything after the
// level by eight bytes.
func df703Level(b []byte, base int, r *Record) uint16 {
	// Negated as an integer: a float would give -0 for a zero angle.
	angle := int(b[base+3])
	if b[base+2] != 0 {
		angle = -angle
	}
	level := binary.BigEndian.Uint16(b[5:7])
	r.Number("level", float64(level))
	r.Number("temperature", float64(int8(b[base+1]))) // signed: bins freeze
	r.Number("angle", float64(angle))
	r.Bool("alarmLevel", b[base+4]>>4 != 0)
	r.Bool("alarmFire", b[base+4]&0x0F != 0)
	r.Bool("alarmFall", b[base+5]>>4 != 0)
	r.Bool("alarmBattery", b[base+5]&0x0F != 0)
	r.Number("frameCounter", float64(binary.BigEndian.Uint16(b[base+6:base+8])))
	return level
}

// df703Params writes the parameter report (data type 0x03).
func df703Params(b []byte, r *Record) {
	r.String("firmware", strconv.Itoa(int(b[5]))+"."+strconv.Itoa(int(b[6])))
	r.Number("uploadInterval", float64(b[7])) // hours
	r.Number("detectInterval", float64(b[8])) // minutes
	r.Number("levelThreshold", float64(b[9])) // cm
	r.Number("fireThreshold", float64(b[10])) // °C
	r.Number("fallThreshold", float64(b[11])) // degrees
	r.Bool("fallEnable", b[12] != 0)
	r.Number("workMode", float64(b[14]))
}

// df703Distance maps a level report's level, the distance from the sensor
// to the waste surface (mm → m).
func df703Distance(mm uint16) Sample {
	return Sample{Quantity: "level.distance", Value: NumberVal(float64(mm) / 1000)}
}
