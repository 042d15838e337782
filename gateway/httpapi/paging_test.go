package httpapi

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/devices"
)

// fleetEUI is device i of a test fleet; prefix keeps fleets apart.
func fleetEUI(prefix byte, i int) devices.EUI {
	var e devices.EUI
	e[0] = prefix
	binary.BigEndian.PutUint32(e[4:], uint32(i)+1)
	return e
}

// seedFleet registers n devices in one import, as a bulk import does.
func seedFleet(tb testing.TB, f *fixture, n int) {
	tb.Helper()
	devs := make([]devices.Device, n)
	for i := range devs {
		devs[i] = devices.Device{EUI: fleetEUI(0x10, i), Name: fmt.Sprintf("bin-%06d", i), Model: "cayenne-lpp",
			Tags: map[string]string{"site": fmt.Sprintf("site-%d", i%50)}}
	}
	if _, _, err := f.store.Upsert(context.Background(), devs); err != nil {
		tb.Fatal(err)
	}
}

// page is what a paged list answers, whatever its items.
type page struct {
	Devices []struct {
		DevEUI string         `json:"dev_eui"`
		Name   string         `json:"name"`
		Colour devices.Colour `json:"colour"`
	} `json:"devices"`
	Count      int                    `json:"count"`
	Total      int                    `json:"total"`
	Registered int                    `json:"registered"`
	Heard      int                    `json:"heard"`
	Colours    map[devices.Colour]int `json:"colours"`
	Silent     int                    `json:"silent"`
	NextCursor string                 `json:"next_cursor"`
}

func (f *fixture) page(t *testing.T, path string) page {
	t.Helper()
	rec := f.do(t, "GET", path, "Bearer "+token, "", nil)
	if rec.Code != 200 {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	var p page
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return p
}

// TestDevicePagingUnderChurn pages through 20,000 devices while others
// are added and deleted: every device present throughout comes exactly
// once, in DevEUI order; one deleted before its page came does not come,
// one added ahead of the cursor does; nothing comes that never existed.
// Between pages the test changes the registry itself (so what must come
// is known) while a goroutine keeps replacing devices concurrently.
func TestDevicePagingUnderChurn(t *testing.T) {
	f := newFixture(t)
	// Twenty pages of 1000 exercise the cursor as a hundred would; the
	// 100,000-device scale is BenchmarkListDevices100k's, where it costs
	// time, not here, where the race detector makes the import minutes.
	const n = 20_000
	start := time.Now()
	seedFleet(t, f, n)
	t.Logf("%d devices imported in %v", n, time.Since(start))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	// The goroutine deletes fleet devices 3, 10, 17, … and adds devices
	// of prefix 0x30 (after the whole fleet).
	background := map[string]bool{}
	var bgMu sync.Mutex
	go func() {
		defer wg.Done()
		// A change rewrites the in-memory registry (about a second at
		// 100,000 devices on a busy box): a few overlap the paging.
		for i := 0; i < 5 && ctx.Err() == nil; i++ {
			del, add := fleetEUI(0x10, 3+7*i), fleetEUI(0x30, i)
			bgMu.Lock()
			background[del.String()], background[add.String()] = true, true
			bgMu.Unlock()
			if err := f.store.Delete(ctx, del); err != nil && ctx.Err() == nil {
				t.Errorf("delete: %v", err)
				return
			}
			if err := f.store.Create(ctx, devices.Device{EUI: add, Name: fmt.Sprintf("bg-%d", i)}); err != nil && ctx.Err() == nil {
				t.Errorf("create: %v", err)
				return
			}
		}
	}()
	// Every 20th page the test deletes a device ahead of the cursor and
	// adds one ahead (fleet index n+k, sorting last in prefix 0x10) and
	// one behind (prefix 0x01, before the whole fleet).
	mustCome, mustNot := map[string]bool{}, map[string]bool{}
	seen := map[string]int{}
	var prev string
	cursor, pages := "", 0
	for {
		p := f.page(t, "/api/v1/devices?limit=1000&cursor="+cursor)
		pages++
		if p.Count != len(p.Devices) || p.Count > 1000 {
			t.Fatalf("page %d: count %d for %d devices", pages, p.Count, len(p.Devices))
		}
		for _, d := range p.Devices {
			if d.DevEUI <= prev {
				t.Fatalf("page %d: %s after %s: not in DevEUI order", pages, d.DevEUI, prev)
			}
			prev = d.DevEUI
			seen[d.DevEUI]++
		}
		if p.NextCursor == "" {
			break
		}
		if p.NextCursor != prev {
			t.Fatalf("next_cursor %q, last listed %q", p.NextCursor, prev)
		}
		cursor = p.NextCursor
		if k := pages; k%20 == 0 {
			ahead := fleetEUI(0x10, k*1000+500)
			if k*1000+500 < n && (k*1000+500-3)%7 != 0 {
				if err := f.store.Delete(ctx, ahead); err != nil {
					t.Fatal(err)
				}
				mustNot[ahead.String()] = true
			}
			added, behind := fleetEUI(0x10, n+k), fleetEUI(0x01, k)
			if _, _, err := f.store.Upsert(ctx, []devices.Device{{EUI: added, Name: fmt.Sprintf("ahead-%d", k)}, {EUI: behind, Name: fmt.Sprintf("behind-%d", k)}}); err != nil {
				t.Fatal(err)
			}
			mustCome[added.String()], mustNot[behind.String()] = true, true
		}
	}
	cancel()
	wg.Wait()
	t.Logf("%d pages while the goroutine changed %d devices", pages, len(background))
	for i := 0; i < n; i++ {
		e := fleetEUI(0x10, i).String()
		if c := seen[e]; !background[e] && !mustNot[e] && c != 1 {
			t.Fatalf("device %s present throughout listed %d times", e, c)
		}
	}
	for e := range mustCome {
		if seen[e] != 1 {
			t.Fatalf("device %s added ahead of the cursor listed %d times", e, seen[e])
		}
	}
	for e := range mustNot {
		if seen[e] != 0 {
			t.Fatalf("device %s (deleted ahead of the cursor, or added behind it) listed", e)
		}
	}
	existed := make(map[string]bool, n)
	for i := 0; i < n; i++ {
		existed[fleetEUI(0x10, i).String()] = true
	}
	for e, c := range seen {
		if !existed[e] && !background[e] && !mustCome[e] || c != 1 {
			t.Fatalf("listed %s %d times, a device that never existed", e, c)
		}
	}
}

func TestDeviceSearchAndCounts(t *testing.T) {
	f := newFixture(t)
	seedFleet(t, f, 2000)
	for _, tc := range []struct {
		name, query string
		total       int
		first       string
	}{
		{"by name", "q=bin-001234", 1, fleetEUI(0x10, 1234).String()},
		{"name, other case", "q=BIN-001234", 1, fleetEUI(0x10, 1234).String()},
		{"by DevEUI", "q=" + fleetEUI(0x10, 77).String(), 1, fleetEUI(0x10, 77).String()},
		{"by DevEUI, upper case", "q=" + strings.ToUpper(fleetEUI(0x10, 77).String()), 1, fleetEUI(0x10, 77).String()},
		{"by tag value", "q=site-49", 40, fleetEUI(0x10, 49).String()},
		{"by model, with a filter", "q=lpp&model=cayenne-lpp", 2000, fleetEUI(0x10, 0).String()},
		{"no match", "q=nothing-like-it", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := f.page(t, "/api/v1/devices?limit=10&"+tc.query)
			if p.Total != tc.total || p.Registered != 2000 || p.Count != min(tc.total, 10) {
				t.Fatalf("total %d registered %d count %d, want %d 2000 %d", p.Total, p.Registered, p.Count, tc.total, min(tc.total, 10))
			}
			if tc.first != "" && p.Devices[0].DevEUI != tc.first {
				t.Fatalf("first %s, want %s", p.Devices[0].DevEUI, tc.first)
			}
			if (p.NextCursor != "") != (tc.total > 10) {
				t.Fatalf("next_cursor %q with %d matches on a page of 10", p.NextCursor, tc.total)
			}
		})
	}
	// Without limit and cursor, or with limit=0, the list is whole, in
	// the shape it had; q filters it too.
	for path, count := range map[string]string{"/api/v1/devices": "2000", "/api/v1/devices?limit=0": "2000", "/api/v1/devices?q=bin-00123": "10"} {
		rec := f.do(t, "GET", path, "Bearer "+token, "", nil)
		var whole map[string]json.RawMessage
		if err := json.Unmarshal(rec.Body.Bytes(), &whole); err != nil || len(whole) != 2 || string(whole["count"]) != count {
			t.Fatalf("%s: %d keys, count %s, want %s (%v)", path, len(whole), whole["count"], count, err)
		}
	}
}

func TestPagingRefusals(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("x", maxQueryLen+1)
	for _, path := range []string{"/api/v1/devices", "/api/v1/device-health", "/api/v1/unknown-devices"} {
		for _, tc := range []struct{ query, want string }{
			{"limit=1001", "from 1 to 1000"},
			{"limit=-1", "from 1 to 1000"},
			{"limit=ten", "from 1 to 1000"},
			{"limit=99999999999999999999999", "from 1 to 1000"},
			{"limit=0&cursor=1000000000000001", "takes no cursor"},
			{"cursor=zz", "not one this API gave"},
			{"cursor=10000000000000011", "not one this API gave"},
			{"cursor=100000000000000g", "not one this API gave"},
			{"q=" + long, "at most 256"},
		} {
			rec := f.do(t, "GET", path+"?"+tc.query, "Bearer "+token, "", nil)
			if rec.Code != 400 || !strings.Contains(errorOf(t, rec), tc.want) {
				t.Errorf("%s?%.60s: %d %s, want 400 %q", path, tc.query, rec.Code, rec.Body, tc.want)
			}
		}
	}
	rec := f.do(t, "GET", "/api/v1/device-health?colour=purple", "Bearer "+token, "", nil)
	if rec.Code != 400 || !strings.Contains(errorOf(t, rec), "green, amber, red or grey") {
		t.Errorf("colour=purple: %d %s", rec.Code, rec.Body)
	}
	rec = f.do(t, "GET", "/api/v1/deadletters?cursor=x", "Bearer "+token, "", nil)
	if rec.Code != 400 || !strings.Contains(errorOf(t, rec), "next_cursor") {
		t.Errorf("dead letters cursor=x: %d %s", rec.Code, rec.Body)
	}
}

// TestHealthPaging: the counts per colour and silent cover every device
// while a page holds few; grey devices (registered, never heard from)
// page from the registry.
func TestHealthPaging(t *testing.T) {
	f := newFixture(t)
	seedFleet(t, f, 300)
	// Devices 0..99 report every 10 minutes up to now (green), 100..149
	// stopped 3 hours ago (silent: red); 150..299 were never heard from.
	for i := 0; i < 150; i++ {
		end := now
		if i >= 100 {
			end = now.Add(-3 * time.Hour)
		}
		for k := 3; k >= 0; k-- {
			f.health.Observe(devices.Observation{EUI: fleetEUI(0x10, i), Time: end.Add(-time.Duration(k) * 10 * time.Minute),
				Name: fmt.Sprintf("bin-%06d", i), FCnt: uint32(10 - k), HasFCnt: true})
		}
	}
	p := f.page(t, "/api/v1/device-health?limit=20")
	want := map[devices.Colour]int{devices.Green: 100, devices.Amber: 0, devices.Red: 50, devices.Grey: 150}
	if fmt.Sprint(p.Colours) != fmt.Sprint(want) || p.Silent != 50 || p.Heard != 150 || p.Registered != 300 || p.Total != 150 || p.Count != 20 {
		t.Fatalf("counts: colours %v silent %d heard %d registered %d total %d count %d", p.Colours, p.Silent, p.Heard, p.Registered, p.Total, p.Count)
	}
	for _, tc := range []struct {
		query  string
		colour devices.Colour
		total  int
	}{
		{"silent=true", devices.Red, 50},
		{"colour=red", devices.Red, 50},
		{"colour=green", devices.Green, 100},
		{"colour=grey", devices.Grey, 150},
		{"colour=grey&q=bin-000299", devices.Grey, 1},
		{"colour=red&q=bin-000120", devices.Red, 1},
		{"colour=amber", "", 0},
	} {
		var got []string
		cursor := ""
		for {
			p := f.page(t, "/api/v1/device-health?limit=7&"+tc.query+"&cursor="+cursor)
			if p.Total != tc.total {
				t.Fatalf("%s: total %d, want %d", tc.query, p.Total, tc.total)
			}
			for _, d := range p.Devices {
				if d.Colour != tc.colour {
					t.Fatalf("%s: %s is %s", tc.query, d.DevEUI, d.Colour)
				}
				got = append(got, d.DevEUI)
			}
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		if len(got) != tc.total {
			t.Fatalf("%s: paged %d devices, want %d", tc.query, len(got), tc.total)
		}
	}
}

func TestUnknownPaging(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 25; i++ {
		f.unknowns.Observe(devices.UnknownObservation{EUI: fleetEUI(0x20, i), Time: now, Source: "cs", Name: fmt.Sprintf("ns-%02d", i), Accepted: i%5 == 0})
	}
	var got []string
	cursor := ""
	for {
		p := f.page(t, "/api/v1/unknown-devices?limit=10&cursor="+url.QueryEscape(cursor))
		if p.Total != 25 {
			t.Fatalf("total %d", p.Total)
		}
		for _, d := range p.Devices {
			got = append(got, d.DevEUI)
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if len(got) != 25 || got[0] != fleetEUI(0x20, 0).String() || got[24] != fleetEUI(0x20, 24).String() {
		t.Fatalf("paged %d: %v", len(got), got)
	}
	rec := f.do(t, "GET", "/api/v1/unknown-devices?limit=5&q=NS-07", "Bearer "+token, "", nil)
	var p struct {
		Total, Listed, Accepted int
		Devices                 []devices.UnknownDevice
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Total != 1 || p.Listed != 25 || p.Accepted != 5 || p.Devices[0].Name != "ns-07" {
		t.Fatalf("search: %s (%v)", rec.Body, err)
	}
}
