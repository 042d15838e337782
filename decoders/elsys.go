package decoders

import (
	"encoding/binary"
	"fmt"
)

// Elsys decoder, shared by every Elsys sensor (ERS, ELT, EMS families).
//
// Source: Elsys "Sensor payload" (https://elsys.se/public/documents/Sensor_payload.pdf,
// also https://www.elsys.se/en/elsys-payload/) and the byte layout in
// testdata/vectors/ttn-core/elsys-ers-co2-codec.json. The payload is a
// sequence of [type:1][value], with no length byte: the type fixes the
// value's size, multi-byte values are big-endian. Data keys are those of the
// vendor's codec in The Things Network device repository.
//
// Differences from the vendor codec, all on inputs no vector covers:
//   - A value that runs past the end of the payload is an error
//     (ErrTruncated); the vendor codec reads undefined bytes and returns NaN.
//   - An unknown type stops decoding, as in the vendor codec (the sizes of
//     the bytes after it are unknowable), but with a warning; a payload
//     whose very first type is unknown is rejected (ErrInvalid), because
//     nothing in it can be read.
//   - Absolute pulse counters (0x0B, 0x17) are unsigned 32-bit, as the
//     document defines them; the vendor codec's 32-bit shifts turn counts
//     from 2^31 up negative.
//   - GPS (0x09) is returned as the vendor codec returns it, raw 24-bit
//     big-endian integers in "lat" and "long": the scaling is not pinned by
//     any vector, so it is not mapped onto position.* either.

// elsysField is one payload type: its value size and how it goes into the
// record.
type elsysField struct {
	size int // value bytes after the type byte; 0 marks an unknown type
	put  func(r *Record, v []byte)
}

func elsysU8(key string) elsysField {
	return elsysField{1, func(r *Record, v []byte) { r.Number(key, float64(v[0])) }}
}

func elsysU16(key string) elsysField {
	return elsysField{2, func(r *Record, v []byte) { r.Number(key, float64(binary.BigEndian.Uint16(v))) }}
}

func elsysU32(key string) elsysField {
	return elsysField{4, func(r *Record, v []byte) { r.Number(key, float64(binary.BigEndian.Uint32(v))) }}
}

// elsysTemp reads a signed 16-bit value in 0.1 °C.
func elsysTemp(key string) elsysField {
	return elsysField{2, func(r *Record, v []byte) { r.Number(key, elsysTenths(v)) }}
}

func elsysTenths(v []byte) float64 {
	return float64(int16(binary.BigEndian.Uint16(v))) / 10
}

// elsysProbe2 is the external temperature 2 type. Several external probes
// may each send one: the vendor codec keeps a number for one and turns it
// into a list for more, so decodeElsys writes all of them at the first
// (see elsysProbes) and its put is not used.
const elsysProbe2 = 0x19

// elsysFields is indexed by the type byte.
var elsysFields = [256]elsysField{
	0x01: elsysTemp("temperature"),
	0x02: elsysU8("humidity"),
	0x03: {3, func(r *Record, v []byte) {
		// ±63 is 1 g; the vendor codec returns the raw axes.
		r.Number("x", float64(int8(v[0])))
		r.Number("y", float64(int8(v[1])))
		r.Number("z", float64(int8(v[2])))
	}},
	0x04: elsysU16("light"),
	0x05: elsysU8("motion"),
	0x06: elsysU16("co2"),
	0x07: elsysU16("vdd"),
	0x08: elsysU16("analog1"),
	0x09: {6, func(r *Record, v []byte) {
		r.Number("lat", float64(uint32(v[0])<<16|uint32(v[1])<<8|uint32(v[2])))
		r.Number("long", float64(uint32(v[3])<<16|uint32(v[4])<<8|uint32(v[5])))
	}},
	0x0A: elsysU16("pulse1"),
	0x0B: elsysU32("pulseAbs"),
	0x0C: elsysTemp("externalTemperature"),
	0x0D: elsysU8("digital"),
	0x0E: elsysU16("distance"),
	0x0F: elsysU8("accMotion"),
	0x10: {4, func(r *Record, v []byte) {
		r.Number("irInternalTemperature", elsysTenths(v[0:2]))
		r.Number("irExternalTemperature", elsysTenths(v[2:4]))
	}},
	0x11: elsysU8("occupancy"),
	0x12: elsysU8("waterleak"),
	0x13: {65, func(r *Record, v []byte) {
		// One reference byte (°C), then 64 pixels in 0.1 °C above it.
		ref := float64(v[0])
		r.Array("grideye")
		for _, p := range v[1:] {
			r.Number("", ref+float64(p)/10)
		}
		r.End()
	}},
	0x14: {4, func(r *Record, v []byte) { r.Number("pressure", float64(binary.BigEndian.Uint32(v))/1000) }},
	0x15: {2, func(r *Record, v []byte) {
		r.Number("soundPeak", float64(v[0]))
		r.Number("soundAvg", float64(v[1]))
	}},
	0x16: elsysU16("pulse2"),
	0x17: elsysU32("pulseAbs2"),
	0x18: elsysU16("analog2"),
	0x19: {2, nil}, // elsysProbe2
	0x1A: elsysU8("digital2"),
	0x1B: {4, func(r *Record, v []byte) { r.Number("analogUv", float64(int32(binary.BigEndian.Uint32(v)))) }},
	0x1C: elsysU16("tvoc"),
}

// elsysMap lifts Elsys keys onto the catalogue. Left out on purpose:
// externalTemperature (the probe may sit in water, soil or a pipe),
// pressure (an external sensor, often a water pressure transducer),
// occupancy (a 0/1/2 state) and waterleak (a 0..255 level, no threshold
// documented).
var elsysMap = []Mapping{
	{Key: "temperature", Quantity: "air.temperature"},
	{Key: "humidity", Quantity: "air.relativeHumidity"},
	{Key: "light", Quantity: "air.lightIntensity"},
	{Key: "motion", Quantity: "action.motion.count"},
	{Key: "co2", Quantity: "air.co2"},
	{Key: "tvoc", Quantity: "air.tvoc"},
	{Key: "vdd", Quantity: "battery", Scale: 0.001},             // mV -> V
	{Key: "distance", Quantity: "level.distance", Scale: 0.001}, // mm -> m
	// ERS Sound reports the average and the peak level in dB(A) over the
	// reporting interval.
	{Key: "soundAvg", Quantity: "sound.laeq"},
	{Key: "soundPeak", Quantity: "sound.lamax"},
}

// decodeElsys decodes any Elsys payload; see the file comment.
func decodeElsys(in Input) (Result, error) {
	b := in.Bytes
	if len(b) == 0 {
		return Result{}, fmt.Errorf("elsys: empty payload: %w", ErrTruncated)
	}
	// Most types take two or three bytes for one value; the accelerometer
	// (three values in four bytes) and the Grid-EYE grow the record.
	rec := NewRecord(len(b)/2 + 2)
	var warnings []string
	probes := false
	for i := 0; i < len(b); {
		typ := b[i]
		f := &elsysFields[typ]
		if f.size == 0 {
			if i == 0 {
				return Result{}, fmt.Errorf("elsys: unknown data type 0x%02x at byte 0: %w", typ, ErrInvalid)
			}
			warnings = append(warnings, fmt.Sprintf("elsys: unknown data type 0x%02x at byte %d: last %d bytes not decoded", typ, i, len(b)-i))
			break
		}
		if len(b)-i-1 < f.size {
			return Result{}, fmt.Errorf("elsys: data type 0x%02x at byte %d needs %d bytes, %d left: %w", typ, i, f.size, len(b)-i-1, ErrTruncated)
		}
		switch {
		case typ != elsysProbe2:
			f.put(rec, b[i+1:i+1+f.size])
		case !probes:
			probes = true
			elsysProbes(rec, b[i:])
		}
		i += 1 + f.size
	}
	samples := rec.ApplyMappings(elsysMap)
	// Two absolute pulse inputs: one quantity, told apart by channel.
	if v, ok := rec.Lookup("pulseAbs"); ok {
		samples = append(samples, Sample{Quantity: "metering.pulse.count", Value: v, Channel: "1"})
	}
	if v, ok := rec.Lookup("pulseAbs2"); ok {
		samples = append(samples, Sample{Quantity: "metering.pulse.count", Value: v, Channel: "2"})
	}
	return Result{Record: rec, Samples: samples, Warnings: warnings}, nil
}

// elsysProbes writes every external temperature 2 value of b, which starts
// with the first: one number, or a list of them for several probes, as the
// vendor codec gives them. A record cannot turn a number it holds into a
// list, so the values are gathered here, up to where decodeElsys stops.
func elsysProbes(r *Record, b []byte) {
	n := 0
	for i := 0; i >= 0; i = elsysNext(b, i) {
		if b[i] == elsysProbe2 {
			n++
		}
	}
	if n == 1 {
		r.Number("externalTemperature2", elsysTenths(b[1:3]))
		return
	}
	r.Array("externalTemperature2")
	for i := 0; i >= 0; i = elsysNext(b, i) {
		if b[i] == elsysProbe2 {
			r.Number("", elsysTenths(b[i+1:i+3]))
		}
	}
	r.End()
}

// elsysNext returns the index of the field after the complete, known one
// at i, or -1 at the end of b, at an unknown type or at a value cut short.
func elsysNext(b []byte, i int) int {
	i += 1 + elsysFields[b[i]].size
	if i >= len(b) || elsysFields[b[i]].size == 0 || len(b)-i-1 < elsysFields[b[i]].size {
		return -1
	}
	return i
}
