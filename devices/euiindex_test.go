package devices

import (
	"math/rand/v2"
	"testing"
)

// TestEUIIndex: the index agrees with a map over growth, replaced values,
// keys that share their low bytes and keys it does not hold.
func TestEUIIndex(t *testing.T) {
	for _, n := range []int{0, 1, 7, 100, 5000} {
		r := rand.New(rand.NewPCG(uint64(n), 1))
		want := map[EUI]int32{}
		var x euiIndex
		if n > 0 {
			x = newEUIIndex(n / 2) // grows past its size
		}
		for i := range n {
			e := EUI{byte(i), byte(i >> 8), 0, 0, 0, 0, 0, byte(r.IntN(3) + 1)}
			if i%3 == 0 {
				e = EUI{0x70, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)} // differ in the last bytes only
			}
			want[e] = int32(i)
			x.set(e, int32(i))
		}
		for e, v := range want {
			x.set(e, v+1) // replaced, not added
			want[e] = v + 1
		}
		if x.len() != len(want) {
			t.Errorf("%d keys: len %d, want %d", n, x.len(), len(want))
		}
		for e, v := range want {
			if got, ok := x.get(e); !ok || got != v {
				t.Errorf("%d keys: %s = %d, %v; want %d", n, e, got, ok, v)
			}
		}
		for range 1000 {
			e := EUI{0xff, byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}
			if _, ok := x.get(e); ok {
				t.Errorf("%d keys: %s found, never added", n, e)
			}
		}
		for e := range want { // every other key deleted, the rest still found
			if want[e]%2 == 0 {
				x.del(e)
				delete(want, e)
			}
		}
		x.del(EUI{0xfe}) // not there: nothing changes
		if x.len() != len(want) {
			t.Errorf("%d keys after deletes: len %d, want %d", n, x.len(), len(want))
		}
		for e, v := range want {
			if got, ok := x.get(e); !ok || got != v {
				t.Errorf("%d keys after deletes: %s = %d, %v; want %d", n, e, got, ok, v)
			}
		}
		for i := range n {
			e := EUI{0x70, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)}
			if _, ok := x.get(e); ok != (want[e] != 0) {
				t.Errorf("%d keys after deletes: %s found %v", n, e, ok)
			}
		}
		if len(x.slots) < 2*x.len() {
			t.Errorf("%d keys in %d slots: more than half full", x.len(), len(x.slots))
		}
	}
}

// TestEUIIndexChurn: random adds and deletes over a few keys, in a small
// index whose probe runs wrap around its end, agree with a map.
func TestEUIIndexChurn(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	want := map[EUI]int32{}
	var x euiIndex
	for i := range 200000 {
		e := EUI{1, byte(r.IntN(12))}
		if r.IntN(2) == 0 {
			x.set(e, int32(i))
			want[e] = int32(i)
		} else {
			x.del(e)
			delete(want, e)
		}
		for k := range 12 {
			e := EUI{1, byte(k)}
			got, ok := x.get(e)
			if v, in := want[e]; ok != in || got != v {
				t.Fatalf("op %d: %s = %d, %v; want %d, %v", i, e, got, ok, v, in)
			}
		}
	}
	if x.len() != len(want) || len(x.slots) > 64 {
		t.Errorf("len %d in %d slots; want %d", x.len(), len(x.slots), len(want))
	}
}
