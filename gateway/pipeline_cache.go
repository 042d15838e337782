package gateway

import (
	"strings"
	"sync/atomic"

	"github.com/sensorgate/sensorgate/devices"
)

// deviceView is what Points derives from a registry entry (with a model)
// and the source alone: the sorted tags of every point and the decoded_
// measurement name. Building them took allocations and a sort per message.
type deviceView struct {
	source  string
	tags    []Tag
	decoded string
}

// viewList is a device's views, one per source it was heard from; the
// first is inline, so a device heard from one source costs one pointer
// to follow. Never modified once stored.
type viewList struct {
	deviceView
	next *viewList
	// inline holds the tags of up to packedTags, and values their values
	// back to back (packView): with 100,000 devices each of a view's
	// strings was an allocation of its own, and writing a point's tags
	// took a cache miss per string.
	inline [packedTags]Tag
	values string
}

// packedTags is how many tags a view holds inline: the four the pipeline
// sets and two allowed device tags (an entry of 288 bytes); a view with
// more has a slice of its own, its values still packed.
const packedTags = 6

// packView returns dv as a list entry ahead of next, its tags and their
// values copied into the entry.
func packView(dv deviceView, next *viewList) *viewList {
	l := &viewList{next: next}
	n := 0
	for _, t := range dv.tags {
		n += len(t.Value)
	}
	var b strings.Builder
	b.Grow(n)
	for _, t := range dv.tags {
		b.WriteString(t.Value)
	}
	l.values = b.String()
	tags := l.inline[:0]
	if len(dv.tags) > packedTags {
		tags = make([]Tag, 0, len(dv.tags))
	}
	off := 0
	for _, t := range dv.tags {
		tags = append(tags, Tag{Key: t.Key, Value: l.values[off : off+len(t.Value)]})
		off += len(t.Value)
	}
	l.deviceView = deviceView{source: dv.source, tags: tags, decoded: dv.decoded}
	return l
}

// viewCache holds the deviceViews of one registry state (generation), a
// slot per device by its index in that state. A slice rather than a map
// keyed by device: with 100,000 devices a sync.Map lookup walked several
// trie nodes, each a cache miss, on every uplink (issue 22). A reload is
// a new generation and a new cache, so an entry is never stale.
type viewCache struct {
	gen   uint64
	slots []atomic.Pointer[viewList]
}

// refLookup is a DeviceLookup that says where in its current state a
// device is; *devices.Registry is one. Without it, views are built per
// message.
type refLookup interface {
	Ref(eui devices.EUI) (devices.Ref, bool)
	RefName(name string) (devices.Ref, bool)
}

// cachedView returns the view of ref's device for source, if one was
// stored.
func (p *Pipeline) cachedView(ref devices.Ref, source string) (deviceView, bool) {
	c := p.viewCache(ref)
	if c == nil {
		return deviceView{}, false
	}
	for l := c.slots[ref.Index].Load(); l != nil; l = l.next {
		if l.source == source {
			return l.deviceView, true
		}
	}
	return deviceView{}, false
}

// storeView keeps dv for the device's later messages. Concurrent first
// messages of one device may each store; the last one wins and the
// others' views are built again on a later miss, harmless for a value
// that is the same whoever builds it.
func (p *Pipeline) storeView(ref devices.Ref, dv deviceView) {
	c := p.viewCache(ref)
	if c == nil {
		return
	}
	slot := &c.slots[ref.Index]
	slot.Store(packView(dv, slot.Load()))
}

// viewCache returns the cache of ref's generation, starting a fresh one
// when the generation moved; nil for a device not from a refLookup, or
// from an older generation than the cache's (a reload raced this
// message: its view is built, not kept).
func (p *Pipeline) viewCache(ref devices.Ref) *viewCache {
	if ref.Device == nil || ref.Index < 0 || ref.Index >= ref.Len {
		return nil
	}
	for {
		c := p.views.Load()
		switch {
		case c != nil && c.gen == ref.Gen:
			return c
		case c != nil && c.gen > ref.Gen:
			return nil
		}
		fresh := &viewCache{gen: ref.Gen, slots: make([]atomic.Pointer[viewList], ref.Len)}
		if p.views.CompareAndSwap(c, fresh) {
			return fresh
		}
	}
}
