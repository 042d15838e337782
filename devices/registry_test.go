package devices

import (
	"strings"
	"testing"
)

func TestRegistry(t *testing.T) {
	a, b := mustParse(t, "0101010101010101"), mustParse(t, "0202020202020202")
	r, err := NewRegistry([]Device{{EUI: a, Name: "alpha"}, {EUI: b}})
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := r.Lookup(a); !ok || d.Name != "alpha" {
		t.Fatalf("Lookup(a) = %+v %v", d, ok)
	}
	if d, ok := r.LookupName("0202020202020202"); !ok || d.EUI != b {
		t.Fatalf("a device without a name is named by its EUI: %+v %v", d, ok)
	}
	if r.Len() != 2 {
		t.Fatalf("Len = %d", r.Len())
	}
	for name, devs := range map[string][]Device{
		"duplicate EUI":  {{EUI: a, Name: "x"}, {EUI: a, Name: "y"}},
		"duplicate name": {{EUI: a, Name: "x"}, {EUI: b, Name: "x"}},
		"no EUI":         {{Name: "x"}},
	} {
		if err := r.Replace(devs); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	// A failed Replace leaves the registry as it was.
	if d, ok := r.Lookup(a); !ok || d.Name != "alpha" {
		t.Fatalf("failed Replace changed the registry: %+v", d)
	}
	if err := r.Replace(nil); err != nil || r.Len() != 0 {
		t.Fatalf("Replace(nil): %v, len %d", err, r.Len())
	}
	if _, err := NewRegistry([]Device{{EUI: a, Name: "x"}, {EUI: a, Name: "y"}}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("err = %v", err)
	}
}

// TestRegistryRef: a Ref names the device, the registry state it came
// from and a distinct index below that state's Len, by EUI and by name;
// a Replace is a new generation.
func TestRegistryRef(t *testing.T) {
	a, b := mustParse(t, "0101010101010101"), mustParse(t, "0202020202020202")
	r, err := NewRegistry([]Device{{EUI: b, Name: "beta"}, {EUI: a, Name: "alpha"}})
	if err != nil {
		t.Fatal(err)
	}
	ra, ok := r.Ref(a)
	if !ok || ra.Device.Name != "alpha" || ra.Len != 2 || ra.Gen != r.Generation() {
		t.Fatalf("Ref(a) = %+v %v (generation %d)", ra, ok, r.Generation())
	}
	rb, ok := r.RefName("beta")
	if !ok || rb.Device.EUI != b || rb.Index == ra.Index || rb.Index < 0 || rb.Index >= rb.Len || ra.Index < 0 || ra.Index >= ra.Len {
		t.Fatalf("RefName(beta) = %+v, Ref(a) = %+v", rb, ra)
	}
	if _, ok := r.Ref(mustParse(t, "0303030303030303")); ok {
		t.Fatal("Ref of an unregistered EUI")
	}
	if _, ok := r.RefName("gamma"); ok {
		t.Fatal("RefName of an unregistered name")
	}
	if err := r.Replace([]Device{{EUI: a, Name: "alpha"}}); err != nil {
		t.Fatal(err)
	}
	if ra2, ok := r.Ref(a); !ok || ra2.Gen == ra.Gen || ra2.Len != 1 || ra2.Index != 0 {
		t.Fatalf("after Replace: Ref(a) = %+v, before %+v", ra2, ra)
	}
}
