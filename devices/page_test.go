package devices

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestPageAfterReopen: a store opened on an existing file lists its
// devices in DevEUI order (the listing is published on load, not only on
// a change).
func TestPageAfterReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), StoreFileName)
	ctx := context.Background()
	s, err := OpenStore(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := s.Page(EUI{}, 10, nil); len(p.Devices) != 0 || p.Registered != 0 || p.More {
		t.Fatalf("empty store: %+v", p)
	}
	devs := []Device{{EUI: EUI{3}, Name: "a"}, {EUI: EUI{1}, Name: "c"}, {EUI: EUI{2}, Name: "b"}}
	if _, _, err := s.Upsert(ctx, devs); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = OpenStore(ctx, path, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := s.Page(EUI{}, 2, nil)
	if len(p.Devices) != 2 || p.Devices[0].Name != "c" || p.Devices[1].Name != "b" || !p.More || p.Registered != 3 {
		t.Fatalf("first page: %+v", p)
	}
	p = s.Page(p.Devices[1].EUI, 2, nil)
	if len(p.Devices) != 1 || p.Devices[0].Name != "a" || p.More {
		t.Fatalf("last page: %+v", p)
	}
}

// TestHealthPageFollowsMembership: a device forgotten or newly heard
// from leaves or joins the next listing (the sorted cache is dropped).
func TestHealthPageFollowsMembership(t *testing.T) {
	h := NewHealth(3)
	now := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	for _, e := range []EUI{{2}, {1}} {
		h.Observe(Observation{EUI: e, Time: now})
	}
	if p := h.Page(EUI{}, 10, now, nil); len(p.Devices) != 2 || p.Devices[0].DevEUI != (EUI{1}) || p.Colours[Green] != 2 {
		t.Fatalf("two devices: %+v", p)
	}
	h.Forget(EUI{1})
	h.Observe(Observation{EUI: EUI{3}, Time: now})
	p := h.Page(EUI{}, 10, now, nil)
	if len(p.Devices) != 2 || p.Devices[0].DevEUI != (EUI{2}) || p.Devices[1].DevEUI != (EUI{3}) || p.Heard != 2 {
		t.Fatalf("after forget and a new one: %+v", p)
	}
}
