package gateway

import "sync"

// arena holds the memory of one uplink's points for reuse: Handle builds
// each uplink's points in it rather than allocating them anew (the
// points, their fields and their tags were a third of the daemon's own
// garbage per message), which the Sink's rule that Write does not retain
// the points allows. A nil arena allocates, as Points does for callers
// that keep the points.
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
// a's memory (nil a: allocated).
func (a *arena) fieldSlice(n int) []Field {
	if a == nil {
		return make([]Field, 0, n)
	}
	return carve(&a.fields, n)
}

// tagSlice is fieldSlice for tags.
func (a *arena) tagSlice(n int) []Tag {
	if a == nil {
		return make([]Tag, 0, n)
	}
	return carve(&a.tags, n)
}

// carve takes room for n elements off the end of *buf, starting a larger
// buffer when it has too little (the old one stays with the slices cut
// from it). The slice is capped at n, so appending past n allocates
// rather than overwrite the next one.
func carve[T any](buf *[]T, n int) []T {
	if cap(*buf)-len(*buf) < n {
		*buf = make([]T, 0, max(2*cap(*buf), n, 32))
	}
	l := len(*buf)
	*buf = (*buf)[:l+n]
	return (*buf)[l : l : l+n]
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
