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
