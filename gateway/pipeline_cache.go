package gateway

import (
	"sync"

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

// viewCache holds deviceViews of one registry generation. It is keyed by
// the registry's *Device: a reload builds new Devices, so an entry is
// never stale, and dropping the cache when the generation moves only
// frees the entries of replaced ones.
type viewCache struct {
	gen uint64
	m   sync.Map // *devices.Device -> []deviceView, one per source; copied on write
}

// generational is a DeviceLookup that says when its contents changed;
// *devices.Registry is one. Without it, views are built per message.
type generational interface {
	Generation() uint64
}

// cachedView returns d's view for source, if one was stored.
func (p *Pipeline) cachedView(d *devices.Device, source string) (deviceView, bool) {
	c := p.viewCache()
	if c == nil {
		return deviceView{}, false
	}
	if v, ok := c.m.Load(d); ok {
		for _, dv := range v.([]deviceView) {
			if dv.source == source {
				return dv, true
			}
		}
	}
	return deviceView{}, false
}

// storeView keeps dv for d's later messages. Concurrent first messages of
// one device may each store; the last one wins and the others' views are
// built again on a later miss, harmless for a value that is the same
// whoever builds it.
func (p *Pipeline) storeView(d *devices.Device, dv deviceView) {
	c := p.viewCache()
	if c == nil {
		return
	}
	var views []deviceView
	if v, ok := c.m.Load(d); ok {
		views = v.([]deviceView)
	}
	c.m.Store(d, append(views[:len(views):len(views)], dv))
}

// viewCache returns the cache of the registry's current generation,
// starting a fresh one when the generation moved; nil if the registry
// does not say when it changes.
func (p *Pipeline) viewCache() *viewCache {
	g, ok := p.Devices.(generational)
	if !ok {
		return nil
	}
	gen := g.Generation()
	for {
		c := p.views.Load()
		if c != nil && c.gen == gen {
			return c
		}
		if fresh := (&viewCache{gen: gen}); p.views.CompareAndSwap(c, fresh) {
			return fresh
		}
	}
}
