package devices

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"unique"
)

// Registry finds devices by DevEUI, name or DevAddr. It is safe for
// concurrent use; Replace swaps the whole set at once so a lookup never
// sees half an import.
type Registry struct {
	cur atomic.Pointer[deviceSet]
	// gen counts content swaps, so a cache of what is derived from
	// devices knows when to drop entries of devices no longer listed.
	gen atomic.Uint64
}

// chunkBits sizes the blocks a deviceSet keeps its devices in: blocks
// rather than one slice, so that a set of a million devices is built by
// appending without copying what is already there (a growing slice of
// 64-byte structs would briefly hold two copies).
const (
	chunkBits = 10
	chunkLen  = 1 << chunkBits
)

// deviceSet is one state of the registry, never modified once published.
// It is the only copy of the devices in memory: the Store, the lookups and
// the listings all read it. Per device it holds the Device (64 bytes,
// with model, tag and variable maps shared between devices that have the
// same ones), its name, one slot in each of two maps and four bytes of
// EUI order.
type deviceSet struct {
	chunks [][]Device
	n      int
	// order is every device's index in ascending EUI order, the order of
	// every paged listing.
	order  []int32
	byEUI  euiIndex
	byName map[string]int32
	// byAddr lists the devices with a session per DevAddr: several
	// devices may share one, and only the MIC tells them apart.
	byAddr map[DevAddr][]*Device
	// gen is the registry's Generation when the set was published.
	gen uint64
}

func (s *deviceSet) at(i int32) *Device { return &s.chunks[i>>chunkBits][i&(chunkLen-1)] }

// add appends d and returns its index; the maps are built by index.
func (s *deviceSet) add(d Device) int32 {
	if s.n&(chunkLen-1) == 0 {
		s.chunks = append(s.chunks, make([]Device, 0, chunkLen))
	}
	c := &s.chunks[len(s.chunks)-1]
	*c = append(*c, d)
	s.n++
	return int32(s.n - 1)
}

func (s *deviceSet) len() int {
	if s == nil {
		return 0
	}
	return s.n
}

func (s *deviceSet) lookup(e EUI) (*Device, bool) {
	if s == nil {
		return nil, false
	}
	i, ok := s.byEUI.get(e)
	if !ok {
		return nil, false
	}
	return s.at(i), true
}

// deviceAt is the device at index[k] of s, if k is there.
func deviceAt[K comparable](s *deviceSet, index map[K]int32, k K) (*Device, bool) {
	i, ok := index[k]
	if !ok {
		return nil, false
	}
	return s.at(i), true
}

// all calls fn with every device in ascending EUI order until it returns
// false.
func (s *deviceSet) all(fn func(*Device) bool) {
	if s == nil {
		return
	}
	for _, i := range s.order {
		if !fn(s.at(i)) {
			return
		}
	}
}

// index builds the maps and the EUI order over the devices added, and
// fails on a duplicate EUI or name, on a device without an EUI or with an
// invalid session.
func (s *deviceSet) index() error {
	s.byEUI = newEUIIndex(s.n)
	s.byName = make(map[string]int32, s.n)
	s.byAddr = map[DevAddr][]*Device{}
	s.order = make([]int32, 0, s.n)
	for i := int32(0); int(i) < s.n; i++ {
		d := s.at(i)
		if d.EUI.IsZero() {
			return fmt.Errorf("devices: device %q has no dev_eui", d.Name)
		}
		if j, ok := s.byEUI.get(d.EUI); ok {
			return fmt.Errorf("devices: dev_eui %s listed twice (%q and %q): keep one", d.EUI, s.at(j).Name, d.Name)
		}
		if j, ok := s.byName[d.Name]; ok {
			return fmt.Errorf("devices: name %q used by %s and %s: names must be unique", d.Name, s.at(j).EUI, d.EUI)
		}
		if d.Session != nil {
			if err := d.Session.Validate(); err != nil {
				return fmt.Errorf("devices: device %q: %w", d.Name, err)
			}
			s.byAddr[d.Session.DevAddr] = append(s.byAddr[d.Session.DevAddr], d)
		}
		s.byEUI.set(d.EUI, i)
		s.byName[d.Name] = i
		s.order = append(s.order, i)
	}
	slices.SortFunc(s.order, func(a, b int32) int { return CompareEUI(s.at(a).EUI, s.at(b).EUI) })
	// The registry order of byAddr's candidates is EUI order.
	for _, ds := range s.byAddr {
		slices.SortFunc(ds, func(a, b *Device) int { return CompareEUI(a.EUI, b.EUI) })
	}
	return nil
}

// newSet builds a set of devs, interned and with names defaulted, or says
// what makes them unfit for a registry.
func newSet(devs []Device) (*deviceSet, error) {
	s := &deviceSet{}
	var in interner
	for _, d := range devs {
		s.add(in.device(d))
	}
	if err := s.index(); err != nil {
		return nil, err
	}
	return s, nil
}

// NewRegistry returns a registry holding devs; it fails on a duplicate EUI
// or name, since either would make points ambiguous.
func NewRegistry(devs []Device) (*Registry, error) {
	r := &Registry{}
	if err := r.Replace(devs); err != nil {
		return nil, err
	}
	return r, nil
}

// Replace swaps the registry's contents for devs, or leaves it unchanged
// and returns an error. The registry keeps copies: devs stays the
// caller's.
func (r *Registry) Replace(devs []Device) error {
	s, err := newSet(devs)
	if err != nil {
		return err
	}
	r.swap(s)
	return nil
}

func (r *Registry) swap(s *deviceSet) {
	s.gen = r.gen.Add(1)
	r.cur.Store(s)
}

func (r *Registry) set() *deviceSet { return r.cur.Load() }

// Generation changes whenever the registry's contents are replaced. A
// *Device is never modified, so what a cache derives from one stays
// right; the generation only says when to drop entries of replaced ones.
func (r *Registry) Generation() uint64 { return r.gen.Load() }

// Lookup returns the device with the EUI. The returned Device must not be
// modified.
func (r *Registry) Lookup(eui EUI) (*Device, bool) { return r.set().lookup(eui) }

// Ref is a registered device as one state of the registry holds it: the
// device, that state's generation and the device's index in it (below
// Len). A cache of what is derived from devices can be a slice by Index
// per Gen, which costs a lookup far fewer cache misses than a map keyed
// by device once the fleet outgrows the CPU's caches.
type Ref struct {
	Device *Device
	Gen    uint64
	Index  int32
	Len    int32
}

// Ref returns the device with the EUI and its place in the registry.
func (r *Registry) Ref(eui EUI) (Ref, bool) {
	s := r.set()
	if s == nil {
		return Ref{}, false
	}
	i, ok := s.byEUI.get(eui)
	return s.refAt(i, ok)
}

// RefName is Ref by operator-given name.
func (r *Registry) RefName(name string) (Ref, bool) {
	s := r.set()
	if s == nil {
		return Ref{}, false
	}
	i, ok := s.byName[name]
	return s.refAt(i, ok)
}

// refAt is the Ref of the device at index i of s, if ok.
func (s *deviceSet) refAt(i int32, ok bool) (Ref, bool) {
	if !ok {
		return Ref{}, false
	}
	return Ref{Device: s.at(i), Gen: s.gen, Index: i, Len: int32(s.n)}, true
}

// Len returns the number of devices.
func (r *Registry) Len() int { return r.set().len() }

// LookupName returns the device with the operator-given name, for feeds
// that identify devices by name rather than EUI (generic JSON).
func (r *Registry) LookupName(name string) (*Device, bool) {
	s := r.set()
	if s == nil {
		return nil, false
	}
	return deviceAt(s, s.byName, name)
}

// LookupDevAddr returns the devices whose session has the DevAddr, in
// EUI order. The slice and the Devices must not be modified.
func (r *Registry) LookupDevAddr(addr DevAddr) []*Device {
	s := r.set()
	if s == nil {
		return nil
	}
	return s.byAddr[addr]
}

// interner makes devices share what they have in common: model strings,
// tag and variable keys and values (through package unique, so one copy
// process-wide, released when no device uses it), and whole tag and
// variable maps of the same content (within one build). A small map is
// about 300 bytes, most of a device's footprint when every device had its
// own; a fleet's tags (district, site) repeat.
type interner struct {
	maps map[string]map[string]string
	key  strings.Builder
}

func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}

// device returns d as a registry keeps it: named (the EUI when the name
// is empty), its name in memory of its own, its session copied (the
// caller keeps its own), everything but the name interned.
func (in *interner) device(d Device) Device {
	if d.Name == "" {
		d.Name = d.EUI.String()
	} else {
		// A parser's string may share its memory with a whole line.
		d.Name = strings.Clone(d.Name)
	}
	d.Model = intern(d.Model)
	d.Tags = in.strMap(d.Tags)
	d.Variables = in.strMap(d.Variables)
	if d.Session != nil {
		ss := *d.Session
		ss.MACVersion = intern(ss.MACVersion)
		d.Session = &ss
	}
	return d
}

func (in *interner) strMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	in.key.Reset()
	keys := slices.Sorted(maps.Keys(m))
	for _, k := range keys {
		in.key.WriteString(k)
		in.key.WriteByte(0)
		in.key.WriteString(m[k])
		in.key.WriteByte(0)
	}
	if in.maps == nil {
		in.maps = map[string]map[string]string{}
	}
	if shared, ok := in.maps[in.key.String()]; ok {
		return shared
	}
	out := make(map[string]string, len(m))
	for _, k := range keys {
		out[intern(k)] = intern(m[k])
	}
	in.maps[strings.Clone(in.key.String())] = out
	return out
}

// byNameOrder returns the set's indexes ordered by device name.
func (s *deviceSet) byNameOrder() []int32 {
	if s == nil {
		return nil
	}
	out := slices.Clone(s.order)
	slices.SortFunc(out, func(a, b int32) int { return cmp.Compare(s.at(a).Name, s.at(b).Name) })
	return out
}
