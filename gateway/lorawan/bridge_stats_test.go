package lorawan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
)

func TestBridgeEvent(t *testing.T) {
	for topic, want := range map[string]string{
		"eu868/gateway/0016c001f153a14c/event/up":     "up",
		"eu868/gateway/0016c001f153a14c/event/stats":  "stats",
		"gateway/0016c001f153a14c/state/conn":         "conn",
		"a/b/gateway/0016c001f153a14c/event/ack":      "ack",
		"eu868/gateway/0016c001f153a14c/command/down": "",
		"event/stats": "",
		"":            "",
	} {
		if got := BridgeEvent(topic); got != want {
			t.Errorf("BridgeEvent(%q) = %q, want %q", topic, got, want)
		}
	}
}

// TestParseBridgeStats checks the stats of testdata/feeds/gateway-stats
// field by field (the golden test checks their points).
func TestParseBridgeStats(t *testing.T) {
	read := func(name string) (string, []byte) {
		t.Helper()
		body, err := os.ReadFile(filepath.Join("../../testdata/feeds/gateway-stats", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		topic, err := os.ReadFile(filepath.Join("../../testdata/feeds/gateway-stats", name+".topic"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(topic)), body
	}
	for name, want := range map[string]struct {
		stats gateway.GatewayStats
		time  time.Time
	}{
		"docs-example": {gateway.GatewayStats{ID: "0016c001f153a14c", RxReceived: 1, RxOK: 1, TxReceived: 1, TxEmitted: 1},
			time.Date(2022, 8, 3, 14, 37, 59, 0, time.UTC)},
		"gps-location": {gateway.GatewayStats{ID: "b827ebfffe8a1c02", RxReceived: 42, RxOK: 37, TxReceived: 3, TxEmitted: 2,
			Location: &gateway.GatewayLocation{Latitude: 52.3740364, Longitude: 4.9144401, Altitude: 10.5}},
			time.Date(2024, 3, 5, 11, 22, 30, 321000, time.UTC)},
		// Gateway Bridge v3: base64 id, rxPacketsReceivedOK, no time; a
		// 0,0 location is no fix.
		"v3-base64-no-time": {gateway.GatewayStats{ID: "b827ebfffe8a1c03", RxReceived: 7, RxOK: 5}, time.Time{}},
	} {
		topic, body := read(name)
		up, err := ParseBridgeStats(topic, body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if up.Kind != gateway.KindGatewayStats || up.Gateway == nil || !up.Time.Equal(want.time) || up.Topic != topic || len(up.Raw) != len(body) {
			t.Fatalf("%s: %+v", name, up)
		}
		got := *up.Gateway
		if (got.Location == nil) != (want.stats.Location == nil) || got.Location != nil && *got.Location != *want.stats.Location {
			t.Errorf("%s: location %+v, want %+v", name, got.Location, want.stats.Location)
		}
		got.Location, want.stats.Location = nil, nil
		if got != want.stats {
			t.Errorf("%s: %+v, want %+v", name, got, want.stats)
		}
	}
	// A gateway clock never set counts as no time.
	up, err := ParseBridgeStats("eu868/gateway/0016c001f153a14c/event/stats", []byte(`{"time":"0001-01-01T00:00:00Z"}`))
	if err != nil || !up.Time.IsZero() || up.Gateway.ID != "0016c001f153a14c" {
		t.Fatalf("zero time: %+v %v", up, err)
	}
}

// FuzzBridgeStats: any message gives stats of a gateway in lower-case hex
// or an error, never a panic; a time is after 1970.
func FuzzBridgeStats(f *testing.F) {
	files, _ := filepath.Glob("../../testdata/feeds/*gateway-stats/*.json")
	bad, _ := filepath.Glob("../../testdata/feeds/bad/gateway-stats/*.json")
	for _, p := range append(files, bad...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add("eu868/gateway/0016c001f153a14c/event/stats", b)
	}
	f.Fuzz(func(t *testing.T, topic string, msg []byte) {
		up, err := ParseBridgeStats(topic, msg)
		if err != nil {
			return
		}
		if up.Kind != gateway.KindGatewayStats || len(up.Gateway.ID) != 16 || strings.ToLower(up.Gateway.ID) != up.Gateway.ID {
			t.Fatalf("stats %+v", up.Gateway)
		}
		if !up.Time.IsZero() && !up.Time.After(time.Unix(0, 0)) {
			t.Fatalf("time %v", up.Time)
		}
		if l := up.Gateway.Location; l != nil && (l.Latitude < -90 || l.Latitude > 90 || l.Longitude < -180 || l.Longitude > 180) {
			t.Fatalf("location %+v", l)
		}
	})
}
