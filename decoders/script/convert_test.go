package script

import (
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
