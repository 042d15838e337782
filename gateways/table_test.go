package gateways

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/devices"
)

var t0 = time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)

func eui(i int) devices.EUI {
	return devices.EUI{0xb8, 0x27, 0xeb, 0xff, 0xfe, 0, byte(i >> 8), byte(i)}
}

// TestTableHealth: last seen, the measured interval, silence after
// SilentFactor intervals, the latest counts; a configured gateway never
// heard from has no last seen and is not silent.
func TestTableHealth(t *testing.T) {
	tb := NewTable(10)
	tb.Configure([]Gateway{{ID: eui(1), Name: "roof", Tags: map[string]string{"site": "townhall"}}, {ID: eui(2), Name: "depot"}})
	for i := range 4 {
		tb.Observe(Observation{ID: eui(1), Source: "br", Seen: t0.Add(time.Duration(i) * 60 * time.Second), RxReceived: uint64(10 + i), RxOK: 9})
	}
	// A late message is counted but changes nothing else.
	tb.Observe(Observation{ID: eui(1), Source: "br", Seen: t0, RxReceived: 1})
	h, ok := tb.Get(eui(1), t0.Add(3*time.Minute+10*time.Second))
	if !ok || h.Name != "roof" || h.Tags["site"] != "townhall" || !h.Configured || h.Interval != 60 || h.Silent ||
		h.RxReceived != 13 || h.Stats != 5 || !h.LastSeen.Equal(t0.Add(3*time.Minute)) || !h.FirstSeen.Equal(t0) {
		t.Fatalf("health %+v", h)
	}
	if h, _ := tb.Get(eui(1), t0.Add(3*time.Minute+181*time.Second)); !h.Silent {
		t.Fatalf("not silent after 3 intervals: %+v", h)
	}
	if h, _ := tb.Get(eui(2), t0); h.LastSeen != nil || h.Silent || h.Interval != DefaultStatsInterval.Seconds() {
		t.Fatalf("never heard: %+v", h)
	}
	// One message: the configured interval until a second one.
	tb.StatsInterval = 10 * time.Second
	tb.Observe(Observation{ID: eui(3), Seen: t0})
	if h, _ := tb.Get(eui(3), t0.Add(31*time.Second)); h.Interval != 10 || !h.Silent || h.Configured {
		t.Fatalf("one message: %+v", h)
	}
}

// TestTableBounded: gateways heard but not configured are kept up to the
// limit, the least recently heard evicted and counted; configured ones
// are never evicted.
func TestTableBounded(t *testing.T) {
	tb := NewTable(100)
	tb.Configure([]Gateway{{ID: eui(0), Name: "kept"}})
	tb.Observe(Observation{ID: eui(0), Seen: t0})
	for i := 1; i <= 10000; i++ {
		tb.Observe(Observation{ID: eui(i), Seen: t0.Add(time.Duration(i) * time.Second)})
	}
	n, limit, evicted, _ := tb.Stats(t0)
	if n != 101 || limit != 100 || evicted != 9900 {
		t.Fatalf("entries %d, limit %d, evicted %d; want 101, 100, 9900", n, limit, evicted)
	}
	if _, ok := tb.Get(eui(0), t0); !ok {
		t.Fatal("a configured gateway was evicted")
	}
	if _, ok := tb.Get(eui(9901), t0); !ok {
		t.Fatal("a recent gateway was evicted")
	}
	if _, ok := tb.Get(eui(9900), t0); ok {
		t.Fatal("an old gateway was kept")
	}
}

// TestTablePage: pages in EUI order, each gateway once; q searches name,
// EUI, source and tags.
func TestTablePage(t *testing.T) {
	tb := NewTable(0)
	tb.Configure([]Gateway{{ID: eui(5), Name: "harbour-mast", Tags: map[string]string{"district": "south"}}})
	for _, i := range []int{9, 1, 5, 7, 3} {
		tb.Observe(Observation{ID: eui(i), Source: "bridge", Seen: t0})
	}
	var got []string
	var cursor devices.EUI
	for {
		p := tb.Page(cursor, 2, t0, "")
		for _, h := range p.Gateways {
			got = append(got, h.ID.String()[14:])
		}
		if p.Total != 5 || !p.More {
			if p.More {
				t.Fatalf("page %+v", p)
			}
			break
		}
		cursor = p.Gateways[len(p.Gateways)-1].ID
	}
	if strings.Join(got, ",") != "01,03,05,07,09" {
		t.Fatalf("pages %v", got)
	}
	for q, want := range map[string]int{"HARBOUR": 1, "south": 1, "fe0000": 5, "bridge": 5, "nothing": 0} {
		if p := tb.Page(devices.EUI{}, 0, t0, devices.Search(q)); p.Matched != want || len(p.Gateways) != want {
			t.Errorf("q=%s: %d matched, want %d", q, p.Matched, want)
		}
	}
}

// TestStore: the file's entries, the API's changes on top saved to the
// state file and back after a restart, a deleted file entry staying
// deleted; a bad file is refused with the entry named.
func TestStore(t *testing.T) {
	dir := t.TempDir()
	file, state := filepath.Join(dir, "gateways.yaml"), filepath.Join(dir, "state.yaml")
	if err := os.WriteFile(file, []byte("gateways:\n  - {id: b827ebfffe000001, name: roof, tags: {site: townhall}}\n  - {id: B827EBFFFE000002, name: depot}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tb := NewTable(0)
	s, err := Open(tb, file, state)
	if err != nil {
		t.Fatal(err)
	}
	if created, err := s.Set(Gateway{ID: eui(3), Name: "mast", Tags: map[string]string{"site": "harbour"}}); err != nil || !created {
		t.Fatalf("Set: created %v, %v", created, err)
	}
	if created, err := s.Set(Gateway{ID: eui(1), Name: "roof-2"}); err != nil || created {
		t.Fatalf("Set over the file's: created %v, %v", created, err)
	}
	if ok, err := s.Delete(eui(2)); err != nil || !ok {
		t.Fatalf("Delete: %v %v", ok, err)
	}
	if ok, _ := s.Delete(eui(2)); ok {
		t.Fatal("deleted twice")
	}
	check := func(tb *Table) {
		t.Helper()
		var got []string
		for _, g := range tb.Configured() {
			got = append(got, fmt.Sprintf("%s=%s%v", g.ID.String()[14:], g.Name, g.Tags))
		}
		if strings.Join(got, " ") != "01=roof-2map[] 03=mastmap[site:harbour]" {
			t.Fatalf("configured %v", got)
		}
	}
	check(tb)
	tb2 := NewTable(0)
	if _, err := Open(tb2, file, state); err != nil {
		t.Fatal(err)
	}
	check(tb2)

	for body, want := range map[string]string{
		"- {id: b827ebfffe000001}\n- {id: b827ebfffe000001}\n": "entry 2: gateway b827ebfffe000001 is listed twice",
		"- {name: x}\n": "entry 1: id missing",
		"- {id: b827ebfffe000001, tags: {site: \"a\\x01b\"}}\n":              "control character",
		"- {id: b827ebfffe000001, name: " + strings.Repeat("n", 200) + "}\n": "at most 128",
		"- {id: nope}\n": "invalid EUI",
	} {
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadFile(file); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", body, err, want)
		}
	}
	if err := Check(Gateway{ID: eui(1), Tags: map[string]string{"": "x"}}); err == nil {
		t.Error("empty tag key accepted")
	}
}
