package script

import (
	"math"
	"reflect"
	"testing"

	"github.com/dop251/goja"
)

// TestToGoInPlace: toGo converts Export's maps and slices in place, so an
// object the data holds twice (Export gives both references one Go map)
// must come out right, and a cyclic one must still be an error.
func TestToGoInPlace(t *testing.T) {
	rt := goja.New()
	v, err := rt.RunString(`(function() {
		var shared = {n: 1, f: function() {}, list: [2, function() {}]};
		return {a: shared, b: shared, c: [shared, shared]};
	})()`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := toGo(v.Export(), 0)
	if err != nil {
		t.Fatal(err)
	}
	one := map[string]any{"n": 1.0, "list": []any{2.0, nil}}
	want := map[string]any{"a": one, "b": one, "c": []any{one, one}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}
	v, err = rt.RunString(`(function() { var o = {x: 1}; o.self = o; return o; })()`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := toGo(v.Export(), 0); err == nil {
		t.Fatal("cyclic object: no error")
	}
}

// TestToGoNumbers: whole numbers come out as float64 whether toGo takes
// them from its table of small ones or boxes them, and values toGo leaves
// in place (finite floats, strings, booleans, nulls) keep their sign and
// type.
func TestToGoNumbers(t *testing.T) {
	rt := goja.New()
	tests := []struct {
		js   string
		want any
	}{
		{"0", 0.0},
		{"-0", math.Copysign(0, -1)},
		{"7", 7.0},
		{"1023", 1023.0},
		{"1024", 1024.0},
		{"-1", -1.0},
		{"2.5", 2.5},
		{"NaN", nil},
		{"-Infinity", nil},
		{"'x'", "x"},
		{"true", true},
		{"null", nil},
		{"[1, 1024, NaN, function() {}]", []any{1.0, 1024.0, nil, nil}},
		{"({a: 1, b: 1e6, c: 'c', d: function() {}, e: {f: 2}})", map[string]any{"a": 1.0, "b": 1e6, "c": "c", "e": map[string]any{"f": 2.0}}},
	}
	for _, tc := range tests {
		t.Run(tc.js, func(t *testing.T) {
			v, err := rt.RunString("(" + tc.js + ")")
			if err != nil {
				t.Fatal(err)
			}
			got, err := toGo(v.Export(), 0)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
			if f, ok := tc.want.(float64); ok && math.Signbit(f) != math.Signbit(got.(float64)) {
				t.Fatalf("sign of %v lost", f)
			}
		})
	}
}
