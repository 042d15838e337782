package httpapi

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/sensorgate/sensorgate/devices"
)

// Paging of the device lists (devices, device health, unknown devices).
// A list asked for with limit or cursor answers one page in DevEUI order
// with next_cursor, the EUI of the page's last device, to pass as cursor
// for the next page ("" on the last page). Since the cursor names a
// place in the order rather than a position, a device added or deleted
// meanwhile does not shift the pages: every device present throughout
// appears exactly once. Without limit and cursor a list answers whole,
// in the shape it always had.
const (
	// maxPageLimit bounds a page: 1000 devices are about 100 KiB of JSON.
	maxPageLimit = 1000
	// defaultPageLimit is the page size when only a cursor is given.
	defaultPageLimit = 100
	// maxQueryLen bounds the search text: names, models and tags are
	// short, and each byte costs a pass over every device.
	maxQueryLen = 256
)

// pageQuery is the paging part of a list request.
type pageQuery struct {
	// paged is set when limit or cursor was given (limit=0 asks for the
	// whole list, as with dead letters).
	paged  bool
	limit  int
	cursor devices.EUI
	search devices.Search
}

// parsePage reads limit, cursor and q. The cursor is opaque to clients;
// it is the 16 lower-case hex digits of the last EUI listed.
func parsePage(v url.Values) (pageQuery, error) {
	p := pageQuery{limit: defaultPageLimit}
	if s := v.Get("q"); len(s) > maxQueryLen {
		return p, fmt.Errorf("q is %d bytes: search with at most %d", len(s), maxQueryLen)
	} else {
		p.search = devices.Search(s)
	}
	// An empty cursor is the first page, so a client may always send one.
	if s := v.Get("cursor"); s != "" {
		c, err := parseCursor(s)
		if err != nil {
			return p, err
		}
		p.cursor, p.paged = c, true
	}
	if s, ok := v["limit"]; ok {
		n, err := strconv.Atoi(s[0])
		switch {
		case err != nil || n < 0 || n > maxPageLimit:
			return p, fmt.Errorf("limit=%.20q: give a page size from 1 to %d (0 or none for the whole list)", s[0], maxPageLimit)
		case n == 0 && p.paged:
			return p, fmt.Errorf("limit=0 asks for the whole list, which takes no cursor: give a page size from 1 to %d", maxPageLimit)
		case n == 0:
			return p, nil
		}
		p.limit, p.paged = n, true
	}
	return p, nil
}

// parseCursor reads a cursor as next_cursor gave it.
func parseCursor(s string) (devices.EUI, error) {
	var e devices.EUI
	if len(s) != 2*len(e) {
		return e, fmt.Errorf("cursor %.40q is not one this API gave: pass next_cursor of the previous page as it is, or leave cursor out for the first page", s)
	}
	if _, err := hex.Decode(e[:], []byte(s)); err != nil {
		return e, fmt.Errorf("cursor %q is not one this API gave: pass next_cursor of the previous page as it is, or leave cursor out for the first page", s)
	}
	return e, nil
}

// nextCursor is the cursor after last when more follow, "" otherwise.
func nextCursor(more bool, last devices.EUI) string {
	if !more {
		return ""
	}
	return last.String()
}

// healthPageBody is a page of GET /api/v1/device-health.
type healthPageBody struct {
	Devices []devices.DeviceHealth `json:"devices"`
	Count   int                    `json:"count"`
	Total   int                    `json:"total"`
	// Heard counts the devices heard from, Registered the registry;
	// Colours counts per colour over all of them (grey: registered,
	// never heard from), Silent the silent ones.
	Heard      int                    `json:"heard"`
	Registered int                    `json:"registered"`
	Colours    map[devices.Colour]int `json:"colours"`
	Silent     int                    `json:"silent"`
	Limit      int                    `json:"limit"`
	NextCursor string                 `json:"next_cursor"`
}

// healthPage answers a paged health listing. Grey devices (registered,
// never heard from) are paged from the registry; the others from health.
func (s *Server) healthPage(w http.ResponseWriter, pq pageQuery, colour devices.Colour, silent bool) {
	now := s.opt.Now()
	limit := pq.limit
	if colour == devices.Grey || silent && colour != "" && colour != devices.Red {
		limit = 0 // counts only: a never-heard device is not silent, a silent one is red
	}
	var match func(*devices.DeviceHealth) bool
	if colour != "" || silent || pq.search != "" {
		match = func(h *devices.DeviceHealth) bool {
			return (colour == "" || h.Colour == colour) && (!silent || h.Silent) && pq.search.MatchHealth(h)
		}
	}
	hp := s.opt.Health.Page(pq.cursor, limit, now, match)
	body := healthPageBody{
		Devices: nonNil(hp.Devices), Total: hp.Matched, Heard: hp.Heard,
		Colours: hp.Colours, Silent: hp.Silent, Limit: pq.limit,
	}
	body.Colours[devices.Grey] = 0
	more := hp.More
	if s.opt.Store != nil {
		body.Registered = s.opt.Store.Registry().Len() // not Store.Len: that waits for a change being written
		body.Colours[devices.Grey] = max(body.Registered-(hp.Heard-hp.Unregistered), 0)
		if colour == devices.Grey && !silent {
			dp := s.opt.Store.Page(pq.cursor, pq.limit, func(d *devices.Device) bool {
				return pq.search.Match(d) && !s.opt.Health.Heard(d.EUI)
			})
			body.Devices = make([]devices.DeviceHealth, 0, len(dp.Devices))
			for _, d := range dp.Devices {
				body.Devices = append(body.Devices, devices.DeviceHealth{DevEUI: d.EUI, Name: d.Name, Model: d.Model, Colour: devices.Grey})
			}
			body.Total, more = dp.Matched, dp.More
		}
	}
	body.Count = len(body.Devices)
	var last devices.EUI
	if n := len(body.Devices); n > 0 {
		last = body.Devices[n-1].DevEUI
	}
	body.NextCursor = nextCursor(more, last)
	writeJSON(w, http.StatusOK, body)
}
