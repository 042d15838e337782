package decoders

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Milesight IoT decoders (AM100/AM300 indoor air, EM300/EM310 environment
// and distance, VS133 people counter).
//
// Sources: the Milesight user guides' "Uplink Payload" sections (AM100
// series, AM300 series, EM300 series, EM310-UDL and VS133 user guides,
// https://resource.milesight.com/milesight/iot/document/), the byte
// layouts in testdata/vectors/ttn-core/milesight-iot-*.json, and, for the
// models without vectors, the payload tables of the READMEs in the
// Milesight-IoT SensorDecoders repository (am-series/, em-series/; each
// model names its own). Every Milesight
// payload is a sequence of [channel id:1][channel type:1][value], values
// little-endian; the (id, type) pair fixes the value's size. Data keys are
// those of each device's codec in The Things Network device repository;
// they differ between codec generations (the AM307's "pir" is the AM107's
// "activity"), so every model has its own table.
//
// Behaviour on inputs the references handle loosely:
//   - An unknown (id, type) pair stops decoding, as in the vendor codecs
//     (what follows cannot be sized), with a warning; an unknown first pair
//     rejects the payload (ErrInvalid), because nothing in it was read.
//   - The device-information pairs of channel 0xFF (power-on, versions,
//     serial number, class) are skipped without keys: they carry no
//     measurement, and their keys vary between codec versions.
//   - A value or a pair cut off by the end of the payload is an error
//     (ErrTruncated); the vendor codecs read undefined bytes.
//   - History records (channel 0x20/0x21, type 0xCE: readings the device
//     stored while it could not send) go to Data's "history" list, as in
//     the vendor codecs, and become samples at the record's own time. A
//     record time before 2015 means the device clock was never set: that
//     record stays in Data only, with a warning, rather than be written
//     at 1970. Models whose record layout is not documented or not
//     known (AM307/AM308, the plain AM319) keep the stop-with-warning
//     rule for it.

// msField is one (channel id, channel type) pair.
type msField struct {
	id, typ byte
	size    int
	put     func(r *Record, v []byte) // nil: skip the value
	// history holds the parts of a history record (type 0xCE), which
	// Decode reads itself: their samples need the model's mapping.
	history []msField
}

// milesightModel is one device's pair table and its catalogue mapping.
type milesightModel struct {
	name   string
	fields []msField
	maps   []Mapping
	// samples adds samples that a Mapping cannot express (enum or boolean
	// translations, channels); may be nil.
	samples func(r *Record, out []Sample) []Sample
}

func msU8(id, typ byte, key string, div float64) msField {
	return msField{id: id, typ: typ, size: 1, put: func(r *Record, v []byte) { r.Number(key, float64(v[0])/div) }}
}

func msU16(id, typ byte, key string, div float64) msField {
	return msField{id: id, typ: typ, size: 2, put: func(r *Record, v []byte) {
		r.Number(key, float64(binary.LittleEndian.Uint16(v))/div)
	}}
}

func msS16(id, typ byte, key string, div float64) msField {
	return msField{id: id, typ: typ, size: 2, put: func(r *Record, v []byte) {
		r.Number(key, float64(int16(binary.LittleEndian.Uint16(v)))/div)
	}}
}

// msEnum maps a one-byte state: 1 (or, with anyNonZero, any non-zero) is
// on, the rest is off.
func msEnum(id, typ byte, key, onText, offText string, anyNonZero bool) msField {
	return msField{id: id, typ: typ, size: 1, put: func(r *Record, v []byte) {
		if v[0] == 1 || (anyNonZero && v[0] != 0) {
			r.String(key, onText)
		} else {
			r.String(key, offText)
		}
	}}
}

// msInfo are the device-information pairs every Milesight device sends on
// channel 0xFF after joining; skipped (see the file comment).
var msInfo = []msField{
	{id: 0xFF, typ: 0x01, size: 1}, // protocol version
	{id: 0xFF, typ: 0x09, size: 2}, // hardware version
	{id: 0xFF, typ: 0x0A, size: 2}, // firmware version
	{id: 0xFF, typ: 0x0B, size: 1}, // power on
	{id: 0xFF, typ: 0x0F, size: 1}, // LoRaWAN class
	{id: 0xFF, typ: 0x16, size: 8}, // serial number
	{id: 0xFF, typ: 0xFF, size: 2}, // TSL version
}

func msFields(f ...msField) []msField { return append(f, msInfo...) }

// Pairs shared by most models.
var (
	msBattery     = msU8(0x01, 0x75, "battery", 1) // %
	msTemperature = msS16(0x03, 0x67, "temperature", 10)
	msHumidity    = msU8(0x04, 0x68, "humidity", 2)
	msCO2         = msU16(0x07, 0x7D, "co2", 1)
)

// Catalogue rows shared by most models. TVOC is not mapped: its unit
// changes between firmware generations (a raw level, an index in 0.01, or
// µg/m³), none of them air.tvoc's ppb.
var msAirMap = []Mapping{
	{Key: "battery", Quantity: "batteryLevel"},
	{Key: "temperature", Quantity: "air.temperature"},
	{Key: "humidity", Quantity: "air.relativeHumidity"},
	{Key: "co2", Quantity: "air.co2"},
	{Key: "pressure", Quantity: "air.pressure"},
	{Key: "illumination", Quantity: "air.lightIntensity"},
	{Key: "activity", Quantity: "action.motion.count"},
	{Key: "pm2_5", Quantity: "air.pm25"},
	{Key: "pm10", Quantity: "air.pm10"},
	{Key: "hcho", Quantity: "air.hcho"},
	{Key: "o3", Quantity: "air.o3"},
	{Key: "distance", Quantity: "level.distance", Scale: 0.001}, // mm -> m
}

// msPIR turns the AM300's "pir" state into action.motion.detected.
func msPIR(r *Record, out []Sample) []Sample {
	if v, ok := r.Lookup("pir"); ok && v.Kind == StringValue {
		out = append(out, Sample{Quantity: "action.motion.detected", Value: BoolVal(v.Str == "trigger")})
	}
	return out
}

func msU32(id, typ byte, key string) msField {
	return msField{id: id, typ: typ, size: 4, put: func(r *Record, v []byte) {
		r.Number(key, float64(binary.LittleEndian.Uint32(v)))
	}}
}

// msWater is the EM300-DI's converted count (type 0xE1): water_conv and
// pulse_conv (uint16, 0.1) set how many pulses make how much water, water
// is their product with the counter, a float32. With alarm, a ninth byte
// tells which water alarm fired. A NaN or infinite water is left out: no
// meter reading is one, and Data must stay writable.
func msWater(id byte, alarm bool) msField {
	size := 8
	if alarm {
		size = 9
	}
	return msField{id: id, typ: 0xE1, size: size, put: func(r *Record, v []byte) {
		r.Number("water_conv", float64(binary.LittleEndian.Uint16(v[0:2]))/10)
		r.Number("pulse_conv", float64(binary.LittleEndian.Uint16(v[2:4]))/10)
		if w := float64(math.Float32frombits(binary.LittleEndian.Uint32(v[4:8]))); !math.IsNaN(w) && !math.IsInf(w, 0) {
			r.Number("water", w)
		}
		if alarm {
			r.String("water_alarm", msWaterAlarm(v[8]))
		}
	}}
}

// EM300-DI state texts. Codes past a table's end are "unknown", as in the
// vendor codec.
const msUnknown = "unknown"

var (
	msGPIO      = [2]string{"low", "high"}
	msGPIOType  = [2]string{"gpio", "counter"}
	msGPIOAlarm = [2]string{"gpio alarm release", "gpio alarm"}
	// msDIAlarms are the alarm codes of a 0x21 history record; codes 1-4
	// are also those of the water alarm pair (0x85 0xE1), where 0 does
	// not occur.
	msDIAlarms = [7]string{
		"none",
		"water outage timeout alarm",
		"water outage timeout alarm release",
		"water flow timeout alarm",
		"water flow timeout alarm release",
		"gpio alarm",
		"gpio alarm release",
	}
)

func msGPIOLevel(c byte) string {
	if c == 1 {
		return msGPIO[1]
	}
	return msGPIO[0]
}

func msDIAlarm(c byte) string {
	if int(c) < len(msDIAlarms) {
		return msDIAlarms[c]
	}
	return msUnknown
}

// msWaterAlarm reads the water alarm pair's code: 1-4, the rest unknown.
func msWaterAlarm(c byte) string {
	if c >= 1 && c <= 4 {
		return msDIAlarms[c]
	}
	return msUnknown
}

// msDIWater is the EM300-DI's live converted count, whose 8 bytes also end
// a 0x21 history record.
var msDIWater = msWater(0x05, false)

// diHistoryV1 is the tail of an EM300-DI history record 0x20: the input
// mode (1 digital, 2 counter), the level, the pulse count (uint32); the
// mode says which of the two is set.
func diHistoryV1(r *Record, v []byte) {
	switch v[0] {
	case 1:
		r.String("gpio_type", msGPIOType[0])
		r.String("gpio", msGPIOLevel(v[1]))
	case 2:
		r.String("gpio_type", msGPIOType[1])
		r.Number("pulse", float64(binary.LittleEndian.Uint32(v[2:6])))
	}
}

// diHistoryV2 is the tail of an EM300-DI history record 0x21 (firmware
// with water conversion): alarm code, mode, level, then the 8 bytes of a
// 0x05 0xE1 pair.
func diHistoryV2(r *Record, v []byte) {
	r.String("alarm", msDIAlarm(v[0]))
	switch v[1] {
	case 1:
		r.String("gpio_type", msGPIOType[0])
		r.String("gpio", msGPIOLevel(v[2]))
	case 2:
		r.String("gpio_type", msGPIOType[1])
		msDIWater.put(r, v[3:11])
	}
}

var msDIMap = []Mapping{
	{Key: "battery", Quantity: "batteryLevel"},
	{Key: "temperature", Quantity: "air.temperature"},
	{Key: "humidity", Quantity: "air.relativeHumidity"},
	{Key: "pulse", Quantity: "metering.pulse.count"},
}

// msHistory is a history record (type 0xCE) on channel id: a uint32 Unix
// time, then the parts back to back, each read as its live pair is (only
// the parts' size and put are used).
func msHistory(id byte, parts ...msField) msField {
	size := 4
	for _, p := range parts {
		size += p.size
	}
	return msField{id: id, typ: 0xCE, size: size, history: parts}
}

// msEpoch is 2015-01-01 UTC, before any of these models shipped: a history
// time before it comes from a device clock that was never set.
const msEpoch = 1420070400

// msHistoryValues is room for the values of the longest history record,
// the AM319's (its time and ten parts), so a record never grows.
const msHistoryValues = 11

// msHistoryOut collects what the history records of a frame add, to go
// after the live values' samples and the frame's own warning.
type msHistoryOut struct {
	samples  []Sample
	warnings []string
}

// readHistory reads a history record into r's "history" list and, at the
// record's time, its samples (see the file comment). The record is decoded
// into a record of its own first, so the model's mapping and sample rules
// read it as they read a live frame.
func (m *milesightModel) readHistory(r *Record, parts []msField, v []byte, out *msHistoryOut) {
	point := NewRecord(msHistoryValues)
	defer point.Release() // r and the samples get copies of its values
	ts := binary.LittleEndian.Uint32(v)
	point.Number("timestamp", float64(ts))
	off := 4
	for _, p := range parts {
		if p.put != nil {
			p.put(point, v[off:off+p.size])
		}
		off += p.size
	}
	r.Array("history")
	r.Object("")
	point.Flat(func(key string, x Value) {
		switch x.Kind {
		case NumberValue:
			r.Number(key, x.Num)
		case StringValue:
			r.String(key, x.Str)
		case BoolValue:
			r.Bool(key, x.Bool)
		}
	})
	r.End()
	r.End()
	if ts < msEpoch {
		out.warnings = append(out.warnings, fmt.Sprintf("%s: history record with device time %d, before 2015: set the device clock; kept in data only", m.name, ts))
		return
	}
	at := time.Unix(int64(ts), 0).UTC()
	ps := point.ApplyMappings(m.maps)
	if m.samples != nil {
		ps = m.samples(point, ps)
	}
	for i := range ps {
		ps[i].Time = at
	}
	out.samples = append(out.samples, ps...)
}

var msLeakage = msEnum(0x05, 0x00, "leakage_status", "leak", "normal", false)

// msLeak turns the EM300-SLD/ZLD "leakage_status" into water.leak.
func msLeak(r *Record, out []Sample) []Sample {
	if v, ok := r.Lookup("leakage_status"); ok && v.Kind == StringValue {
		out = append(out, Sample{Quantity: "water.leak", Value: BoolVal(v.Str == "leak")})
	}
	return out
}

// am300v1Fields is the AM307 codec generation the vectors pin (the AM307L
// file): TVOC raw.
func am300v1Fields() []msField {
	return msFields(
		msBattery, msTemperature, msHumidity,
		msEnum(0x05, 0x00, "pir", "trigger", "idle", false),
		msU8(0x06, 0xCB, "light_level", 1), // level 0..5, not lux
		msU16(0x07, 0x7D, "co2", 1),
		msU16(0x08, 0x7D, "tvoc", 1),
		msU16(0x09, 0x73, "pressure", 10),
		msU16(0x0A, 0x7D, "hcho", 100),
		msU16(0x0B, 0x7D, "pm2_5", 1),
		msU16(0x0C, 0x7D, "pm10", 1),
		msU16(0x0D, 0x7D, "o3", 100),
		msEnum(0x0E, 0x01, "beep", "yes", "no", false),
	)
}

// am300v2Fields is the AM308 codec generation (AM307/AM308/AM319 v2
// firmware): TVOC on type 0x7D as an index in 0.01 and on type 0xE6 in
// µg/m³. The AM308's history record layout is not in its sources, so
// history stops decoding with a warning here; am319Fields adds the
// AM319's.
func am300v2Fields() []msField {
	return msFields(
		msBattery, msTemperature, msHumidity,
		msEnum(0x05, 0x00, "pir", "trigger", "idle", false),
		msU8(0x06, 0xCB, "light_level", 1),
		msU16(0x07, 0x7D, "co2", 1),
		msU16(0x08, 0x7D, "tvoc", 100),
		msU16(0x08, 0xE6, "tvoc", 1),
		msU16(0x09, 0x73, "pressure", 10),
		msU16(0x0A, 0x7D, "hcho", 100),
		msU16(0x0B, 0x7D, "pm2_5", 1),
		msU16(0x0C, 0x7D, "pm10", 1),
		msU16(0x0D, 0x7D, "o3", 100),
		msEnum(0x0E, 0x01, "beep", "yes", "no", false),
	)
}

// am319Fields adds to the v2 pairs the AM319's history records (22 bytes
// after the time): temperature, humidity (uint16 here, in 0.5 %), PIR,
// light level, CO2, TVOC (0x20: index in 0.01, 0x21: µg/m³), pressure,
// PM2.5, PM10, and last, the HCHO or O3 value.
func am319Fields(last msField) []msField {
	record := func(id byte, tvoc msField) msField {
		return msHistory(id, msTemperature, msU16(0, 0, "humidity", 2),
			msEnum(0, 0, "pir", "trigger", "idle", false), msU8(0, 0, "light_level", 1), msCO2, tvoc,
			msU16(0, 0, "pressure", 10), msU16(0, 0, "pm2_5", 1), msU16(0, 0, "pm10", 1), last)
	}
	return append(am300v2Fields(), record(0x20, msU16(0, 0, "tvoc", 100)), record(0x21, msU16(0, 0, "tvoc", 1)))
}

var (
	milesightAM307 = &milesightModel{name: "milesight am307", fields: am300v1Fields(), maps: msAirMap, samples: msPIR}

	milesightAM308 = &milesightModel{name: "milesight am308", fields: am300v2Fields(), maps: msAirMap, samples: msPIR}

	// AM319 with the HCHO or the O3 sensor, and their L variants
	// (SensorDecoders am-series/am319-hcho, am319-o3, am319l-o3 READMEs
	// and the am319-hcho decoder): the AM308's v2 pairs; the HCHO and O3
	// channels (0x0A, 0x0D) are both in the table, the device sends the
	// one it has. The READMEs name the buzzer (0x0E 0x01)
	// "buzzer_status" on/off; it keeps the AM308's "beep" yes/no here, so
	// one family has one key. The history record ends with the HCHO or
	// the O3 value, with nothing to tell which: only the -hcho and -o3
	// models decode it, the plain AM319 keeps the stop-with-warning rule.
	milesightAM319     = &milesightModel{name: "milesight am319", fields: am300v2Fields(), maps: msAirMap, samples: msPIR}
	milesightAM319HCHO = &milesightModel{name: "milesight am319-hcho", fields: am319Fields(msU16(0, 0, "hcho", 100)), maps: msAirMap, samples: msPIR}
	milesightAM319O3   = &milesightModel{name: "milesight am319-o3", fields: am319Fields(msU16(0, 0, "o3", 100)), maps: msAirMap, samples: msPIR}

	// AM104 and AM107 (AM100 series): PIR as an activity count, light in
	// lux with two raw channels.
	milesightAM100 = &milesightModel{name: "milesight am100", fields: msFields(
		msBattery, msTemperature, msHumidity,
		msU16(0x05, 0x6A, "activity", 1),
		msField{id: 0x06, typ: 0x65, size: 6, put: func(r *Record, v []byte) {
			r.Number("illumination", float64(binary.LittleEndian.Uint16(v[0:2])))
			r.Number("infrared_and_visible", float64(binary.LittleEndian.Uint16(v[2:4])))
			r.Number("infrared", float64(binary.LittleEndian.Uint16(v[4:6])))
		}},
		msU16(0x07, 0x7D, "co2", 1),
		msU16(0x08, 0x7D, "tvoc", 1),
		msU16(0x09, 0x73, "pressure", 10),
	), maps: msAirMap}

	// AM102/AM102L and AM103/AM103L (AM100 series, Milesight-IoT
	// SensorDecoders am-series/am102 and am103 READMEs): the AM104/AM107
	// pairs they have, without PIR, light or TVOC. The L variants send
	// the same frame.
	milesightAM102 = &milesightModel{name: "milesight am102", fields: msFields(
		msBattery, msTemperature, msHumidity,
		msHistory(0x20, msTemperature, msHumidity),
	), maps: msAirMap}
	milesightAM103 = &milesightModel{name: "milesight am103", fields: msFields(
		msBattery, msTemperature, msHumidity, msCO2,
		msHistory(0x20, msTemperature, msHumidity, msCO2),
	), maps: msAirMap}

	// EM300-TH and EM300-MCS history records: SensorDecoders
	// em-series/em300-th and em300-mcs READMEs (the TH's last byte is
	// reserved).
	milesightEM300TH = &milesightModel{name: "milesight em300-th", fields: msFields(
		msBattery, msTemperature, msHumidity,
		msHistory(0x20, msTemperature, msHumidity, msField{size: 1}),
	), maps: msAirMap}

	// EM300-MCS: magnet 0 is closed, 1 open (EM300 series user guide).
	milesightEM300MCS = &milesightModel{name: "milesight em300-mcs", fields: msFields(
		msBattery, msTemperature, msHumidity,
		msU8(0x06, 0x00, "magnet", 1),
		msHistory(0x20, msTemperature, msHumidity, msU8(0, 0, "magnet", 1)),
	), maps: msAirMap, samples: func(r *Record, out []Sample) []Sample {
		if m, ok := r.Lookup("magnet"); ok && m.Kind == NumberValue {
			state := "closed"
			if m.Num != 0 {
				state = "open"
			}
			out = append(out, Sample{Quantity: "action.contactState", Value: StringVal(state)})
		}
		return out
	}}

	// EM300-SLD spot and EM300-ZLD zone leak sensors (SensorDecoders
	// em-series/em300-sld and em300-zld READMEs, one frame for both):
	// leakage_status 0 is normal, 1 leak.
	milesightEM300LD = &milesightModel{name: "milesight em300-sld/zld", fields: msFields(
		msBattery, msTemperature, msHumidity, msLeakage,
		msHistory(0x20, msTemperature, msHumidity, msLeakage),
	), maps: msAirMap, samples: msLeak}

	// EM300-DI pulse counter and digital input (SensorDecoders
	// em-series/em300-di README and its decoder, which agree on the
	// 0x05/0x85 channels where an older README says 0x06/0x86 for the
	// water pairs). The raw pulse count is metering.pulse.count; the
	// converted "water" stays in Data: its unit is a device setting
	// (pulse_conversion_settings.unit) that no uplink carries. The
	// gpio level stays in Data too: what it means depends on the wiring.
	milesightEM300DI = &milesightModel{name: "milesight em300-di", fields: msFields(
		msBattery, msTemperature, msHumidity,
		msEnum(0x05, 0x00, "gpio", "high", "low", false),
		msU32(0x05, 0xC8, "pulse"),
		msDIWater,
		msField{id: 0x85, typ: 0x00, size: 2, put: func(r *Record, v []byte) {
			alarm := msGPIOAlarm[0]
			if v[1] == 1 {
				alarm = msGPIOAlarm[1]
			}
			r.String("gpio", msGPIOLevel(v[0]))
			r.String("gpio_alarm", alarm)
		}},
		msWater(0x85, true),
		msHistory(0x20, msTemperature, msHumidity, msField{size: 6, put: diHistoryV1}),
		msHistory(0x21, msTemperature, msHumidity, msField{size: 11, put: diHistoryV2}),
	), maps: msDIMap}

	// EM310-UDL: distance in mm; position 0 is normal, anything else tilt.
	milesightEM310UDL = &milesightModel{name: "milesight em310-udl", fields: msFields(
		msBattery,
		msU16(0x03, 0x82, "distance", 1),
		msEnum(0x04, 0x00, "tilt", "tilt", "normal", true),
	), maps: msAirMap}

	milesightVS133 = &milesightModel{name: "milesight vs133", fields: vs133Fields(), samples: vs133Samples}
)

// vs133Fields: for line n = 1..4, channel 3n is the cumulative count in,
// 3n+1 the cumulative count out (uint32), 3n+2 the counts of the period
// (in, out; uint16 each), grouped per line in Data (the line's object is
// reopened by each pair, and the record merges them).
func vs133Fields() []msField {
	var f []msField
	for n := 1; n <= 4; n++ {
		key := vs133Lines[n-1]
		base := byte(3 * n)
		f = append(f,
			msField{id: base, typ: 0xD2, size: 4, put: func(r *Record, v []byte) {
				r.Object(key)
				r.Number("total_in", float64(binary.LittleEndian.Uint32(v)))
				r.End()
			}},
			msField{id: base + 1, typ: 0xD2, size: 4, put: func(r *Record, v []byte) {
				r.Object(key)
				r.Number("total_out", float64(binary.LittleEndian.Uint32(v)))
				r.End()
			}},
			msField{id: base + 2, typ: 0xCC, size: 4, put: func(r *Record, v []byte) {
				r.Object(key)
				r.Number("period_in", float64(binary.LittleEndian.Uint16(v[0:2])))
				r.Number("period_out", float64(binary.LittleEndian.Uint16(v[2:4])))
				r.End()
			}},
		)
	}
	return msFields(f...)
}

// vs133Lines are the Data keys of the counting lines 1..4, vs133Periods
// the paths of their period counts, and vs133Channels their sample
// channels.
var (
	vs133Lines   = [4]string{"line_1", "line_2", "line_3", "line_4"}
	vs133Periods = [4][2]string{
		{"line_1.period_in", "line_1.period_out"},
		{"line_2.period_in", "line_2.period_out"},
		{"line_3.period_in", "line_3.period_out"},
		{"line_4.period_in", "line_4.period_out"},
	}
	vs133Channels = [4]string{"1", "2", "3", "4"}
)

// vs133Samples: the period counts are count.in/count.out, one channel per
// counting line. The cumulative totals have no catalogue quantity (they
// restart with the device) and stay in Data.
func vs133Samples(r *Record, out []Sample) []Sample {
	if out == nil {
		out = r.Samples(2 * len(vs133Lines)) // the record's buffer: no allocation in the pipeline
	}
	for n, paths := range vs133Periods {
		ch := vs133Channels[n]
		if v, ok := r.Lookup(paths[0]); ok && v.Kind == NumberValue {
			out = append(out, Sample{Quantity: "count.in", Value: v, Channel: ch})
		}
		if v, ok := r.Lookup(paths[1]); ok && v.Kind == NumberValue {
			out = append(out, Sample{Quantity: "count.out", Value: v, Channel: ch})
		}
	}
	return out
}

var _ Decoder = (*milesightModel)(nil)

// Decode reads the channel pairs; see the file comment.
func (m *milesightModel) Decode(in Input) (Result, error) {
	b := in.Bytes
	if len(b) == 0 {
		return Result{}, fmt.Errorf("%s: empty payload: %w", m.name, ErrTruncated)
	}
	// A pair takes at least two bytes per value or object it writes (a
	// history record, but for its list and object): the record holds a
	// frame without growing, unless it carries several history records.
	r := NewRecord(len(b)/2 + 2)
	var warnings []string
	var history msHistoryOut
	for i := 0; i < len(b); {
		if len(b)-i < 2 {
			return Result{}, fmt.Errorf("%s: byte %d: channel id without a type: %w", m.name, i, ErrTruncated)
		}
		f := m.lookup(b[i], b[i+1])
		if f == nil {
			if i == 0 {
				return Result{}, fmt.Errorf("%s: unknown channel %02x %02x at byte 0: %w", m.name, b[0], b[1], ErrInvalid)
			}
			warnings = append(warnings, m.unknownChannel(b, i))
			break
		}
		i += 2
		if len(b)-i < f.size {
			return Result{}, fmt.Errorf("%s: channel %02x %02x needs %d bytes, %d left: %w", m.name, f.id, f.typ, f.size, len(b)-i, ErrTruncated)
		}
		switch v := b[i : i+f.size]; {
		case f.history != nil:
			m.readHistory(r, f.history, v, &history)
		case f.put != nil:
			f.put(r, v)
		}
		i += f.size
	}
	samples := r.ApplyMappings(m.maps)
	if m.samples != nil {
		samples = m.samples(r, samples)
	}
	samples = append(samples, history.samples...)
	warnings = append(warnings, history.warnings...)
	return Result{Record: r, Samples: samples, Warnings: warnings}, nil
}

// unknownChannel is the warning for an unknown pair at byte i: "<name>:
// unknown channel ID TYPE at byte I: last N bytes not decoded". Built in a
// stack buffer, it costs one allocation where fmt.Sprintf costs two.
func (m *milesightModel) unknownChannel(b []byte, i int) string {
	const digits = "0123456789abcdef"
	var buf [128]byte
	w := append(buf[:0], m.name...)
	w = append(w, ": unknown channel "...)
	w = append(w, digits[b[i]>>4], digits[b[i]&0x0f], ' ', digits[b[i+1]>>4], digits[b[i+1]&0x0f])
	w = append(w, " at byte "...)
	w = strconv.AppendInt(w, int64(i), 10)
	w = append(w, ": last "...)
	w = strconv.AppendInt(w, int64(len(b)-i), 10)
	w = append(w, " bytes not decoded"...)
	return string(w)
}

func (m *milesightModel) lookup(id, typ byte) *msField {
	for i := range m.fields {
		if f := &m.fields[i]; f.id == id && f.typ == typ {
			return f
		}
	}
	return nil
}
