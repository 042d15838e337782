package devices

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Registry finds devices by DevEUI, name or DevAddr. It is safe for
// concurrent use; Replace swaps the whole set at once so a lookup never
// sees half an import.
type Registry struct {
	mu     sync.RWMutex
	byEUI  map[EUI]*Device
	byName map[string]*Device
	// byAddr lists the devices with a session per DevAddr: several devices
	// may share one, and only the MIC tells them apart.
	byAddr map[DevAddr][]*Device
	// gen counts content swaps, so a cache of what is derived from
	// devices knows when to drop entries of devices no longer listed.
	gen atomic.Uint64
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
// and returns an error.
func (r *Registry) Replace(devs []Device) error {
	byEUI := make(map[EUI]*Device, len(devs))
	byName := make(map[string]*Device, len(devs))
	byAddr := map[DevAddr][]*Device{}
	for i := range devs {
		d := devs[i]
		if d.EUI.IsZero() {
			return fmt.Errorf("devices: device %q has no dev_eui", d.Name)
		}
		if d.Name == "" {
			d.Name = d.EUI.String()
		}
		if prev, ok := byEUI[d.EUI]; ok {
			return fmt.Errorf("devices: dev_eui %s listed twice (%q and %q): keep one", d.EUI, prev.Name, d.Name)
		}
		if prev, ok := byName[d.Name]; ok {
			return fmt.Errorf("devices: name %q used by %s and %s: names must be unique", d.Name, prev.EUI, d.EUI)
		}
		if d.Session != nil {
			s := *d.Session // the caller keeps its copy; ours must not change under a lookup
			d.Session = &s
			if err := d.Session.Validate(); err != nil {
				return fmt.Errorf("devices: device %q: %w", d.Name, err)
			}
			byAddr[d.Session.DevAddr] = append(byAddr[d.Session.DevAddr], &d)
		}
		byEUI[d.EUI] = &d
		byName[d.Name] = &d
	}
	r.mu.Lock()
	r.byEUI, r.byName, r.byAddr = byEUI, byName, byAddr
	r.gen.Add(1)
	r.mu.Unlock()
	return nil
}

// Generation changes whenever the registry's contents are replaced. A
// *Device is never modified, so what a cache derives from one stays
// right; the generation only says when to drop entries of replaced ones.
func (r *Registry) Generation() uint64 { return r.gen.Load() }

// Lookup returns the device with the EUI. The returned Device must not be
// modified.
func (r *Registry) Lookup(eui EUI) (*Device, bool) {
	r.mu.RLock()
	d, ok := r.byEUI[eui]
	r.mu.RUnlock()
	return d, ok
}

// Len returns the number of devices.
func (r *Registry) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.byEUI)
}

// LookupName returns the device with the operator-given name, for feeds
// that identify devices by name rather than EUI (generic JSON).
func (r *Registry) LookupName(name string) (*Device, bool) {
	r.mu.RLock()
	d, ok := r.byName[name]
	r.mu.RUnlock()
	return d, ok
}

// LookupDevAddr returns the devices whose session has the DevAddr, in
// registry order. The slice and the Devices must not be modified.
func (r *Registry) LookupDevAddr(addr DevAddr) []*Device {
	r.mu.RLock()
	ds := r.byAddr[addr]
	r.mu.RUnlock()
	return ds
}

// swapFrom takes other's contents. The store builds (and so validates) the
// next registry before its transaction commits, then swaps it in once the
// commit succeeded, so memory never holds a set the disk does not.
func (r *Registry) swapFrom(other *Registry) {
	other.mu.RLock()
	byEUI, byName, byAddr := other.byEUI, other.byName, other.byAddr
	other.mu.RUnlock()
	r.mu.Lock()
	r.byEUI, r.byName, r.byAddr = byEUI, byName, byAddr
	r.gen.Add(1)
	r.mu.Unlock()
}
