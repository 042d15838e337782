package devices

import (
	"bytes"
	"encoding/hex"
	"maps"
	"slices"
	"sort"
	"time"
)

// CompareEUI orders EUIs as their hex text sorts, the order of every
// paged listing.
func CompareEUI(a, b EUI) int { return bytes.Compare(a[:], b[:]) }

// firstAfter returns the index of the first EUI in order above e.
func firstAfter(order []EUI, e EUI) int {
	return sort.Search(len(order), func(i int) bool { return CompareEUI(order[i], e) > 0 })
}

// DevicePage is one page of a device listing in DevEUI order.
type DevicePage struct {
	Devices []Device
	// Matched counts the devices that match the filter in the whole
	// registry (all of them without one), Registered the registry.
	Matched, Registered int
	// More is set when devices that match follow the page: the next page
	// starts after the last one's EUI.
	More bool
}

// Page returns up to limit devices (limit > 0) that match (nil: all) with
// an EUI above cursor (the zero EUI: from the start), in DevEUI order. It
// reads the registry's current set, which a change replaces rather than
// modifies: a change made meanwhile shows on the next page, and a device
// present throughout a paging appears exactly once. Only the page's
// devices are copied. match must not modify or keep the device.
func (s *Store) Page(cursor EUI, limit int, match func(*Device) bool) DevicePage {
	set := s.reg.set()
	if set == nil {
		return DevicePage{}
	}
	order := set.order
	p := DevicePage{Registered: len(order)}
	start := sort.Search(len(order), func(i int) bool { return CompareEUI(set.at(order[i]).EUI, cursor) > 0 })
	if match == nil {
		p.Matched = len(order)
		end := min(start+limit, len(order))
		p.Devices = make([]Device, 0, end-start)
		for _, i := range order[start:end] {
			p.Devices = append(p.Devices, *set.at(i))
		}
		p.More = end < len(order)
		return p
	}
	// The whole set is walked to count the matches; a device is copied
	// only onto the page.
	for k, i := range order {
		d := set.at(i)
		if !match(d) {
			continue
		}
		p.Matched++
		switch {
		case k < start:
		case len(p.Devices) < limit:
			p.Devices = append(p.Devices, *d)
		default:
			p.More = true
		}
	}
	return p
}

// Search is a case-insensitive (for ASCII letters) substring query over a
// device's name, DevEUI, model and tags (keys and values). The empty
// query matches every device.
type Search string

// Match reports whether d matches the query.
func (q Search) Match(d *Device) bool {
	s := string(q)
	if s == "" {
		return true
	}
	if containsFold(d.Name, s) || containsFold(d.Model, s) || q.matchEUI(d.EUI) {
		return true
	}
	for k, v := range d.Tags {
		if containsFold(k, s) || containsFold(v, s) {
			return true
		}
	}
	return false
}

// matchEUI matches the EUI's lower-case hex text without allocating it.
func (q Search) matchEUI(e EUI) bool {
	if len(q) > 16 {
		return false
	}
	var buf [16]byte
	hex.Encode(buf[:], e[:])
	return containsFold(buf[:], string(q))
}

// containsFold reports whether sub occurs in s, ASCII letters compared
// without case, without allocating.
func containsFold[T ~string | ~[]byte](s T, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for j < n && lowerASCII(s[i+j]) == lowerASCII(sub[j]) {
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Colour sums a device's health up as the status page shows it.
type Colour string

// The colours: red when silent or losing 20 % of its frames; amber when
// late by more than half an interval, losing 5 %, or with dead letters
// today; green otherwise. Grey is a registered device never heard from.
const (
	Green Colour = "green"
	Amber Colour = "amber"
	Red   Colour = "red"
	Grey  Colour = "grey"
)

// ParseColour reads a colour name.
func ParseColour(s string) (Colour, bool) {
	switch c := Colour(s); c {
	case Green, Amber, Red, Grey:
		return c, true
	}
	return "", false
}

func colourOf(r *DeviceHealth) Colour {
	late := r.Interval > 0 && r.LastSeenAge > 1.5*r.Interval
	switch {
	case r.Silent || r.LossPct >= 20:
		return Red
	case late || r.LossPct >= 5 || r.DeadLetters24h > 0:
		return Amber
	}
	return Green
}

// healthEntry is a tracked device in Health.sorted; slot is its
// record's, so a listing reads it without a lookup.
type healthEntry struct {
	eui  EUI
	slot int32
}

// HealthPage is one page of the health listing in DevEUI order, with the
// counts of every heard device.
type HealthPage struct {
	Devices []DeviceHealth
	// Matched counts the heard devices that match the filter; Heard all
	// of them; Colours and Silent count them per colour (without grey)
	// and silent.
	Matched, Heard int
	Colours        map[Colour]int
	Silent         int
	// Unregistered counts the heard devices missing from the registry.
	Unregistered int
	More         bool
}

// Page returns up to limit (> 0) heard devices that match (nil: all)
// with an EUI above cursor, in DevEUI order, reported at now. The match
// sees a report without hourly counts and optional readings. Every
// device is summed up for the counts without allocating; only the page's
// devices get a full report.
func (h *Health) Page(cursor EUI, limit int, now time.Time, match func(*DeviceHealth) bool) HealthPage {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sorted == nil {
		h.sorted = make([]healthEntry, 0, len(h.m))
		for e, i := range h.m {
			h.sorted = append(h.sorted, healthEntry{e, i})
		}
		slices.SortFunc(h.sorted, func(a, b healthEntry) int { return CompareEUI(a.eui, b.eui) })
	}
	p := HealthPage{Heard: len(h.sorted), Colours: map[Colour]int{Green: 0, Amber: 0, Red: 0}}
	start := sort.Search(len(h.sorted), func(i int) bool { return CompareEUI(h.sorted[i].eui, cursor) > 0 })
	var r DeviceHealth // one for all: match may keep its pointer
	for i, he := range h.sorted {
		e, st := he.eui, h.table.at(he.slot)
		r = h.summary(e, st, now, false)
		p.Colours[r.Colour]++
		if r.Silent {
			p.Silent++
		}
		if st.unknown != nil {
			p.Unregistered++
		}
		if match != nil && !match(&r) {
			continue
		}
		p.Matched++
		switch {
		case i < start:
		case len(p.Devices) < limit:
			p.Devices = append(p.Devices, h.report(e, st, now))
		default:
			p.More = true
		}
	}
	return p
}

// Heard reports whether the device was ever heard from (is tracked).
func (h *Health) Heard(eui EUI) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.m[eui]
	return ok
}

// UnknownPage is one page of the unknown devices in DevEUI order.
type UnknownPage struct {
	Devices         []UnknownDevice
	Matched, Listed int
	// Accepted counts the listed devices whose uplinks are written.
	Accepted int
	More     bool
}

// Page returns up to limit (> 0) unknown devices that match (nil: all)
// with an EUI above cursor, in DevEUI order. The list is bounded (SetMax),
// so sorting its EUIs per call is cheap.
func (u *Unknowns) Page(cursor EUI, limit int, match func(*UnknownDevice) bool) UnknownPage {
	u.mu.Lock()
	defer u.mu.Unlock()
	order := slices.SortedFunc(maps.Keys(u.m), CompareEUI)
	p := UnknownPage{Listed: len(order)}
	start := firstAfter(order, cursor)
	for i, e := range order {
		d := &u.m[e].UnknownDevice
		if d.Accepted {
			p.Accepted++
		}
		if match != nil && !match(d) {
			continue
		}
		p.Matched++
		switch {
		case i < start:
		case len(p.Devices) < limit:
			p.Devices = append(p.Devices, clonedUnknown(d))
		default:
			p.More = true
		}
	}
	return p
}

// MatchHealth matches a health report's name, DevEUI, model and source.
func (q Search) MatchHealth(r *DeviceHealth) bool {
	s := string(q)
	return s == "" || containsFold(r.Name, s) || containsFold(r.Model, s) || containsFold(r.Source, s) || q.matchEUI(r.DevEUI)
}

// MatchUnknown matches an unknown device's DevEUI, name, profile and
// source.
func (q Search) MatchUnknown(d *UnknownDevice) bool {
	s := string(q)
	return s == "" || containsFold(d.Name, s) || containsFold(d.Profile, s) || containsFold(d.Source, s) || q.matchEUI(d.DevEUI)
}
