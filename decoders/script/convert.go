package script

import (
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"time"

	"github.com/dop251/goja"
)

// maxDepth bounds the nesting of a codec's output. Real data is a few
// levels deep; the bound turns a cyclic object (which goja exports as a
// cyclic Go map) into an error instead of endless recursion.
const maxDepth = 32

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
		return nil, fmt.Errorf("nested deeper than %d levels (a cyclic object?)", maxDepth)
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
