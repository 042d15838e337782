package decoders

import (
	"math"
	"sort"
	"strings"
)

// Kind is the value type of a quantity; it fixes the InfluxDB field type
// for good (float, boolean or string).
type Kind uint8

// Kinds of quantity values.
const (
	Number Kind = iota + 1
	Bool
	Enum
)

func (k Kind) String() string {
	switch k {
	case Number:
		return "number"
	case Bool:
		return "boolean"
	case Enum:
		return "string"
	}
	return "unknown"
}

// Quantity is one entry of the normalized vocabulary.
type Quantity struct {
	Path         string
	Unit         string
	Kind         Kind
	Min, Max     float64 // inclusive bounds; ±Inf where unbounded
	ExclusiveMax bool    // Max itself is out of range (wind.direction < 360)
	Enum         []string
	Note         string
	// Measurement and Field are where the quantity is stored in InfluxDB
	// (ARCHITECTURE §5): first path segment, rest joined with "_"; top-level
	// quantities go to measurement "device".
	Measurement, Field string
}

// InRange reports whether a number lies within the quantity's bounds.
func (q *Quantity) InRange(f float64) bool {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < q.Min || f > q.Max {
		return false
	}
	return !(q.ExclusiveMax && f == q.Max)
}

var inf = math.Inf(1)

func num(path, unit string, lo, hi float64, note string) Quantity {
	return Quantity{Path: path, Unit: unit, Kind: Number, Min: lo, Max: hi, Note: note}
}

// catalogueTable is the normalized vocabulary. The Things Stack's normalized
// payload fields keep their exact path, unit and range (see
// shared/research-samples/tts-normalized-payload-fields.json); the rest are
// municipal extensions in the same style. A path never changes its unit: add
// a new path instead.
var catalogueTable = []Quantity{
	// The Things Stack normalized payload.
	num("battery", "V", 0, inf, "battery voltage (TTS)"),
	num("soil.depth", "cm", 0, inf, "probe depth below surface"),
	num("soil.moisture", "%", 0, 100, "volumetric water content"),
	num("soil.temperature", "°C", -273.15, inf, ""),
	num("soil.ec", "dS/m", 0, 621, "electrical conductivity"),
	num("soil.pH", "pH", 0, 14, ""),
	num("soil.n", "ppm", 0, 1e6, "nitrogen"),
	num("soil.p", "ppm", 0, 1e6, "phosphorus"),
	num("soil.k", "ppm", 0, 1e6, "potassium"),
	{Path: "air.location", Kind: Enum, Enum: []string{"indoor", "outdoor"}},
	num("air.temperature", "°C", -273.15, inf, ""),
	num("air.relativeHumidity", "%", 0, 100, ""),
	num("air.pressure", "hPa", 900, 1100, "TTS range; stations above ~1000 m read below 900"),
	num("air.co2", "ppm", 0, 1e6, ""),
	num("air.lightIntensity", "lx", 0, inf, ""),
	num("wind.speed", "m/s", 0, inf, ""),
	{Path: "wind.direction", Unit: "°", Kind: Number, Min: 0, Max: 360, ExclusiveMax: true},
	num("rain.intensity", "mm/h", 0, inf, ""),
	num("rain.cumulative", "mm", 0, inf, ""),
	{Path: "water.leak", Kind: Bool, Min: -inf, Max: inf, Note: `TTS also allows the strings "true"/"false"; stored as boolean`},
	num("water.temperature.min", "°C", -273.15, inf, ""),
	num("water.temperature.max", "°C", -273.15, inf, ""),
	num("water.temperature.avg", "°C", -273.15, inf, ""),
	num("water.temperature.current", "°C", -273.15, inf, ""),
	num("metering.water.total", "L", 0, inf, "cumulative volume"),
	{Path: "action.motion.detected", Kind: Bool, Min: -inf, Max: inf},
	num("action.motion.count", "count", 0, inf, ""),
	{Path: "action.contactState", Kind: Enum, Enum: []string{"open", "closed"}},
	num("position.latitude", "°", -90, 90, ""),
	num("position.longitude", "°", -180, 180, ""),

	// Municipal extensions (ARCHITECTURE §4).
	num("batteryLevel", "%", 0, 100, "battery charge; battery stays volts"),
	num("air.pm1", "µg/m³", 0, inf, ""),
	num("air.pm25", "µg/m³", 0, inf, ""),
	num("air.pm10", "µg/m³", 0, inf, ""),
	num("air.tvoc", "ppb", 0, inf, "total volatile organic compounds"),
	num("sound.laeq", "dB(A)", 0, 200, "equivalent continuous level"),
	num("sound.lamax", "dB(A)", 0, 200, ""),
	num("sound.lamin", "dB(A)", 0, 200, ""),
	num("level.distance", "m", 0, inf, "sensor to surface (bins, tanks, rivers)"),
	num("level.fill", "%", 0, 100, ""),
	num("water.level", "m", -inf, inf, "river or tank level against the site's datum"),
	num("water.pressure", "hPa", 0, inf, ""),
	num("count.in", "count", 0, inf, "crossings since the last report"),
	num("count.out", "count", 0, inf, "crossings since the last report"),
	num("count.occupancy", "count", 0, inf, "present now"),
	{Path: "parking.occupied", Kind: Bool, Min: -inf, Max: inf},
	num("metering.electricity.total", "kWh", 0, inf, "cumulative"),
	num("metering.electricity.power", "W", -inf, inf, "negative when feeding in"),
	num("metering.heat.total", "kWh", 0, inf, "cumulative"),
	num("metering.heat.power", "W", -inf, inf, ""),
	num("metering.heat.flowTemperature", "°C", -273.15, inf, ""),
	num("metering.heat.returnTemperature", "°C", -273.15, inf, ""),
	num("metering.water.flow", "L/h", -inf, inf, ""),
	num("metering.gas.total", "m³", 0, inf, "cumulative"),
	num("metering.pulse.count", "count", 0, inf, "cumulative raw pulses"),
	// The heat-carrier water of a heat meter (EN 1434, M-Bus VIFs 0x10-0x17
	// and 0x38-0x3F, units as the Elvaco CMi4110 manual gives them): kept
	// apart from metering.water.* so district-heating circulation is never
	// summed with water consumption.
	num("metering.heat.volume", "m³", 0, inf, "cumulative heat-carrier volume"),
	num("metering.heat.flow", "m³/h", -inf, inf, "heat-carrier volume flow"),
	num("position.altitude", "m", -inf, inf, ""),
	// Units as the Milesight AM300 series datasheet gives them (HCHO in
	// 0.01 mg/m³, O3 in 0.01 ppm) and the Decentlab DL-PM datasheet (PM4).
	num("air.hcho", "mg/m³", 0, inf, "formaldehyde"),
	num("air.o3", "ppm", 0, inf, "ozone"),
	num("air.pm4", "µg/m³", 0, inf, ""),
}

// catalogue indexes catalogueTable by path.
var catalogue = func() map[string]*Quantity {
	m := make(map[string]*Quantity, len(catalogueTable))
	for i := range catalogueTable {
		q := &catalogueTable[i]
		if _, dup := m[q.Path]; dup {
			panic("decoders: catalogue path listed twice: " + q.Path)
		}
		if first, rest, ok := strings.Cut(q.Path, "."); ok {
			q.Measurement, q.Field = first, strings.ReplaceAll(rest, ".", "_")
		} else {
			q.Measurement, q.Field = "device", q.Path
		}
		m[q.Path] = q
	}
	return m
}()

// LookupQuantity returns the catalogue entry for a path.
func LookupQuantity(path string) (*Quantity, bool) {
	q, ok := catalogue[path]
	return q, ok
}

// Catalogue returns every quantity, sorted by measurement and field, for
// documentation and the schema listing. The slice is a copy.
func Catalogue() []Quantity {
	out := append([]Quantity(nil), catalogueTable...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Measurement != out[j].Measurement {
			return out[i].Measurement < out[j].Measurement
		}
		return out[i].Field < out[j].Field
	})
	return out
}
