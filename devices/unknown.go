package devices

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Bounds of the unknown-device list. A misconfigured feed (or a hostile
// one) could name any number of EUIs; the list must not grow without end.
const (
	// MaxUnknown is how many unknown devices are tracked; further new
	// EUIs are counted in Dropped and not listed.
	MaxUnknown = 10000
	// maxUnknownRaw bounds the raw message kept per unknown device.
	maxUnknownRaw = 8 << 10
)

// UnknownDevice is a device that sent uplinks but is not in the registry:
// what an operator needs to adopt it.
type UnknownDevice struct {
	DevEUI    EUI       `json:"dev_eui"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Count     uint64    `json:"count"`
	Source    string    `json:"source"`
	// Name and Profile are what the network server calls the device and
	// its device profile (brand-model), if it says.
	Name    string `json:"name,omitempty"`
	Profile string `json:"profile,omitempty"`
	// Accepted is true when its uplinks are written under the network
	// server's name (unknown_devices: accept), false when they are
	// dead-lettered.
	Accepted    bool   `json:"accepted"`
	FPort       uint8  `json:"f_port,omitempty"`
	LastPayload []byte `json:"last_payload"` // application payload (base64 in JSON)
	// LastRaw is the last message as received, cut to 8 KiB.
	LastRaw     []byte `json:"last_raw,omitempty"`
	RawTruncate bool   `json:"last_raw_truncated,omitempty"`
}

// UnknownObservation is one uplink of a device missing from the registry.
type UnknownObservation struct {
	EUI      EUI
	Time     time.Time
	Source   string
	Name     string
	Profile  string
	Accepted bool
	FPort    uint8
	Payload  []byte
	Raw      []byte
}

// Unknowns tracks devices that sent uplinks but are not registered. It is
// safe for concurrent use; Observe copies what it keeps.
type Unknowns struct {
	mu      sync.Mutex
	m       map[EUI]*UnknownDevice
	dropped uint64
}

// NewUnknowns returns an empty tracker.
func NewUnknowns() *Unknowns { return &Unknowns{m: map[EUI]*UnknownDevice{}} }

// Observe records one uplink.
func (u *Unknowns) Observe(o UnknownObservation) {
	if o.EUI.IsZero() {
		return // nothing to adopt it by
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	d, ok := u.m[o.EUI]
	if !ok {
		if len(u.m) >= MaxUnknown {
			u.dropped++
			return
		}
		d = &UnknownDevice{DevEUI: o.EUI, FirstSeen: o.Time}
		u.m[o.EUI] = d
	}
	d.Count++
	if o.Time.Before(d.FirstSeen) {
		d.FirstSeen = o.Time
	}
	if o.Time.Before(d.LastSeen) {
		return // an older message (a redelivery): keep the latest payload
	}
	d.LastSeen, d.Source, d.Accepted, d.FPort = o.Time, o.Source, o.Accepted, o.FPort
	if o.Name != "" {
		d.Name = o.Name
	}
	if o.Profile != "" {
		d.Profile = o.Profile
	}
	d.LastPayload = append(d.LastPayload[:0], o.Payload...)
	raw := o.Raw
	d.RawTruncate = len(raw) > maxUnknownRaw
	if d.RawTruncate {
		raw = raw[:maxUnknownRaw]
	}
	d.LastRaw = append(d.LastRaw[:0], raw...)
}

// List returns the unknown devices, most recently seen first.
func (u *Unknowns) List() []UnknownDevice {
	u.mu.Lock()
	out := make([]UnknownDevice, 0, len(u.m))
	for _, d := range u.m {
		out = append(out, clonedUnknown(d))
	}
	u.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].LastSeen.Equal(out[j].LastSeen) {
			return out[i].LastSeen.After(out[j].LastSeen)
		}
		return out[i].DevEUI.String() < out[j].DevEUI.String()
	})
	return out
}

// Get returns one unknown device.
func (u *Unknowns) Get(eui EUI) (UnknownDevice, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	d, ok := u.m[eui]
	if !ok {
		return UnknownDevice{}, false
	}
	return clonedUnknown(d), true
}

// Remove drops a device from the list (adopted or dismissed).
func (u *Unknowns) Remove(eui EUI) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.m[eui]
	delete(u.m, eui)
	return ok
}

// Dropped is how many new unknown EUIs were not listed because the list
// was full.
func (u *Unknowns) Dropped() uint64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.dropped
}

func clonedUnknown(d *UnknownDevice) UnknownDevice {
	c := *d
	c.LastPayload = append([]byte(nil), d.LastPayload...)
	c.LastRaw = append([]byte(nil), d.LastRaw...)
	return c
}

// SaveUnknowns persists the unknown-device list, replacing what was
// saved before.
func (s *Store) SaveUnknowns(ctx context.Context, u *Unknowns) error {
	states := map[EUI][]byte{}
	for _, d := range u.List() {
		b, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("devices: encode unknown device %s: %w", d.DevEUI, err)
		}
		states[d.DevEUI] = b
	}
	return s.saveStates(ctx, "unknown_devices", states)
}

// LoadUnknowns reads the persisted unknown devices into u, skipping any
// registered since (they were adopted).
func (s *Store) LoadUnknowns(ctx context.Context, u *Unknowns) error {
	states, err := s.loadStates(ctx, "unknown_devices")
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for e, b := range states {
		if _, registered := s.reg.Lookup(e); registered {
			continue
		}
		var d UnknownDevice
		if json.Unmarshal(b, &d) != nil || len(u.m) >= MaxUnknown {
			continue
		}
		d.DevEUI = e
		u.m[e] = &d
	}
	return nil
}
