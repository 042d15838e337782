package gateway

import (
	"sort"
	"sync"
	"sync/atomic"
)

// Counters counts pipeline events by name ("uplinks", "dead_letters.decode_error",
// …). The log summary and the metrics endpoint read it; names form a
// small closed set, never per-device values.
//
// The names the pipeline counts for every message are fixed slots, so the
// hot path costs an atomic add instead of a map lookup by name; like the
// others, they show in Snapshot and Names once counted.
type Counters struct {
	hot [len(hotNames)]atomic.Uint64
	m   sync.Map // string -> *atomic.Uint64, every other name
}

// hotCounter indexes Counters.hot and hotNames.
type hotCounter int

const (
	cUplinks hotCounter = iota
	cUplinksWritten
	cPointsWritten
	cWarnings
	cLocalTime
	cUnknownAccepted
	cPayloadsDecrypted
)

var hotNames = [...]string{
	cUplinks:           "uplinks",
	cUplinksWritten:    "uplinks_written",
	cPointsWritten:     "points_written",
	cWarnings:          "warnings",
	cLocalTime:         "local_time",
	cUnknownAccepted:   "unknown_devices_accepted",
	cPayloadsDecrypted: "payloads_decrypted",
}

func hotIndex(name string) (hotCounter, bool) {
	for i, n := range hotNames {
		if n == name {
			return hotCounter(i), true
		}
	}
	return 0, false
}

// add counts n on a fixed slot.
func (c *Counters) add(h hotCounter, n uint64) { c.hot[h].Add(n) }

// Add adds n to the named counter.
func (c *Counters) Add(name string, n uint64) {
	if h, ok := hotIndex(name); ok {
		c.add(h, n)
		return
	}
	v, ok := c.m.Load(name)
	if !ok {
		v, _ = c.m.LoadOrStore(name, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(n)
}

// Inc adds one to the named counter.
func (c *Counters) Inc(name string) { c.Add(name, 1) }

// Get returns the named counter's value.
func (c *Counters) Get(name string) uint64 {
	if h, ok := hotIndex(name); ok {
		return c.hot[h].Load()
	}
	if v, ok := c.m.Load(name); ok {
		return v.(*atomic.Uint64).Load()
	}
	return 0
}

// Snapshot returns every counter, for logs and tests.
func (c *Counters) Snapshot() map[string]uint64 {
	out := map[string]uint64{}
	for i := range c.hot {
		if v := c.hot[i].Load(); v != 0 {
			out[hotNames[i]] = v
		}
	}
	c.m.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return out
}

// Names returns the counter names, sorted.
func (c *Counters) Names() []string {
	var out []string
	for i := range c.hot {
		if c.hot[i].Load() != 0 {
			out = append(out, hotNames[i])
		}
	}
	c.m.Range(func(k, _ any) bool { out = append(out, k.(string)); return true })
	sort.Strings(out)
	return out
}
