package decoders

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// Cayenne Low Power Payload (LPP) decoder.
//
// Sources: the format's specification, myDevicesIoT/cayenne-docs
// docs/LORA.md "Cayenne Low Power Payload" (basic types), and the
// ElectronicCats/CayenneLPP library README (extended types 100..142). The
// payload is a sequence of records [channel:1][type:1][data:n]; n and the
// scaling depend on the type, multi-byte values are big-endian.
//
// Two key styles exist for the same bytes, because operators move data
// between network servers and expect the keys they already query:
//
//   - model "cayenne-lpp": ChirpStack v4's codec object,
//     {"temperatureSensor": {"3": 27.2}}.
//   - model "cayenne-lpp-tts": The Things Stack's decoded_payload,
//     {"temperature_3": 27.200000762939453}. The Things Stack decodes values
//     as float32, so this style rounds every value through float32 to give
//     the same numbers. It knows only the basic myDevices types: a payload
//     with an extended type is rejected (ErrInvalid), as The Things Stack
//     rejects it, rather than inventing keys it never writes; use model
//     "cayenne-lpp" for such devices.
//
// A record that repeats a (type, channel) pair overwrites the earlier value,
// in Data as in both network servers, and in Samples so that both agree.
//
// A Unix-time record (type 133, 4-byte unsigned seconds) dates the frame:
// every sample of the frame gets that time, whichever channel carries it
// and wherever it stands in the frame; the uplink point and the data keep
// the uplink's time. A frame whose Unix-time records disagree has no one
// time for its readings: they keep the uplink's, with a warning. A time no
// set clock gives (0, or implausible next to the uplink) is caught by
// CheckTimes, like every sample time.

// lppKind describes one LPP data type. Values are integers read as
// components of width bytes and divided by div; a scalar has one component.
type lppKind struct {
	name   string // for error messages
	chirp  string // ChirpStack v4 object key
	tts    string // The Things Stack key prefix; "" where TTS has no key
	width  int    // bytes per component; 0 marks an unknown type
	signed bool
	div    [3]float64 // divisor per component
	// fields names the components of a vector value; nil for a scalar.
	fields []string
	// quantities maps components onto the catalogue; "" for none.
	quantities [3]string
	// isBool makes the (single) quantity a boolean: value != 0.
	isBool bool
}

// size is the number of data bytes after the channel and type bytes.
func (k *lppKind) size() int {
	if len(k.fields) == 0 {
		return k.width
	}
	return k.width * len(k.fields)
}

var (
	lppXYZ = []string{"x", "y", "z"}
	lppGPS = []string{"latitude", "longitude", "altitude"}
	lppRGB = []string{"r", "g", "b"}
)

// lppKinds is indexed by the LPP type byte (IPSO object id - 3200). Only
// quantities that mean the same thing on every device are mapped: a generic
// voltage is not a battery, a concentration is not necessarily CO2, a power
// or energy is not necessarily electrical, so those stay in Data only.
var lppKinds = [256]lppKind{
	// Basic types, myDevices specification.
	0:   {name: "digital input", chirp: "digitalInput", tts: "digital_in", width: 1, div: lppOne},
	1:   {name: "digital output", chirp: "digitalOutput", tts: "digital_out", width: 1, div: lppOne},
	2:   {name: "analog input", chirp: "analogInput", tts: "analog_in", width: 2, signed: true, div: [3]float64{100}},
	3:   {name: "analog output", chirp: "analogOutput", tts: "analog_out", width: 2, signed: true, div: [3]float64{100}},
	101: {name: "illuminance", chirp: "illuminanceSensor", tts: "luminosity", width: 2, div: lppOne, quantities: [3]string{"air.lightIntensity"}},
	102: {name: "presence", chirp: "presenceSensor", tts: "presence", width: 1, div: lppOne, quantities: [3]string{"action.motion.detected"}, isBool: true},
	103: {name: "temperature", chirp: "temperatureSensor", tts: "temperature", width: 2, signed: true, div: [3]float64{10}, quantities: [3]string{"air.temperature"}},
	104: {name: "humidity", chirp: "humiditySensor", tts: "relative_humidity", width: 1, div: [3]float64{2}, quantities: [3]string{"air.relativeHumidity"}},
	113: {name: "accelerometer", chirp: "accelerometer", tts: "accelerometer", width: 2, signed: true, div: [3]float64{1000, 1000, 1000}, fields: lppXYZ},
	115: {name: "barometer", chirp: "barometer", tts: "barometric_pressure", width: 2, div: [3]float64{10}, quantities: [3]string{"air.pressure"}},
	134: {name: "gyrometer", chirp: "gyrometer", tts: "gyrometer", width: 2, signed: true, div: [3]float64{100, 100, 100}, fields: lppXYZ},
	136: {name: "gps", chirp: "gpsLocation", tts: "gps", width: 3, signed: true, div: [3]float64{10000, 10000, 100}, fields: lppGPS,
		quantities: [3]string{"position.latitude", "position.longitude", "position.altitude"}},

	// Extended types, ElectronicCats/CayenneLPP; The Things Stack has no
	// keys for them.
	100: {name: "generic", chirp: "genericSensor", width: 4, div: lppOne},
	116: {name: "voltage", chirp: "voltage", width: 2, div: [3]float64{100}},
	117: {name: "current", chirp: "current", width: 2, div: [3]float64{1000}},
	118: {name: "frequency", chirp: "frequency", width: 4, div: lppOne},
	120: {name: "percentage", chirp: "percentage", width: 1, div: lppOne},
	// Altitude in metres above sea level is what position.altitude is.
	121: {name: "altitude", chirp: "altitude", width: 2, signed: true, div: lppOne, quantities: [3]string{"position.altitude"}},
	125: {name: "concentration", chirp: "concentration", width: 2, div: lppOne},
	128: {name: "power", chirp: "power", width: 2, div: lppOne},
	130: {name: "distance", chirp: "distance", width: 4, div: [3]float64{1000}},
	131: {name: "energy", chirp: "energy", width: 4, div: [3]float64{1000}},
	132: {name: "direction", chirp: "direction", width: 2, div: lppOne},
	// ChirpStack spells this one key in snake_case; keep it.
	133: {name: "unix time", chirp: "unix_time", width: 4, div: lppOne},
	135: {name: "colour", chirp: "color", width: 1, div: lppOne, fields: lppRGB},
	142: {name: "switch", chirp: "switch", width: 1, div: lppOne},
}

var lppOne = [3]float64{1, 1, 1}

// lppDecoder decodes Cayenne LPP in ChirpStack's key style, or The Things
// Stack's when tts is set.
type lppDecoder struct{ tts bool }

var _ Decoder = lppDecoder{}

// Decode reads every record; any unknown type or short record rejects the
// whole payload, because the record boundaries after it are unknowable.
func (d lppDecoder) Decode(in Input) (Result, error) {
	b := in.Bytes
	// A record is at least three bytes and writes one value, or an object
	// of up to three, plus the ChirpStack style's object per type.
	rec := NewRecord(len(b)/3*2 + 2)
	var (
		samples     []Sample
		unixTime    float64 // of the frame's type 133 records
		timed       bool    // a type 133 record was read
		timesDiffer bool
	)
	for i := 0; i < len(b); {
		if len(b)-i < 2 {
			return Result{}, fmt.Errorf("cayenne lpp: byte %d: channel without a type: %w", i, ErrTruncated)
		}
		ch, typ := b[i], b[i+1]
		k := &lppKinds[typ]
		if k.width == 0 {
			return Result{}, fmt.Errorf("cayenne lpp: byte %d: unknown data type %d (0x%02x): %w", i+1, typ, typ, ErrInvalid)
		}
		if d.tts && k.tts == "" {
			return Result{}, fmt.Errorf("cayenne lpp: data type %d (%s) is an extended type The Things Stack does not decode; use model cayenne-lpp: %w", typ, k.name, ErrInvalid)
		}
		i += 2
		n := k.size()
		if len(b)-i < n {
			return Result{}, fmt.Errorf("cayenne lpp: channel %d %s needs %d data bytes, %d left: %w", ch, k.name, n, len(b)-i, ErrTruncated)
		}
		vals := k.read(b[i : i+n])
		i += n
		if typ == lppUnixTime {
			timesDiffer = timesDiffer || timed && vals[0] != unixTime
			unixTime, timed = vals[0], true
		}
		if d.tts {
			for c := range vals {
				vals[c] = float64(float32(vals[c]))
			}
		}

		// The Things Stack: {"temperature_3": 27.2}; ChirpStack:
		// {"temperatureSensor": {"3": 27.2}}, one object per type, which
		// Record merges when a later record reopens it.
		chs := lppChannel(ch)
		key := chs
		if d.tts {
			key = lppTTSKey(typ, ch)
		} else {
			rec.Object(k.chirp)
		}
		if k.fields == nil {
			rec.Number(key, vals[0])
		} else {
			rec.Object(key)
			for c, f := range k.fields {
				rec.Number(f, vals[c])
			}
			rec.End()
		}
		if !d.tts {
			rec.End()
		}

		for c, q := range k.quantities {
			if q == "" {
				continue
			}
			if samples == nil {
				// Most records carry one mapped quantity: room for all.
				samples = rec.Samples(len(b) / 3)
			}
			s := Sample{Quantity: q, Value: NumberVal(vals[c]), Channel: chs, Key: lppFlatKey(d.tts, k, key, c)}
			if k.isBool {
				s.Value = BoolVal(vals[c] != 0)
			}
			samples = putSample(samples, s)
		}
	}
	var warnings []string
	switch {
	case timesDiffer:
		warnings = []string{"cayenne lpp: the frame's unix time records disagree: its readings keep the uplink's time"}
	case timed:
		t := time.Unix(int64(unixTime), 0).UTC()
		for j := range samples {
			samples[j].Time = t
		}
	}
	return Result{Record: rec, Samples: samples, Warnings: warnings}, nil
}

// lppFlatKey is the decoded_<model> field of component c of a record
// written under key: "temperatureSensor_3" (ChirpStack style),
// "temperature_3" (The Things Stack style), "gpsLocation_1_latitude" for
// a vector's component.
func lppFlatKey(tts bool, k *lppKind, key string, c int) string {
	if !tts {
		key = k.chirp + "_" + key
	}
	if k.fields != nil {
		key += "_" + k.fields[c]
	}
	return key
}

// lppUnixTime is the LPP type of a Unix time in seconds (IPSO 3333).
const lppUnixTime = 133

// The keys payloads are decoded into, made once instead of per record:
// lppChannels ("3") at start, lppTTSKeyTables ("temperature_3") per type,
// on the first payload with that type (most of the 256 types never come).
var (
	lppChannels = func() (keys [256]string) {
		for c := range keys {
			keys[c] = strconv.Itoa(c)
		}
		return keys
	}()
	lppTTSKeyTables [256]atomic.Pointer[[256]string]
)

func lppChannel(ch byte) string { return lppChannels[ch] }

func lppTTSKey(typ, ch byte) string {
	keys := lppTTSKeyTables[typ].Load()
	if keys == nil {
		keys = new([256]string)
		for c := range keys {
			keys[c] = lppKinds[typ].tts + "_" + lppChannel(byte(c))
		}
		// A concurrent first payload may have stored its own equal table.
		lppTTSKeyTables[typ].CompareAndSwap(nil, keys)
	}
	return keys[ch]
}

// read converts the record's data bytes, whose length is k.size().
func (k *lppKind) read(b []byte) [3]float64 {
	var out [3]float64
	comps := len(k.fields)
	if comps == 0 {
		comps = 1
	}
	for c := 0; c < comps; c++ {
		var u uint32
		for _, x := range b[c*k.width : (c+1)*k.width] {
			u = u<<8 | uint32(x)
		}
		var f float64
		if k.signed {
			// Sign-extend from the component's width.
			shift := 32 - 8*k.width
			f = float64(int32(u<<shift) >> shift)
		} else {
			f = float64(u)
		}
		// Division, not multiplication by 0.1: the quotient is the
		// correctly rounded decimal (272/10 == 27.2), which is what
		// every reference prints.
		out[c] = f / k.div[c]
	}
	return out
}

// putSample appends s, or replaces an earlier sample of the same quantity
// and channel: a repeated LPP record overwrites, as it does in Data.
func putSample(samples []Sample, s Sample) []Sample {
	for i := range samples {
		if samples[i].Quantity == s.Quantity && samples[i].Channel == s.Channel {
			samples[i] = s
			return samples
		}
	}
	return append(samples, s)
}
