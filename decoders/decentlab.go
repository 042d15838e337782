package decoders

import (
	"encoding/binary"
	"fmt"
)

// Decentlab DL-series decoders, built on one reader of the Decentlab
// protocol version 2, so another DL device is one more table.
//
// Sources: the Decentlab device datasheets' "Payload" sections
// (https://cdn.decentlab.com/download/datasheets/Decentlab-DL-PM-datasheet.pdf,
// -DL-TRS12-, -DL-MBX-), and the layouts in
// testdata/vectors/ttn-core/decentlab-*.json. A frame is: protocol version
// (1 byte, must be 2), device id (uint16), sensor-group flags (uint16), then
// for every set flag, in bit order, that group's fixed number of uint16
// words; all big-endian. Data mirrors Decentlab's codec: protocol_version,
// device_id, and every value as {displayName, unit?, value}.
//
// Where the vendor codec is loose: a group cut off by the end of the frame
// is an error (ErrTruncated; the codec computes NaN from missing bytes); a
// flag with no group defined for the device, or bytes after the last group,
// are ignored as the codec ignores them, with a warning.

// dlWords holds a group's words, converted to float64 as the vendor codec
// does its arithmetic. Conversions take it by value: a slice or pointer
// passed to a function value escapes, which would cost an allocation per
// frame.
type dlWords [10]float64 // the largest group

// dlValue is one value computed from its group's words; an empty unit
// means none.
type dlValue struct {
	key        string
	name, unit string
	conv       func(x dlWords) float64
}

// dlGroup is a sensor group: a flag bit's worth of words.
type dlGroup struct {
	words  int
	values []dlValue
}

// decentlabModel is one DL device: its groups in flag-bit order and the
// mapping of its values onto the catalogue.
type decentlabModel struct {
	name   string
	groups []dlGroup
	maps   []Mapping
}

// Units exactly as Decentlab writes them (Unicode dot operator and
// superscripts), so Data equals the vendor codec's.
const (
	dlUnitMass   = "µg⋅m⁻³"
	dlUnitNumber = "1⋅cm⁻³"
)

// dlBattery is the battery group every DL device has, on a device-specific
// bit.
var dlBattery = dlGroup{1, []dlValue{
	{"battery_voltage", "Battery voltage", "V", func(x dlWords) float64 { return x[0] / 1000 }},
}}

func dlWord(i int, div float64) func(x dlWords) float64 {
	return func(x dlWords) float64 { return x[i] / div }
}

var (
	decentlabPM = &decentlabModel{
		name: "decentlab dl-pm",
		groups: []dlGroup{
			dlBattery,
			{10, []dlValue{
				{"pm1_0_mass_concentration", "PM1.0 mass concentration", dlUnitMass, dlWord(0, 10)},
				{"pm2_5_mass_concentration", "PM2.5 mass concentration", dlUnitMass, dlWord(1, 10)},
				{"pm4_mass_concentration", "PM4 mass concentration", dlUnitMass, dlWord(2, 10)},
				{"pm10_mass_concentration", "PM10 mass concentration", dlUnitMass, dlWord(3, 10)},
				{"typical_particle_size", "Typical particle size", "nm", dlWord(4, 1)},
				{"pm0_5_number_concentration", "PM0.5 number concentration", dlUnitNumber, dlWord(5, 10)},
				{"pm1_0_number_concentration", "PM1.0 number concentration", dlUnitNumber, dlWord(6, 10)},
				{"pm2_5_number_concentration", "PM2.5 number concentration", dlUnitNumber, dlWord(7, 10)},
				{"pm4_number_concentration", "PM4 number concentration", dlUnitNumber, dlWord(8, 10)},
				{"pm10_number_concentration", "PM10 number concentration", dlUnitNumber, dlWord(9, 10)},
			}},
			{2, []dlValue{
				// SHT-type conversions, in the datasheet's operation
				// order (bit-exact with the vendor codec).
				{"air_temperature", "Air temperature", "°C", func(x dlWords) float64 { return 175.72*x[0]/65536 - 46.85 }},
				{"air_humidity", "Air humidity", "%", func(x dlWords) float64 { return 125*x[1]/65536 - 6 }},
			}},
			{1, []dlValue{
				{"barometric_pressure", "Barometric pressure", "Pa", func(x dlWords) float64 { return x[0] * 2 }},
			}},
		},
		maps: []Mapping{
			{Key: "battery_voltage.value", Quantity: "battery"},
			{Key: "pm1_0_mass_concentration.value", Quantity: "air.pm1"},
			{Key: "pm2_5_mass_concentration.value", Quantity: "air.pm25"},
			{Key: "pm4_mass_concentration.value", Quantity: "air.pm4"},
			{Key: "pm10_mass_concentration.value", Quantity: "air.pm10"},
			{Key: "air_temperature.value", Quantity: "air.temperature"},
			{Key: "air_humidity.value", Quantity: "air.relativeHumidity"},
			{Key: "barometric_pressure.value", Quantity: "air.pressure", Scale: 0.01}, // Pa -> hPa
		},
	}

	decentlabTRS12 = &decentlabModel{
		name: "decentlab dl-trs12",
		groups: []dlGroup{
			{3, []dlValue{
				// Topp-style polynomial of the raw permittivity count.
				{"dielectric_permittivity", "Dielectric permittivity", "", func(x dlWords) float64 {
					v := x[0] / 10
					p := 2.887e-9*v*v*v - 2.08e-5*v*v + 0.05276*v - 43.39
					return p * p
				}},
				{"volumetric_water_content", "Volumetric water content", "m³⋅m⁻³", func(x dlWords) float64 { return x[0]/10*0.0003879 - 0.6956 }},
				{"soil_temperature", "Soil temperature", "°C", func(x dlWords) float64 { return (x[1] - 32768) / 10 }},
				{"electrical_conductivity", "Electrical conductivity", "µS⋅cm⁻¹", dlWord(2, 1)},
			}},
			dlBattery,
		},
		maps: []Mapping{
			{Key: "volumetric_water_content.value", Quantity: "soil.moisture", Scale: 100}, // m³/m³ -> %
			{Key: "soil_temperature.value", Quantity: "soil.temperature"},
			{Key: "electrical_conductivity.value", Quantity: "soil.ec", Scale: 0.001}, // µS/cm -> dS/m
			{Key: "battery_voltage.value", Quantity: "battery"},
		},
	}

	// DL-MBX: the level itself (mounting height - distance) needs the
	// site's mounting height, so only the distance is mapped.
	decentlabMBX = &decentlabModel{
		name: "decentlab dl-mbx",
		groups: []dlGroup{
			{2, []dlValue{
				{"distance", "Distance", "mm", dlWord(0, 1)},
				{"number_of_valid_samples", "Number of valid samples", "", dlWord(1, 1)},
			}},
			dlBattery,
		},
		maps: []Mapping{
			{Key: "distance.value", Quantity: "level.distance", Scale: 0.001}, // mm -> m
			{Key: "battery_voltage.value", Quantity: "battery"},
		},
	}
)

var _ Decoder = (*decentlabModel)(nil)

// Decode reads one protocol version 2 frame; see the file comment.
func (m *decentlabModel) Decode(in Input) (Result, error) {
	b := in.Bytes
	if len(b) < 5 {
		return Result{}, fmt.Errorf("%s: %d bytes, the header needs 5: %w", m.name, len(b), ErrTruncated)
	}
	if b[0] != 2 {
		return Result{}, fmt.Errorf("%s: protocol version %d doesn't match v2: %w", m.name, b[0], ErrInvalid)
	}
	flags := binary.BigEndian.Uint16(b[3:5])
	n := 2 // the header's two values, and an object of three per value
	for bit, g := range m.groups {
		if flags&(1<<bit) != 0 {
			n += 4 * len(g.values)
		}
	}
	rec := NewRecord(n)
	rec.Number("protocol_version", float64(b[0]))
	rec.Number("device_id", float64(binary.BigEndian.Uint16(b[1:3])))
	var warnings []string
	var words dlWords
	pos := 5
	for bit, g := range m.groups {
		if flags&(1<<bit) == 0 {
			continue
		}
		if len(b)-pos < 2*g.words {
			return Result{}, fmt.Errorf("%s: sensor group %d needs %d bytes at byte %d, %d left: %w", m.name, bit, 2*g.words, pos, len(b)-pos, ErrTruncated)
		}
		for i := range g.words {
			words[i] = float64(binary.BigEndian.Uint16(b[pos+2*i:]))
		}
		pos += 2 * g.words
		for _, v := range g.values {
			rec.Object(v.key)
			rec.String("displayName", v.name)
			rec.Number("value", v.conv(words))
			if v.unit != "" {
				rec.String("unit", v.unit)
			}
			rec.End()
		}
	}
	if extra := flags >> len(m.groups); extra != 0 {
		warnings = append(warnings, fmt.Sprintf("%s: flags 0x%04x name sensor groups this device does not have; ignored", m.name, flags))
	}
	if pos < len(b) {
		warnings = append(warnings, fmt.Sprintf("%s: %d bytes after the last sensor group ignored", m.name, len(b)-pos))
	}
	return Result{Record: rec, Samples: rec.ApplyMappings(m.maps), Warnings: warnings}, nil
}
