package decoders

import (
	"strconv"
	"strings"
	"sync"
)

// Record is a native decoder's data: its values in the order written,
// typed, nested as the vendor's reference codec nests them. Natives write
// into a Record rather than build a map[string]any because the map costs an
// allocation per value (every number boxed, every nested object a map of
// its own) while the pipeline only needs the values flat and typed for the
// decoded_<model> point; the map is built by Map, where somebody looks at
// it (vectors, `sensorgate decode`, the HTTP API).
//
// A decoder opens an object or an array with Object or Array, writes values
// into it with Number, String, Bool and Null, and closes it with End; keys
// of array elements are ignored. Writing a key twice is allowed: in Map the
// later value wins, as a second assignment to a JavaScript object does.
// Opening an object or an array whose key its parent already holds adds to
// it (Cayenne LPP groups a type's channels in one object; history records
// read one by one go into one list).
//
// The zero Record is empty and ready to use.
type Record struct {
	nodes      []node
	open       int32    // innermost open container's index + 1; 0 at the top
	samples    []Sample // see Samples
	samplesOut bool     // Samples gave the buffer out since NewRecord
}

// ValueKind is the type of a Value.
type ValueKind uint8

// Value kinds.
const (
	Null ValueKind = iota
	NumberValue
	StringValue
	BoolValue
	kindObject // containers, in Record only
	kindArray
)

// Value is one decoded value, unboxed.
type Value struct {
	Num  float64
	Str  string
	Kind ValueKind
	Bool bool
}

// NumberVal, BoolVal and StringVal make values.
func NumberVal(f float64) Value { return Value{Kind: NumberValue, Num: f} }
func BoolVal(b bool) Value      { return Value{Kind: BoolValue, Bool: b} }
func StringVal(s string) Value  { return Value{Kind: StringValue, Str: s} }

// ValueOf converts what JSON decoding or a JavaScript codec's export gives:
// any number type, a bool, a string or nil. Anything else (an object, an
// array) is not a value.
func ValueOf(v any) (Value, bool) {
	switch x := v.(type) {
	case nil:
		return Value{}, true
	case bool:
		return BoolVal(x), true
	case string:
		return StringVal(x), true
	}
	if f, ok := ToFloat(v); ok {
		return NumberVal(f), true
	}
	return Value{}, false
}

// typeName names v's type as Go prints the type of the interface value
// Any returns, for error messages.
func (v Value) typeName() string {
	switch v.Kind {
	case NumberValue:
		return "float64"
	case StringValue:
		return "string"
	case BoolValue:
		return "bool"
	}
	return "<nil>"
}

// Any returns v as the interface value JSON decoding would give.
func (v Value) Any() any {
	switch v.Kind {
	case NumberValue:
		return v.Num
	case StringValue:
		return v.Str
	case BoolValue:
		return v.Bool
	}
	return nil
}

// node is a Value's fields spelled out, so parent fits in what would be
// the Value's padding: 48 bytes, not 56.
type node struct {
	key    string
	num    float64
	str    string
	parent int32 // index of the enclosing container, or -1
	kind   ValueKind
	b      bool
}

func (n *node) value() Value { return Value{Num: n.num, Str: n.str, Kind: n.kind, Bool: n.b} }

// NewRecord returns an empty record with room for n values and containers,
// so a decoder that knows its frame's size writes without growing it. It
// reuses a released record where there is one.
func NewRecord(n int) *Record {
	r := recordPool.Get().(*Record)
	if cap(r.nodes) < n {
		r.nodes = make([]node, 0, n)
	}
	return r
}

// Samples returns an empty slice with room for n samples that lives as long
// as r: a decoder whose result carries r puts its samples there, so a
// pooled record brings its sample buffer along. Like r, the slice must not
// be used after r.Release. The buffer is given out once per record; later
// calls (the pipeline mapping a source's keys too) get a new slice, so
// they cannot overwrite the decoder's samples.
func (r *Record) Samples(n int) []Sample {
	if r.samplesOut {
		return make([]Sample, 0, n)
	}
	r.samplesOut = true
	if cap(r.samples) < n {
		r.samples = make([]Sample, 0, n)
	}
	return r.samples[:0]
}

// recordPool holds released records: the pipeline releases every native
// decoder's record once the uplink's points are built, so a busy daemon
// decodes into the same few node arrays instead of allocating one per
// uplink.
var recordPool = sync.Pool{New: func() any { return new(Record) }}

const maxPooledNodes = 1024

// Release empties r and hands it back for a later NewRecord. Nothing may
// use r or the slices its Samples gave after; what else r gave out stays
// valid (Map's maps, Flat's keys and Lookup's values do not share its
// memory). A nil r is ignored.
func (r *Record) Release() {
	if r == nil {
		return
	}
	if cap(r.nodes) > maxPooledNodes || cap(r.samples) > maxPooledNodes {
		return // a rare huge frame's array is not worth keeping
	}
	r.nodes, r.open, r.samplesOut = r.nodes[:0], 0, false
	recordPool.Put(r)
}

// Reset empties r for writing again, keeping its memory: a decoder whose
// attempt failed half-way writes its next attempt into the same record.
func (r *Record) Reset() {
	r.nodes, r.open, r.samplesOut = r.nodes[:0], 0, false
}

func (r *Record) add(key string, v Value) {
	// Fill the node in place: appending a composite literal builds it on
	// the stack and copies it, with write barriers for its strings.
	n := len(r.nodes)
	if n == cap(r.nodes) {
		r.nodes = append(r.nodes, node{})
	} else {
		r.nodes = r.nodes[:n+1]
	}
	p := &r.nodes[n]
	p.key, p.num, p.str, p.parent, p.kind, p.b = key, v.Num, v.Str, r.open-1, v.Kind, v.Bool
}

// Number, String, Bool and Null write one value under key.
func (r *Record) Number(key string, v float64) { r.add(key, Value{Kind: NumberValue, Num: v}) }
func (r *Record) String(key, v string)         { r.add(key, Value{Kind: StringValue, Str: v}) }
func (r *Record) Bool(key string, v bool)      { r.add(key, Value{Kind: BoolValue, Bool: v}) }
func (r *Record) Null(key string)              { r.add(key, Value{}) }

// Object opens an object under key; End closes it.
func (r *Record) Object(key string) { r.container(key, kindObject) }

// Array opens an array under key; End closes it.
func (r *Record) Array(key string) { r.container(key, kindArray) }

func (r *Record) container(key string, k ValueKind) {
	r.add(key, Value{Kind: k})
	r.open = int32(len(r.nodes))
}

// End closes the innermost open object or array.
func (r *Record) End() {
	if r.open > 0 {
		r.open = r.nodes[r.open-1].parent + 1
	}
}

// Len is the number of values and containers written.
func (r *Record) Len() int {
	if r == nil {
		return 0
	}
	return len(r.nodes)
}

// Map builds the record as the vendor codec's object: map[string]any with
// float64, string, bool, nil, []any and nested maps. It allocates the whole
// tree; it is for display and checks, not the hot path.
func (r *Record) Map() map[string]any {
	m := map[string]any{}
	if r != nil {
		r.fillObject(m, -1, 0)
	}
	return m
}

// A container's members are the nodes right after it whose parent it is,
// each followed by its own members: End makes them contiguous. fillObject
// and fillArray read the members of container c, starting at node i, and
// return the index after them.

func (r *Record) fillObject(m map[string]any, c int32, i int) int {
	for i < len(r.nodes) && r.nodes[i].parent == c {
		n := &r.nodes[i]
		switch n.kind {
		case kindObject:
			sub, ok := m[n.key].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[n.key] = sub
			}
			i = r.fillObject(sub, int32(i), i+1)
		case kindArray:
			var s []any
			s, i = r.fillArray(int32(i), i+1)
			if prev, ok := m[n.key].([]any); ok {
				s = append(prev, s...)
			}
			m[n.key] = s
		default:
			m[n.key] = n.value().Any()
			i++
		}
	}
	return i
}

func (r *Record) fillArray(c int32, i int) ([]any, int) {
	s := []any{}
	for i < len(r.nodes) && r.nodes[i].parent == c {
		n := &r.nodes[i]
		switch n.kind {
		case kindObject:
			sub := map[string]any{}
			i = r.fillObject(sub, int32(i), i+1)
			s = append(s, sub)
		case kindArray:
			var sub []any
			sub, i = r.fillArray(int32(i), i+1)
			s = append(s, sub)
		default:
			s = append(s, n.value().Any())
			i++
		}
	}
	return s, i
}

// Flat calls fn for every value that is not null, in the order written,
// with its key flattened as the decoded_<model> point's field key: the
// keys on the way joined with "_", array elements by their index. Keys of
// nested values are built in one buffer, so a record costs one allocation
// for all of them; fn may keep them.
func (r *Record) Flat(fn func(key string, v Value)) {
	if r == nil {
		return
	}
	var keys strings.Builder
	r.flat(&keys, fn, -1, "", 0)
}

func (r *Record) flat(keys *strings.Builder, fn func(string, Value), c int32, prefix string, i int) int {
	inArray := c >= 0 && r.nodes[c].kind == kindArray
	elem := 0
	if inArray {
		elem = r.earlierElements(c)
	}
	for ; i < len(r.nodes) && r.nodes[i].parent == c; elem++ {
		n := &r.nodes[i]
		key := n.key
		if c >= 0 {
			if keys.Cap() == 0 {
				keys.Grow(32 * (len(r.nodes) - i))
			}
			start := keys.Len()
			keys.WriteString(prefix)
			keys.WriteByte('_')
			if inArray {
				keys.WriteString(strconv.Itoa(elem))
			} else {
				keys.WriteString(n.key)
			}
			key = keys.String()[start:]
		}
		if n.kind == kindObject || n.kind == kindArray {
			i = r.flat(keys, fn, int32(i), key, i+1)
			continue
		}
		if n.kind != Null {
			fn(key, n.value())
		}
		i++
	}
	return i
}

// earlierElements counts the elements of the arrays that array c's parent
// opened under c's key before c: c's elements are numbered after them, as
// Map appends them.
func (r *Record) earlierElements(c int32) int {
	n := 0
	key, parent := r.nodes[c].key, r.nodes[c].parent
	for j := parent + 1; j < c; j++ {
		// An element of an earlier array of the same key: its parent is
		// that array, a sibling of c.
		if p := r.nodes[j].parent; p > parent && r.nodes[p].parent == parent && r.nodes[p].kind == kindArray && r.nodes[p].key == key {
			n++
		}
	}
	return n
}

// Lookup returns the value at path, whose keys are joined with ".", as
// Mapping.Key names it; a key written twice gives its later value.
func (r *Record) Lookup(path string) (Value, bool) {
	// Most nodes fail on their own key: compare that inline before
	// walking up the parents. A path whose keys have dots may also name
	// a top-level key: at tells.
	last := path
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		last = path[i+1:]
	}
	for i := r.Len() - 1; i >= 0; i-- {
		n := &r.nodes[i]
		if n.kind >= kindObject || (n.key != last && n.key != path) {
			continue
		}
		if r.at(int32(i), path) {
			return n.value(), true
		}
	}
	return Value{}, false
}

// at reports whether node i's keys from the top are path.
func (r *Record) at(i int32, path string) bool {
	for {
		n := &r.nodes[i]
		if n.parent < 0 {
			return n.key == path
		}
		rest, ok := strings.CutSuffix(path, n.key)
		if !ok || !strings.HasSuffix(rest, ".") || r.nodes[n.parent].kind != kindObject {
			return false
		}
		i, path = n.parent, rest[:len(rest)-1]
	}
}
