package devices

import "hash/maphash"

// euiIndex maps EUIs to int32s (a device's index or slot): open
// addressing with linear probing, each key beside its value in one
// 16-byte slot, at most half full. A Go map of 100,000 EUIs costs an
// uplink two cache misses per lookup (the group's control word, then the
// slot), and the pipeline looks a device up in two of them; here a lookup
// usually reads one line. The hash is seeded per index (maphash), so EUIs
// chosen to collide cannot be precomputed. The zero EUI is no key (it is
// the empty slot): callers refuse it before.
type euiIndex struct {
	seed  maphash.Seed
	slots []euiSlot
	n     int
}

type euiSlot struct {
	eui EUI
	v   int32
	_   [4]byte // a slot never straddles a cache line
}

// newEUIIndex returns an index sized for n keys.
func newEUIIndex(n int) euiIndex {
	size := 16
	for size < 2*n {
		size *= 2
	}
	return euiIndex{seed: maphash.MakeSeed(), slots: make([]euiSlot, size)}
}

func (x *euiIndex) home(e EUI) int {
	return int(maphash.Comparable(x.seed, e) & uint64(len(x.slots)-1))
}

// get returns e's value.
func (x *euiIndex) get(e EUI) (int32, bool) {
	if x.n == 0 {
		return 0, false
	}
	mask := len(x.slots) - 1
	for i := x.home(e); ; i = (i + 1) & mask {
		s := &x.slots[i]
		switch s.eui {
		case e:
			return s.v, true
		case EUI{}:
			return 0, false
		}
	}
}

// set adds e or replaces its value; e must not be zero.
func (x *euiIndex) set(e EUI, v int32) {
	if 2*(x.n+1) > len(x.slots) {
		x.grow()
	}
	mask := len(x.slots) - 1
	for i := x.home(e); ; i = (i + 1) & mask {
		s := &x.slots[i]
		switch s.eui {
		case e:
			s.v = v
			return
		case EUI{}:
			s.eui, s.v = e, v
			x.n++
			return
		}
	}
}

func (x *euiIndex) grow() {
	old := x.slots
	*x = newEUIIndex(max(2*x.n, 8))
	for _, s := range old {
		if s.eui != (EUI{}) {
			x.set(s.eui, s.v)
		}
	}
}

// del removes e, moving later keys of its probe run back so that no
// lookup stops at the emptied slot too early (no tombstones).
func (x *euiIndex) del(e EUI) {
	if x.n == 0 {
		return
	}
	mask := len(x.slots) - 1
	i := x.home(e)
	for ; x.slots[i].eui != e; i = (i + 1) & mask {
		if x.slots[i].eui == (EUI{}) {
			return
		}
	}
	x.n--
	for j := (i + 1) & mask; x.slots[j].eui != (EUI{}); j = (j + 1) & mask {
		// The key at j may move to the hole at i unless its home lies
		// cyclically in (i, j].
		if h := x.home(x.slots[j].eui); (j-h)&mask >= (j-i)&mask {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = euiSlot{}
}

// len is how many keys the index holds.
func (x *euiIndex) len() int { return x.n }
