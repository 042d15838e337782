package script

import (
	"reflect"
	"sync"
	"unsafe"

	"github.com/dop251/goja"
	"github.com/dop251/goja/unistring"
)

// Reading a plain object's own properties without Object.Keys.
//
// Keys, the only public way to list an object's enumerable own keys,
// costs three allocations per key (its iterators' closures and a boxed
// name) and Get a string conversion and lookup per key: a quarter of the
// CPU of a call returning a few dozen values (BENCHMARKS.md). goja keeps
// an ordinary object's properties in a map and a slice of names in
// insertion order; a property stored as a bare value is a writable,
// enumerable, configurable data property, and every other kind (an
// accessor, a non-enumerable, read-only or frozen property) is stored
// as a *valueProperty (goja's valueProp). So an ordinary object whose
// values are all bare has exactly its names as enumerable keys, in that
// order unless a name is an array index (ordered first, by value), and
// the bare values are what Get returns. plainProps reads those two
// fields; anything else (another kind of object, a *valueProperty, an
// index-like name) takes the public path.
//
// The fields are goja's internals, so their layout is checked once
// against the types expected and against Keys on sample objects
// (plainLayout); when anything differs the public path is used for
// every object, which is slower and otherwise the same.

// plainLayout is what plainProps needs to know of goja's layout, or
// ok false.
type plainLayout struct {
	ok                bool
	selfIdx           int          // goja.Object's self field
	baseType          reflect.Type // *goja.baseObject
	values, propNames uintptr      // offsets in baseObject
	propType          reflect.Type // *goja.valueProperty
}

var layout = sync.OnceValue(func() *plainLayout { l := findLayout(); return &l })

func findLayout() (l plainLayout) {
	objType := reflect.TypeFor[goja.Object]()
	self, ok := objType.FieldByName("self")
	if !ok || self.Type.Kind() != reflect.Interface {
		return plainLayout{}
	}
	l.selfIdx = self.Index[0]

	rt := goja.New()
	v, err := rt.RunString(`[{a: 1, b: "x"}, Object.defineProperty({}, "h", {value: 1, enumerable: false})]`)
	if err != nil {
		return plainLayout{}
	}
	arr := v.(*goja.Object)
	plain, _ := arr.Get("0").(*goja.Object)
	hidden, _ := arr.Get("1").(*goja.Object)
	if plain == nil || hidden == nil {
		return plainLayout{}
	}
	impl := reflect.ValueOf(plain).Elem().Field(l.selfIdx).Elem()
	if impl.Kind() != reflect.Pointer || impl.Type().Elem().Kind() != reflect.Struct {
		return plainLayout{}
	}
	l.baseType = impl.Type()
	values, ok1 := l.baseType.Elem().FieldByName("values")
	names, ok2 := l.baseType.Elem().FieldByName("propNames")
	if !ok1 || !ok2 || len(values.Index) != 1 || len(names.Index) != 1 ||
		values.Type != reflect.TypeFor[map[unistring.String]goja.Value]() ||
		names.Type != reflect.TypeFor[[]unistring.String]() {
		return plainLayout{}
	}
	l.values, l.propNames = values.Offset, names.Offset
	l.ok = true

	// The non-enumerable property's stored type, and a check that both
	// sample objects read as Keys and Get read them.
	hv, hn, ok := l.read(hidden)
	if !ok || len(hn) != 1 || hv[hn[0]] == nil {
		return plainLayout{}
	}
	l.propType = reflect.TypeOf(hv[hn[0]])
	pv, pn, ok := l.read(plain)
	if !ok || len(pn) != 2 || pn[0] != "a" || pn[1] != "b" ||
		!pv["a"].StrictEquals(plain.Get("a")) || !pv["b"].StrictEquals(plain.Get("b")) ||
		reflect.TypeOf(pv["a"]) == l.propType {
		return plainLayout{}
	}
	if _, _, ok := l.props(hidden); ok {
		return plainLayout{} // must have been refused
	}
	return l
}

// read returns obj's property map and names if obj is an ordinary
// object.
func (l *plainLayout) read(obj *goja.Object) (map[unistring.String]goja.Value, []unistring.String, bool) {
	impl := reflect.ValueOf(obj).Elem().Field(l.selfIdx).Elem()
	if !impl.IsValid() || impl.Type() != l.baseType {
		return nil, nil, false
	}
	p := impl.UnsafePointer()
	return *(*map[unistring.String]goja.Value)(unsafe.Add(p, l.values)),
		*(*[]unistring.String)(unsafe.Add(p, l.propNames)), true
}

// props returns obj's own properties, names in Keys' order, when obj is
// an ordinary object whose properties are all plain enumerable data
// properties with names that are not array indexes; ok false means
// use Keys and Get.
func (l *plainLayout) props(obj *goja.Object) (map[unistring.String]goja.Value, []unistring.String, bool) {
	if !l.ok {
		return nil, nil, false
	}
	values, names, ok := l.read(obj)
	if !ok {
		return nil, nil, false
	}
	for _, n := range names {
		if len(n) > 0 && n[0] >= '0' && n[0] <= '9' {
			return nil, nil, false // may be an index, which Keys orders first
		}
		if v := values[n]; v != nil && reflect.TypeOf(v) == l.propType {
			return nil, nil, false
		}
	}
	return values, names, true
}
