package httpapi

import (
	"context"
	"net/http/httptest"
	"testing"
)

// benchGet serves one GET per iteration and fails on anything but 200.
func benchGet(b *testing.B, f *fixture, path string) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("GET", path, nil)
		req.Host = apiHost
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
	}
}

// BenchmarkListDevices100k times pages of GET /api/v1/devices against a
// real store holding 100,000 devices. Allocations per page stay those of
// the page, not of the registry.
func BenchmarkListDevices100k(b *testing.B) {
	f := newFixture(b)
	seedFleet(b, f, 100_000)
	last := fleetEUI(0x10, 99_000).String()
	for _, bc := range []struct{ name, path string }{
		{"first page of 100", "/api/v1/devices?limit=100"},
		{"page of 1000", "/api/v1/devices?limit=1000"},
		{"page of 100 at the end", "/api/v1/devices?limit=100&cursor=" + last},
		{"search one of 100k", "/api/v1/devices?limit=100&q=bin-054321"},
		{"search by tag", "/api/v1/devices?limit=100&q=site-7"},
	} {
		b.Run(bc.name, func(b *testing.B) { benchGet(b, f, bc.path) })
	}
}

// BenchmarkDeviceHealth100k times pages of GET /api/v1/device-health
// with 100,000 registered devices all heard from: each page counts every
// device per colour.
func BenchmarkDeviceHealth100k(b *testing.B) {
	f := newFixture(b)
	f.srv.opt.Status = func(context.Context) Status { return Status{} }
	seedHeardFleet(b, f, 100_000)
	for _, bc := range []struct{ name, path string }{
		{"first page of 100", "/api/v1/device-health?limit=100"},
		{"silent, page of 100", "/api/v1/device-health?limit=100&silent=true"},
		{"search one", "/api/v1/device-health?limit=100&q=bin-054321"},
		{"status counts", "/api/v1/status"},
		{"devices page of 50 with health", "/api/v1/devices?limit=50&health=true"},
	} {
		b.Run(bc.name, func(b *testing.B) { benchGet(b, f, bc.path) })
	}
}
