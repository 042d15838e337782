package gateway

import (
	"sort"
	"sync"
	"sync/atomic"
)

// Counters counts pipeline events by name ("uplinks", "dead_letters.decode_error",
// …). It is what the log summary and, later, the metrics endpoint read;
// names form a small closed set, never per-device values.
type Counters struct {
	m sync.Map // string -> *atomic.Uint64
}

// Add adds n to the named counter.
func (c *Counters) Add(name string, n uint64) {
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
	if v, ok := c.m.Load(name); ok {
		return v.(*atomic.Uint64).Load()
	}
	return 0
}

// Snapshot returns every counter, for logs and tests.
func (c *Counters) Snapshot() map[string]uint64 {
	out := map[string]uint64{}
	c.m.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return out
}

// Names returns the counter names, sorted.
func (c *Counters) Names() []string {
	var out []string
	c.m.Range(func(k, _ any) bool { out = append(out, k.(string)); return true })
	sort.Strings(out)
	return out
}
