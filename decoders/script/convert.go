package script

import (
	"fmt"
	"maps"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/dop251/goja"

	"github.com/sensorgate/sensorgate/decoders"
)

// maxValues bounds the values and containers in a codec's output. Real
// data holds a few hundred at most (a history buffer); the bound turns a
// huge sparse array (a[1e9] = 1 has a length of a billion and one
// element) into an error instead of a billion nulls, which no time limit
// would stop: the conversion runs in Go, outside the interrupted VM.
const maxValues = 100_000

// maxDepth bounds the nesting of a codec's output. Real data is a few
// levels deep; the bound turns a cyclic object (which goja exports as a
// cyclic Go map) into an error instead of endless recursion.
const maxDepth = 32

var errTooDeep = fmt.Errorf("nested deeper than %d levels (a cyclic object?)", maxDepth)

// skip marks a value JSON would drop (a function), so maps leave it out.
type skipValue struct{}

var skip any = skipValue{}

// toGo normalises a goja export into the value shapes the rest of
// sensorgate expects, deterministically, with the JSON semantics the
// network servers apply when they serialise a codec's result:
// every number becomes float64 (goja exports integral numbers as int64),
// NaN and ±Inf become nil (JSON null), objects become map[string]any,
// arrays and typed arrays []any, dates RFC 3339 strings with
// milliseconds (Date.prototype.toJSON), functions are dropped.
func toGo(x any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	switch v := x.(type) {
	case nil, bool, string:
		return x, nil
	case int64:
		if v >= 0 && v < int64(len(smallInts)) {
			return smallInts[v], nil
		}
		return float64(v), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, nil
		}
		return x, nil // x, not v: returning v would box it again
	case map[string]any:
		// Converted in place: Export made this map for us alone (codecs
		// see only JavaScript values, never a wrapped Go map), and a copy
		// would cost an allocation and a rehash per object. Only values
		// that change are written back.
		for k, e := range v {
			if settled(e) {
				continue
			}
			g, err := toGo(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			switch e.(type) {
			case map[string]any, []any:
				// Converted in place, so already in v.
			default:
				if g == skip {
					delete(v, k)
				} else {
					v[k] = g
				}
			}
		}
		return x, nil
	case []any:
		// In place too, for the same reason.
		for i, e := range v {
			if settled(e) {
				continue
			}
			g, err := toGo(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			if g == skip {
				g = nil // JSON.stringify writes null for a function in an array
			}
			v[i] = g
		}
		return x, nil
	case time.Time:
		return v.UTC().Format("2006-01-02T15:04:05.000Z"), nil
	case *big.Int:
		f, _ := new(big.Float).SetInt(v).Float64()
		return f, nil
	case func(goja.FunctionCall) goja.Value:
		return skip, nil
	}
	// Typed arrays and other Go values goja exports.
	rv := reflect.ValueOf(x)
	switch rv.Kind() {
	case reflect.Func:
		return skip, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return float64(rv.Uint()), nil
	case reflect.Float32:
		return toGo(rv.Float(), depth)
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			g, err := toGo(rv.Index(i).Interface(), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = g
		}
		return out, nil
	}
	return fmt.Sprint(x), nil
}

// settled reports whether an exported value is already in its final
// shape, so toGo need not look at it again.
func settled(x any) bool {
	switch v := x.(type) {
	case nil, bool, string:
		return true
	case float64:
		return !math.IsNaN(v) && !math.IsInf(v, 0)
	}
	return false
}

// smallInts holds small whole numbers boxed as float64. Export gives a
// whole number as int64, which toGo must turn into float64; counts,
// percentages and raw readings are mostly small, and boxing each anew
// was an allocation per field.
var smallInts = func() (s [1024]any) {
	for i := range s {
		s[i] = float64(i)
	}
	return s
}()

// small holds the decimal strings of small array indexes, so reading
// an array from Go does not format each index anew.
var small = func() (s [256]string) {
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

func itoa(i int) string {
	if i < len(small) {
		return small[i]
	}
	return strconv.Itoa(i)
}

// What ExportType reports for a boolean, for an object Export makes a
// map of, and for an array.
var (
	boolType  = reflect.TypeFor[bool]()
	mapType   = reflect.TypeFor[map[string]any]()
	sliceType = reflect.TypeFor[[]any]()
)

// walker writes a codec's data object into a decoders.Record, with the
// same result as toGo(obj.Export()) followed by building a Record from
// the map, but without the map: Export makes a map per object, boxes every
// number and string, and tracks every object it visits in a map of its
// own, and the pipeline only wants the values flat and typed (see
// decoders.Record). For a codec returning a few dozen values Export was a
// quarter of the call. Plain objects and arrays are walked here; anything
// else (dates, typed arrays, maps, BigInts) goes through Export and toGo,
// so the rules are the same either way.
type walker struct {
	rec  *decoders.Record
	keys bool // read every object through Keys and Get (tests compare)
}

func (w walker) object(obj *goja.Object, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	if values, names, ok := layout().props(obj); ok && !w.keys {
		// An ordinary object of plain data properties, read directly
		// (plainobj.go): what Keys and Get give, without their cost.
		if err := w.room(int64(len(names))); err != nil {
			return err
		}
		for _, n := range names {
			v := values[n]
			if v == nil {
				continue // deleted, as Keys skips it
			}
			k := n.String()
			if err := w.value(k, v, false, depth+1); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
		return nil
	}
	// Keys costs three allocations per key (its iterator's closures);
	// calling the runtime's Object.keys instead costs one per key, but an
	// array object and a wrapped call per object, and measured slower.
	keys := obj.Keys()
	if err := w.room(int64(len(keys))); err != nil {
		return err
	}
	for _, k := range keys {
		if err := w.value(k, obj.Get(k), false, depth+1); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

// value writes one JavaScript value under key; inArray says it is an
// array element, where a function becomes null (JSON.stringify's rule)
// instead of being left out.
func (w walker) value(key string, v goja.Value, inArray bool, depth int) error {
	rec := w.rec
	obj, isObj := v.(*goja.Object)
	switch {
	case isObj:
		// ExportType tells plain objects (and others Export would turn
		// into a map of their own properties, errors say) from typed
		// arrays, maps and dates, which all have class "Object" or their
		// own, and which Export converts by rules of its own.
		switch typ := obj.ExportType(); {
		case typ == mapType:
			rec.Object(key)
			err := w.object(obj, depth)
			rec.End()
			return err
		case typ == sliceType && obj.ClassName() == "Array":
			return w.array(key, obj, depth)
		}
		// Typed arrays and array-likes: Export copies every element.
		if n := obj.Get("length"); n != nil && goja.IsNumber(n) {
			if err := w.room(n.ToInteger()); err != nil {
				return err
			}
		}
	case v == nil || goja.IsUndefined(v) || goja.IsNull(v):
		rec.Null(key)
		return nil
	case goja.IsNumber(v):
		if f := v.ToFloat(); math.IsNaN(f) || math.IsInf(f, 0) {
			rec.Null(key)
		} else {
			rec.Number(key, f)
		}
		return nil
	case goja.IsString(v):
		rec.String(key, v.String())
		return nil
	case v.ExportType() == boolType:
		rec.Bool(key, v.ToBoolean())
		return nil
	}
	g, err := toGo(v.Export(), depth)
	if err != nil {
		return err
	}
	writeGo(rec, key, g, inArray)
	return nil
}

// array writes a JavaScript array under key.
func (w walker) array(key string, obj *goja.Object, depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	n := obj.Get("length").ToInteger()
	if err := w.room(n); err != nil {
		return err
	}
	rec := w.rec
	rec.Array(key)
	defer rec.End()
	for i := range n {
		if err := w.value("", obj.Get(itoa(int(i))), true, depth+1); err != nil {
			return fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return nil
}

// room fails when n more values would take the output past maxValues.
func (w walker) room(n int64) error {
	if n > int64(maxValues-w.rec.Len()) {
		return fmt.Errorf("more than %d values (a huge or sparse array?)", maxValues)
	}
	return nil
}

// writeGo writes a value in toGo's shapes under key.
func writeGo(rec *decoders.Record, key string, x any, inArray bool) {
	switch v := x.(type) {
	case nil:
		rec.Null(key)
	case bool:
		rec.Bool(key, v)
	case string:
		rec.String(key, v)
	case float64:
		rec.Number(key, v)
	case map[string]any:
		rec.Object(key)
		for _, k := range slices.Sorted(maps.Keys(v)) {
			writeGo(rec, k, v[k], false)
		}
		rec.End()
	case []any:
		rec.Array(key)
		for _, e := range v {
			writeGo(rec, "", e, true)
		}
		rec.End()
	default: // skip: a function
		if inArray {
			rec.Null(key)
		}
	}
}
