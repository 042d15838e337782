package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

// seedHeardFleet registers n devices (seedFleet) and has every one heard
// twice, ten minutes apart: every tenth last heard three hours ago, so
// silent (red), the others now.
func seedHeardFleet(tb testing.TB, f *fixture, n int) {
	tb.Helper()
	seedFleet(tb, f, n)
	for i := 0; i < n; i++ {
		end := now
		if i%10 == 0 {
			end = now.Add(-3 * time.Hour)
		}
		for k := 1; k >= 0; k-- {
			f.health.Observe(devices.Observation{EUI: fleetEUI(0x10, i), Time: end.Add(-time.Duration(k) * 10 * time.Minute),
				Name: fmt.Sprintf("bin-%06d", i), FCnt: uint32(10 - k), HasFCnt: true})
		}
	}
}

// TestListTimesAt100kDevices serves every list endpoint the status page
// and an operator page through, against a real (SQLite) store holding
// 100,000 devices, all heard from, with 10,000 unknown devices (the
// tracker's bound) and 2,000 dead letters. It checks each answer (status,
// page size, totals) and logs the median and slowest of 7 requests per
// endpoint, handler and JSON encoding included (no socket): the
// numbers in BENCHMARKS.md. Times are reported, not asserted.
func TestListTimesAt100kDevices(t *testing.T) {
	f := newFixture(t)
	f.srv.opt.Status = func(context.Context) Status { return Status{} }
	const n = 100_000
	seedHeardFleet(t, f, n)
	for i := 0; i < devices.DefaultMaxUnknown; i++ {
		f.unknowns.Observe(devices.UnknownObservation{EUI: fleetEUI(0x20, i), Time: now, Source: "cs", Name: fmt.Sprintf("stray-%05d", i)})
	}
	ctx := context.Background()
	for i := 0; i < 2000; i++ {
		if err := f.dl.Put(ctx, gateway.DeadLetter{Time: now.Add(time.Duration(i) * time.Second), Source: "cs", Reason: gateway.ReasonDecode,
			DevEUI: fleetEUI(0x10, i).String(), Detail: "bad payload"}); err != nil {
			t.Fatal(err)
		}
	}
	cursor := fleetEUI(0x10, 98_999).String()
	for _, tc := range []struct {
		name, path string
		// items is the list's key and its length on the page; total the
		// "total" the answer must give (-1: none given).
		key          string
		items, total int
	}{
		{"devices, first page of 100", "/api/v1/devices?limit=100", "devices", 100, n},
		{"devices, page of 50 with health (status page)", "/api/v1/devices?limit=50&health=true", "devices", 50, n},
		{"devices, page of 100 near the end", "/api/v1/devices?limit=100&cursor=" + cursor, "devices", 100, n},
		{"devices, page of 1000", "/api/v1/devices?limit=1000", "devices", 1000, n},
		{"devices, search one by name", "/api/v1/devices?limit=50&health=true&q=bin-077777", "devices", 1, 1},
		{"devices, search by tag (2 %)", "/api/v1/devices?limit=100&q=site-7", "devices", 100, 2000},
		{"device health, first page of 100", "/api/v1/device-health?limit=100", "devices", 100, n},
		{"device health, silent, page of 100", "/api/v1/device-health?limit=100&silent=true", "devices", 100, n / 10},
		{"device health, grey (none)", "/api/v1/device-health?limit=100&colour=grey", "devices", 0, 0},
		{"device health, search one", "/api/v1/device-health?limit=100&q=bin-054321", "devices", 1, 1},
		{"unknown devices, page of 100 of 10,000", "/api/v1/unknown-devices?limit=100", "devices", 100, devices.DefaultMaxUnknown},
		{"unknown devices, search one", "/api/v1/unknown-devices?limit=100&q=stray-04321", "devices", 1, 1},
		{"dead letters, newest 50 of 2,000", "/api/v1/deadletters?order=newest&limit=50", "dead_letters", 50, -1},
		{"dead letters of one device", "/api/v1/deadletters?limit=50&dev_eui=" + fleetEUI(0x10, 1234).String(), "dead_letters", 1, -1},
		{"status (tile counts)", "/api/v1/status", "", 0, -1},
	} {
		const runs = 7
		times := make([]time.Duration, 0, runs)
		for range runs {
			start := time.Now()
			rec := f.do(t, "GET", tc.path, "Bearer "+token, "", nil)
			times = append(times, time.Since(start))
			if rec.Code != 200 {
				t.Fatalf("%s: %d %s", tc.path, rec.Code, rec.Body)
			}
			var body map[string]json.RawMessage
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("%s: %v", tc.path, err)
			}
			if tc.key != "" {
				var items []json.RawMessage
				if err := json.Unmarshal(body[tc.key], &items); err != nil || len(items) != tc.items {
					t.Fatalf("%s: %d %s, want %d (%v)", tc.path, len(items), tc.key, tc.items, err)
				}
			}
			if tc.total >= 0 {
				var total int
				if err := json.Unmarshal(body["total"], &total); err != nil || total != tc.total {
					t.Fatalf("%s: total %s, want %d", tc.path, body["total"], tc.total)
				}
			}
			if strings.HasPrefix(tc.path, "/api/v1/status") {
				var devs DeviceSummary
				if err := json.Unmarshal(body["devices"], &devs); err != nil || devs.Registered != n || devs.Silent != n/10 || devs.Colours[devices.Red] != n/10 {
					t.Fatalf("status devices %s (%v)", body["devices"], err)
				}
			}
		}
		slices.Sort(times)
		t.Logf("%-48s median %7.2f ms, slowest %7.2f ms", tc.name, ms(times[runs/2]), ms(times[runs-1]))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
