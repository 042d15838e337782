package devices

import (
	"container/list"
	"context"
	"encoding/json"
	"sort"
	"time"
)

// Bounds of the unknown-device list. A misconfigured feed (or a hostile
// one) could name any number of EUIs; the list must not grow without end,
// and what it keeps per device is cut so that a full list stays a few tens
// of megabytes however big the messages.
const (
	// maxUnknownRaw bounds the raw message kept per unknown device.
	maxUnknownRaw = 2 << 10
	// maxUnknownPayload bounds the payload kept: a LoRaWAN application
	// payload is at most 242 bytes.
	maxUnknownPayload = 256
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
	LastPayload []byte `json:"last_payload"` // application payload (base64 in JSON), cut to 256 bytes
	// LastRaw is the last message as received, cut to 2 KiB.
	LastRaw     []byte `json:"last_raw,omitempty"`
	RawTruncate bool   `json:"last_raw_truncated,omitempty"`
}

// unknownEntry is a listed device with its place in the eviction order
// and its save state.
type unknownEntry struct {
	UnknownDevice
	elem *list.Element
	persisted
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

// Unknowns tracks devices that sent uplinks but are not registered, at
// most Max of them: a new device evicts the least recently heard one, so
// the list shows what is out there now. It is safe for concurrent use;
// Observe copies what it keeps.
type Unknowns struct {
	// tracked holds the devices and their save state; its mu guards all
	// of Unknowns.
	tracked[*unknownEntry]
	order   *list.List // EUIs, most recently heard first
	max     int
	evicted uint64
}

// NewUnknowns returns an empty tracker of up to DefaultMaxUnknown devices.
func NewUnknowns() *Unknowns {
	return &Unknowns{tracked: newTracked(unknownEntryRow), order: list.New(), max: DefaultMaxUnknown}
}

// SetMax sets how many devices are listed (at least 1), evicting the
// least recently heard ones beyond it.
func (u *Unknowns) SetMax(n int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.max = max(n, 1)
	for u.order.Len() > u.max {
		u.evictOldest()
	}
}

// evictOldest drops the least recently heard device; u.mu is held.
func (u *Unknowns) evictOldest() {
	back := u.order.Back()
	e := back.Value.(EUI)
	u.order.Remove(back)
	if d, ok := u.m[e]; ok {
		u.changes.removed(e, &d.persisted)
		delete(u.m, e)
	}
	u.evicted++
}

// Observe records one uplink.
func (u *Unknowns) Observe(o UnknownObservation) {
	if o.EUI.IsZero() {
		return // nothing to adopt it by
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	d, ok := u.m[o.EUI]
	if !ok {
		if u.order.Len() >= u.max {
			u.evictOldest()
		}
		d = &unknownEntry{UnknownDevice: UnknownDevice{DevEUI: o.EUI, FirstSeen: o.Time}}
		d.elem = u.order.PushFront(o.EUI)
		u.m[o.EUI] = d
	} else {
		u.order.MoveToFront(d.elem)
	}
	u.changes.touched(o.EUI, &d.persisted)
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
	d.LastPayload = append(d.LastPayload[:0], o.Payload[:min(len(o.Payload), maxUnknownPayload)]...)
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
		out = append(out, clonedUnknown(&d.UnknownDevice))
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
	return clonedUnknown(&d.UnknownDevice), true
}

// Remove drops a device from the list (adopted or dismissed).
func (u *Unknowns) Remove(eui EUI) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	d, ok := u.m[eui]
	if !ok {
		return false
	}
	u.order.Remove(d.elem)
	u.changes.removed(eui, &d.persisted)
	delete(u.m, eui)
	return true
}

// Len is how many devices are listed.
func (u *Unknowns) Len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.m)
}

// Dropped is how many devices were evicted from the full list for newer
// ones.
func (u *Unknowns) Dropped() uint64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.evicted
}

func clonedUnknown(d *UnknownDevice) UnknownDevice {
	c := *d
	c.LastPayload = append([]byte(nil), d.LastPayload...)
	c.LastRaw = append([]byte(nil), d.LastRaw...)
	return c
}

// SaveUnknowns writes what changed in the unknown-device list since the
// last save, in transactions of a few hundred rows, until done or ctx
// ends: what is left is written by the next save.
func (s *Store) SaveUnknowns(ctx context.Context, u *Unknowns) error {
	return s.saveChanges(ctx, "unknown_devices", u)
}

// unknownEntryRow is an unknown device's save state and row.
func unknownEntryRow(d *unknownEntry) (*persisted, any) { return &d.persisted, &d.UnknownDevice }

// LoadUnknowns reads the persisted unknown devices into u, skipping any
// registered since (they were adopted) and keeping the most recently heard
// ones up to the list's size; the rows of the others are deleted by the
// next save.
func (s *Store) LoadUnknowns(ctx context.Context, u *Unknowns) error {
	states, err := s.loadStates(ctx, "unknown_devices")
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	var loaded []*unknownEntry
	for e, b := range states {
		d := &unknownEntry{persisted: persisted{saved: true}}
		if _, registered := s.reg.Lookup(e); registered || json.Unmarshal(b, &d.UnknownDevice) != nil {
			u.changes.gone[e] = struct{}{}
			continue
		}
		d.DevEUI = e
		loaded = append(loaded, d)
	}
	sort.Slice(loaded, func(i, j int) bool { return loaded[i].LastSeen.After(loaded[j].LastSeen) })
	for _, d := range loaded {
		if _, dup := u.m[d.DevEUI]; dup {
			continue
		}
		if u.order.Len() >= u.max {
			u.changes.gone[d.DevEUI] = struct{}{}
			continue
		}
		d.elem = u.order.PushBack(d.DevEUI)
		u.m[d.DevEUI] = d
	}
	return nil
}
