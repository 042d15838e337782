package script

import (
	"github.com/dop251/goja"

	"github.com/sensorgate/sensorgate/decoders"
)

// readTracker hands normalizeUplink the decoded data behind proxies that
// note the decoded_<model> key (nested keys joined with "_") of every
// number, string or boolean it reads. Decode uses the keys to tell which
// decoded values a normalized sample repeats (keyRepeats), so that
// decoded_<model> does not store them twice, as it already does not for
// mapped codecs and native decoders.
//
// The proxies only observe: every operation but get goes to the codec's
// own object, a get returns what the object holds, and the nested object
// it reaches is wrapped once, so d.a === d.a still holds.
type readTracker struct {
	rt      *goja.Runtime
	gopd    goja.Callable // Object.getOwnPropertyDescriptor, taken before the codec ran
	proxies map[*goja.Object]goja.Value
	read    []string
	seen    map[string]struct{} // once read is past a scan's worth
}

// newReadTracker tracks reads on rt; gopd is the runtime's own
// Object.getOwnPropertyDescriptor, taken before a codec could replace it
// (and before a locked runtime's stand-in took its place). Without it no
// nested object is wrapped.
func newReadTracker(rt *goja.Runtime, gopd goja.Callable) *readTracker {
	return &readTracker{rt: rt, gopd: gopd}
}

// pristineGOPD takes rt's Object.getOwnPropertyDescriptor, for a
// readTracker; nil if it is not there.
func pristineGOPD(rt *goja.Runtime) goja.Callable {
	obj, ok := rt.Get("Object").(*goja.Object)
	if !ok {
		return nil
	}
	fn, _ := goja.AssertFunction(obj.Get("getOwnPropertyDescriptor"))
	return fn
}

// track returns v as normalizeUplink's input.data: behind a proxy when it
// is a plain object or array, else unchanged.
func (t *readTracker) track(v goja.Value) goja.Value {
	obj, ok := v.(*goja.Object)
	if !ok || !plainContainer(obj) {
		return v
	}
	return t.wrap(obj, "")
}

func (t *readTracker) wrap(obj *goja.Object, prefix string) goja.Value {
	if p, ok := t.proxies[obj]; ok {
		return p
	}
	p := t.rt.ToValue(t.rt.NewProxy(obj, &goja.ProxyTrapConfig{
		Get: func(target *goja.Object, prop string, _ goja.Value) goja.Value {
			v := target.Get(prop)
			if v == nil {
				return goja.Undefined()
			}
			key := prop
			if prefix != "" {
				key = prefix + "_" + prop
			}
			if o, isObj := v.(*goja.Object); isObj {
				if plainContainer(o) && t.wrappable(target, prop) {
					return t.wrap(o, key)
				}
				return v
			}
			if !goja.IsUndefined(v) && !goja.IsNull(v) {
				t.note(key)
			}
			return v
		},
	}))
	if t.proxies == nil {
		t.proxies = make(map[*goja.Object]goja.Value)
	}
	t.proxies[obj] = p
	return p
}

// plainContainer reports whether o is an ordinary object or array, the
// shapes decoded data is made of; a Date, a typed array or a Map keeps
// its own methods only unwrapped.
func plainContainer(o *goja.Object) bool {
	switch o.ClassName() {
	case "Object", "Array":
		return true
	}
	return false
}

// wrappable reports whether a get of target's prop may return a proxy in
// place of the object it holds: a proxy must return the very value of a
// property that is neither writable nor configurable (a frozen object's),
// so those are left unwrapped and their contents untracked.
func (t *readTracker) wrappable(target *goja.Object, prop string) bool {
	if t.gopd == nil {
		return false
	}
	d, err := t.gopd(goja.Undefined(), target, t.rt.ToValue(prop))
	if err != nil {
		return false
	}
	desc, ok := d.(*goja.Object)
	if !ok {
		return false
	}
	flag := func(name string) bool {
		v := desc.Get(name)
		return v != nil && v.ToBoolean()
	}
	return flag("writable") || flag("configurable")
}

// scanReads is how many keys note checks by scanning before it keeps a set.
const scanReads = 16

func (t *readTracker) note(key string) {
	if t.seen != nil {
		if _, dup := t.seen[key]; dup {
			return
		}
		t.seen[key] = struct{}{}
		t.read = append(t.read, key)
		return
	}
	for _, k := range t.read {
		if k == key {
			return
		}
	}
	t.read = append(t.read, key)
	if len(t.read) > scanReads {
		t.seen = make(map[string]struct{}, 2*len(t.read))
		for _, k := range t.read {
			t.seen[k] = struct{}{}
		}
	}
}

// keyRepeats names in each sample's Key the decoded key it repeats: the
// one key normalizeUplink read (read) whose value in rec equals the
// sample's exactly. A sample that two read keys equal, or none, keeps no
// key, and decoded_<model> keeps those values: a value computed from
// several keys, scaled, or equal to another by chance is never taken for
// a repeat of one. Samples that name a key already keep it.
func keyRepeats(rec *decoders.Record, read []string, samples []decoders.Sample) {
	if len(read) == 0 || len(samples) == 0 {
		return
	}
	var set map[string]struct{}
	if len(read) > scanReads {
		set = make(map[string]struct{}, len(read))
		for _, k := range read {
			set[k] = struct{}{}
		}
	}
	wasRead := func(k string) bool {
		if set != nil {
			_, ok := set[k]
			return ok
		}
		for _, r := range read {
			if r == k {
				return true
			}
		}
		return false
	}
	// matches[i] counts the read keys equal to sample i, up to 2, and
	// keys[i] is the last of them; a frame's few samples fit the arrays.
	var smallMatches [8]int8
	var smallKeys [8]string
	matches, keys := smallMatches[:0], smallKeys[:0]
	if len(samples) > len(smallMatches) {
		matches, keys = make([]int8, len(samples)), make([]string, len(samples))
	} else {
		matches, keys = smallMatches[:len(samples)], smallKeys[:len(samples)]
	}
	rec.Flat(func(k string, v decoders.Value) {
		if !wasRead(k) {
			return
		}
		for i := range samples {
			if samples[i].Key != "" || matches[i] > 1 || samples[i].Value != v {
				continue
			}
			matches[i]++
			keys[i] = k
		}
	})
	for i := range samples {
		if samples[i].Key == "" && matches[i] == 1 {
			samples[i].Key = keys[i]
		}
	}
}
