package devices

import (
	"math/bits"
	"sort"
)

// Shared device health (registry.driver postgres, ARCHITECTURE §8).
// Instances on one shared subscription each handle a share of a device's
// uplinks, so none of them sees its frame-counter sequence whole. Loss is
// therefore computed from the union of the frame counters every instance
// heard, kept per device and hour as a set of 64-counter blocks: a union
// is a bitwise OR, which is exact, idempotent and order-free, so any
// instance can write its blocks and read the others' at any time, twice
// or late, and every instance ends at the same figures.

// maxFrameBlocks bounds one device-hour's set: 64 blocks of 64 counters.
// A LoRaWAN device may send at most about 1,000 frames an hour (1 % duty
// cycle); counters spread wider than that within one hour are made up, and
// the frames of blocks beyond the bound are counted in HealthShareStats.
const maxFrameBlocks = 64

// frameBlock holds frame counters idx*64 … idx*64+63 as bits.
type frameBlock struct {
	idx  uint32
	bits uint64
}

// frameSet is one hour's set of frame counters heard by any instance,
// with the figures derived from it.
type frameSet struct {
	blocks []frameBlock // sorted by idx
	count  uint32       // frames in the set
	lo, hi uint32       // lowest and highest counter, when count > 0
	inner  uint32       // counters missing between lo and hi, gaps of a reset left out
}

// add ORs bits into block idx and reports whether the set changed; ok is
// false when the set is full and idx is not in it.
func (f *frameSet) add(idx uint32, b uint64) (changed, ok bool) {
	i := sort.Search(len(f.blocks), func(i int) bool { return f.blocks[i].idx >= idx })
	if i < len(f.blocks) && f.blocks[i].idx == idx {
		if f.blocks[i].bits|b == f.blocks[i].bits {
			return false, true
		}
		f.blocks[i].bits |= b
		f.derive()
		return true, true
	}
	if len(f.blocks) >= maxFrameBlocks {
		return false, false
	}
	f.blocks = append(f.blocks, frameBlock{})
	copy(f.blocks[i+1:], f.blocks[i:])
	f.blocks[i] = frameBlock{idx: idx, bits: b}
	f.derive()
	return true, true
}

// addOne adds counter c, as an uplink does, and reports whether the set
// changed; ok is false when the set is full. A counter above or below
// the set, the usual case, updates the figures without a recount.
func (f *frameSet) addOne(c uint32) (changed, ok bool) {
	idx, bit := c/64, uint64(1)<<(c%64)
	i := sort.Search(len(f.blocks), func(i int) bool { return f.blocks[i].idx >= idx })
	switch {
	case i < len(f.blocks) && f.blocks[i].idx == idx:
		if f.blocks[i].bits&bit != 0 {
			return false, true
		}
		f.blocks[i].bits |= bit
	case len(f.blocks) >= maxFrameBlocks:
		return false, false
	default:
		f.blocks = append(f.blocks, frameBlock{})
		copy(f.blocks[i+1:], f.blocks[i:])
		f.blocks[i] = frameBlock{idx: idx, bits: bit}
	}
	switch {
	case f.count == 0:
		f.count, f.lo, f.hi = 1, c, c
	case c > f.hi:
		if gap := c - f.hi - 1; gap < maxFCntGap {
			f.inner += gap
		}
		f.count, f.hi = f.count+1, c
	case c < f.lo:
		if gap := f.lo - c - 1; gap < maxFCntGap {
			f.inner += gap
		}
		f.count, f.lo = f.count+1, c
	default:
		f.derive()
	}
	return true, true
}

func (f *frameSet) reset() { *f = frameSet{blocks: f.blocks[:0]} }

// derive recomputes count, lo, hi and inner. A gap of maxFCntGap or more
// between two counters heard in the hour is a counter reset, not loss, as
// in Health.Observe.
func (f *frameSet) derive() {
	f.count, f.inner = 0, 0
	first := true
	var prev uint32
	for _, b := range f.blocks {
		f.count += uint32(bits.OnesCount64(b.bits))
		for w := b.bits; w != 0; w &= w - 1 {
			c := b.idx*64 + uint32(bits.TrailingZeros64(w))
			if first {
				f.lo, first = c, false
			} else if gap := c - prev - 1; gap < maxFCntGap {
				f.inner += gap
			}
			prev = c
		}
	}
	f.hi = prev
}

// hourCounts are one hour's uplinks without a frame counter (which no set
// can deduplicate) and dead letters.
type hourCounts struct {
	noFCnt, dead uint32
}

// sharedHealth is what a device's health keeps beyond healthState when
// instances share it. Slot i belongs to the hour of healthState.Hours[i].
type sharedHealth struct {
	frames [hours]frameSet
	// counts are the shared table's totals as last read, pending this
	// instance's own not yet written to it (added there, never replaced,
	// since each instance counts only its share).
	counts, pending [hours]hourCounts
	// dirtySlots has bit i set when frames[i] changed since it was last
	// written.
	dirtySlots uint32
	dirty      bool // in Health.share.dirty
	saved      bool // rows of it may be in the shared tables
}

// slot returns the index of t's hour in st.Hours, recycling the slot of
// 24 hours earlier with its shared figures; -1 when t is older than the
// slot's hour.
func (st healthRef) slot(t int64) int {
	h := t / 3600
	i := int(((h % hours) + hours) % hours)
	b := &st.Hours[i]
	switch {
	case b.Hour == h:
	case b.Hour < h:
		*b = hourBucket{Hour: h}
		if sh := st.sh; sh != nil {
			sh.frames[i].reset()
			sh.counts[i], sh.pending[i] = hourCounts{}, hourCounts{}
			sh.dirtySlots &^= 1 << i
		}
	default:
		return -1
	}
	return i
}

// rederive sets the hour buckets' counts from the shared figures: uplinks
// are the frames of the union plus the uplinks without a counter; lost are
// the gaps inside each hour plus the gap from the previous heard hour's
// highest counter to the hour's lowest.
func (st healthRef) rederive() {
	sh := st.sh
	// The slots in hour order: an insertion sort of 24, without the
	// allocation sort.Slice makes on every uplink.
	var order [hours]int
	for i := range order {
		j := i
		for ; j > 0 && st.Hours[order[j-1]].Hour > st.Hours[i].Hour; j-- {
			order[j] = order[j-1]
		}
		order[j] = i
	}
	var prevHi uint32
	heard := false
	for _, i := range order {
		f, b := &sh.frames[i], &st.Hours[i]
		b.Uplinks = f.count + sh.counts[i].noFCnt + sh.pending[i].noFCnt
		b.DeadLetters = sh.counts[i].dead + sh.pending[i].dead
		b.Lost = 0
		if f.count == 0 {
			continue
		}
		b.Lost = f.inner
		if heard && f.lo > prevHi && f.lo-prevHi-1 < maxFCntGap {
			b.Lost += f.lo - prevHi - 1
		}
		prevHi, heard = f.hi, true
	}
}
