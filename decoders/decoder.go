package decoders

import (
	"errors"
	"strings"
	"time"
)

// ErrTruncated and ErrInvalid are wrapped by decoders for payloads they
// cannot read; the pipeline turns either into a dead letter.
var (
	ErrTruncated = errors.New("decoders: payload truncated")
	ErrInvalid   = errors.New("decoders: invalid payload")
)

// Input is one uplink's application payload.
type Input struct {
	FPort     uint8
	Bytes     []byte
	Time      time.Time         // network-server receive time
	Variables map[string]string // per-device variables from the registry
	DevEUI    string            // the device, hex, for codecs' console output; "" if unknown
}

// Result is what a decoder makes of one payload.
type Result struct {
	// Record or Data is the decoder's own output, keyed as the vendor's
	// reference codec keys it, so external vectors can check it: native
	// decoders and JavaScript codecs fill Record; Data is for decoders
	// that hold a map already. DataMap reads either.
	Record *Record
	Data   map[string]any
	// Samples are Data mapped onto catalogue quantities.
	Samples []Sample
	// Warnings are logged and counted; they do not stop the uplink.
	Warnings []string
}

// DataMap returns the decoder's output as a map, building it from Record
// when the decoder wrote one (not for the hot path: see Record.Map).
func (r Result) DataMap() map[string]any {
	if r.Record != nil {
		return r.Record.Map()
	}
	return r.Data
}

// ApplyMappings maps the decoder's output through maps, whichever form it
// has.
func (r Result) ApplyMappings(maps []Mapping) []Sample {
	if r.Record != nil {
		return r.Record.ApplyMappings(maps)
	}
	return ApplyMappings(r.Data, maps)
}

// Sample is one value of a catalogue quantity.
type Sample struct {
	Quantity string // catalogue path, e.g. "air.temperature"
	// Value is a number for number quantities, a bool for booleans and a
	// string for enums; Normalize and Check enforce that.
	Value Value
	// Channel tells apart several probes of one quantity on one device
	// (Cayenne LPP channel, external probe); written as the channel tag.
	Channel string
	// Time is the sample's own time, for devices that buffer readings; zero
	// means the uplink's time.
	Time time.Time
	// Key is the decoder's own key the value was read from, flattened as
	// decoded_<model> names its fields (nested keys joined with "_",
	// "temperatureSensor_3"), so that the pipeline does not write the
	// value a second time there; "" when the sample was computed from
	// several keys or its decoder does not say.
	Key string
}

// Decoder decodes one payload. Implementations must be safe for concurrent
// use and must not keep in.Bytes.
type Decoder interface {
	Decode(in Input) (Result, error)
}

// Func adapts a function to Decoder.
type Func func(in Input) (Result, error)

// Decode calls f.
func (f Func) Decode(in Input) (Result, error) { return f(in) }

// Mapping lifts one Data key onto a catalogue quantity.
type Mapping struct {
	Key      string  `yaml:"key"`      // Data key; "a.b" reaches into nested maps
	Quantity string  `yaml:"quantity"` // catalogue path
	Scale    float64 `yaml:"scale"`    // multiplier into the catalogue unit; 0 means 1
}

// Mapped is a decoder written as a function that fills a Record, plus the
// table that maps its keys onto the catalogue. Most native decoders are one.
type Mapped struct {
	DecodeRecord func(in Input, r *Record) error
	Map          []Mapping
	// Size is the number of values (and objects) a typical frame writes,
	// so the record is allocated once; 0 means 16.
	Size int
}

// Decode runs the data decoder and applies the mapping. A mapped key that is
// absent (the device did not report it this time) yields no sample.
func (m Mapped) Decode(in Input) (Result, error) {
	size := m.Size
	if size == 0 {
		size = 16
	}
	r := NewRecord(size)
	if err := m.DecodeRecord(in, r); err != nil {
		return Result{}, err
	}
	return Result{Record: r, Samples: r.ApplyMappings(m.Map)}, nil
}

// ApplyMappings returns one sample for each mapping whose key holds a
// number, a bool or a string in data.
func ApplyMappings(data map[string]any, maps []Mapping) []Sample {
	var out []Sample
	for _, mp := range maps {
		x, ok := lookupPath(data, mp.Key)
		if !ok {
			continue
		}
		v, ok := ValueOf(x)
		if !ok || v.Kind == Null {
			continue
		}
		if out == nil {
			out = make([]Sample, 0, len(maps))
		}
		out = append(out, mapped(mp, v))
	}
	return out
}

// ApplyMappings returns one sample for each mapping whose key holds a
// number, a bool or a string in r.
func (r *Record) ApplyMappings(maps []Mapping) []Sample {
	var out []Sample
	for _, mp := range maps {
		v, ok := r.Lookup(mp.Key)
		if !ok || v.Kind == Null {
			continue
		}
		if out == nil {
			out = r.Samples(len(maps))
		}
		out = append(out, mapped(mp, v))
	}
	return out
}

// mapped is v as mp's sample, scaled if it is a number.
func mapped(mp Mapping, v Value) Sample {
	if v.Kind == NumberValue && mp.Scale != 0 {
		v.Num *= mp.Scale
	}
	return Sample{Quantity: mp.Quantity, Value: v, Key: FlatKey(mp.Key)}
}

// FlatKey is a mapping's key ("a.b") as decoded_<model> names the field
// it reaches ("a_b").
func FlatKey(key string) string {
	if !strings.Contains(key, ".") {
		return key
	}
	return strings.ReplaceAll(key, ".", "_")
}

func lookupPath(data map[string]any, path string) (any, bool) {
	if v, ok := data[path]; ok {
		return v, true
	}
	cur := any(data)
	for path != "" {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		var key string
		key, path, _ = cutDot(path)
		if cur, ok = m[key]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func cutDot(s string) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// ToFloat converts the number types decoders and JSON produce to float64,
// the one type numbers have in InfluxDB fields.
func ToFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case int16:
		return float64(x), true
	case int8:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	}
	return 0, false
}
