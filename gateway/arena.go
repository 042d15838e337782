package gateway

import "sync"

// PointsCopier is implemented by a Sink whose Write is done with the
// points when it returns (it encodes or copies them). Handle then builds
// each uplink's points in reused memory instead of allocating them anew:
// the points, their fields and their tags were a third of the daemon's
// own garbage per message. Observers see the points only during Observe.
type PointsCopier interface {
	Sink
	CopiesPoints()
}

// arena holds the memory of one uplink's points for reuse. A nil arena
// allocates, as Points does for callers that keep the points.
type arena struct {
	pts    []Point
	fields []Field
	tags   []Tag
}

var arenas = sync.Pool{New: func() any { return new(arena) }}

// points returns an empty slice with room for n points.
func (a *arena) points(n int) []Point {
	if a == nil || cap(a.pts) < n {
		s := make([]Point, 0, n)
		if a != nil {
			a.pts = s
		}
		return s
	}
	return a.pts[:0]
}

// fieldSlice returns an empty slice with room for n fields, carved from
// a's memory; appending past n allocates rather than overwrite a
// neighbour.
func (a *arena) fieldSlice(n int) []Field {
	if a == nil {
		return make([]Field, 0, n)
	}
	if cap(a.fields)-len(a.fields) < n {
		a.fields = make([]Field, 0, max(2*cap(a.fields), n, 32))
	}
	l := len(a.fields)
	a.fields = a.fields[:l+n]
	return a.fields[l : l : l+n]
}

// tagSlice is fieldSlice for tags.
func (a *arena) tagSlice(n int) []Tag {
	if a == nil {
		return make([]Tag, 0, n)
	}
	if cap(a.tags)-len(a.tags) < n {
		a.tags = make([]Tag, 0, max(2*cap(a.tags), n, 32))
	}
	l := len(a.tags)
	a.tags = a.tags[:l+n]
	return a.tags[l : l : l+n]
}

// release clears a (so it keeps no strings alive) and returns it to the
// pool.
func (a *arena) release() {
	clear(a.pts[:cap(a.pts)]) // appended to by the caller, past len
	clear(a.fields)           // handed out up to len
	clear(a.tags)
	a.pts, a.fields, a.tags = a.pts[:0], a.fields[:0], a.tags[:0]
	arenas.Put(a)
}
