package gateway

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestGatewayPointsBounded: an uplink listing 10,000 gateways writes
// MaxGatewayPoints uplink_gateway points, the strongest receptions, and
// counts the rest; the uplink point still says how many gateways heard it
// and which was best.
func TestGatewayPointsBounded(t *testing.T) {
	p, _, _ := testPipeline(t)
	p.Counters = &Counters{}
	p.Sources["ns"] = SourcePolicy{GatewayPoints: true}
	const n = 10000
	up := Uplink{Source: "ns", DevEUI: euiB, Time: t0, Radio: Radio{DR: -1}}
	for i := range n {
		// RSSI -40 … -139.99, strongest in the middle of the list.
		rssi := -40 - float64((i*7919)%n)/100
		up.Radio.Gateways = append(up.Radio.Gateways, GatewayRx{ID: fmt.Sprintf("%016x", i), RSSI: rssi})
	}
	pts, _, err := p.Points(up)
	if err != nil {
		t.Fatal(err)
	}
	var gws int
	weakest, best := 0.0, -200.0
	for _, pt := range pts {
		switch pt.Measurement {
		case "uplink_gateway":
			gws++
			weakest, best = min(weakest, pt.Fields[0].F), max(best, pt.Fields[0].F)
		case "uplink":
			if f := fieldOf(pt, "gateways"); f.I != n {
				t.Errorf("uplink gateways = %d, want %d", f.I, n)
			}
			// Schema 2: the best reception is the strongest
			// uplink_gateway point, not repeated on the uplink.
			if f := fieldOf(pt, "rssi"); f.Key != "" {
				t.Errorf("uplink has rssi %v; it is the best uplink_gateway point's", f.F)
			}
		}
	}
	if best != -40 {
		t.Errorf("strongest uplink_gateway rssi = %v, want the best, -40", best)
	}
	if gws != MaxGatewayPoints {
		t.Fatalf("%d uplink_gateway points, want %d", gws, MaxGatewayPoints)
	}
	// The 64 strongest of RSSIs -40.00, -40.01, … are down to -40.63.
	if want := -40 - float64(MaxGatewayPoints-1)/100; weakest < want-1e-9 {
		t.Fatalf("weakest kept reception %v dBm, want the strongest %d (down to %v)", weakest, MaxGatewayPoints, want)
	}
	if got := p.Counters.Get("uplink_gateways_dropped"); got != n-MaxGatewayPoints {
		t.Fatalf("uplink_gateways_dropped = %d, want %d", got, n-MaxGatewayPoints)
	}
	readme, err := os.ReadFile("../docs/schema.md")
	if err != nil {
		t.Fatal(err)
	}
	if promise := fmt.Sprintf("at most %d per uplink", MaxGatewayPoints); !strings.Contains(strings.Join(strings.Fields(string(readme)), " "), promise) {
		t.Fatalf("docs/schema.md does not say %q", promise)
	}
}

// TestGatewayPointsOnePerGateway: a gateway listed twice (two antennas)
// gets one point, its stronger reception, and counts once in the
// uplink's gateways; a reception without a gateway id gets no point but
// counts.
func TestGatewayPointsOnePerGateway(t *testing.T) {
	p, _, _ := testPipeline(t)
	p.Sources["ns"] = SourcePolicy{GatewayPoints: true}
	up := Uplink{Source: "ns", DevEUI: euiB, Time: t0, Radio: Radio{DR: -1, Gateways: []GatewayRx{
		{ID: "a", RSSI: -110, SNR: -2, HasSNR: true},
		{ID: "b", RSSI: -90},
		{ID: "a", RSSI: -100, SNR: 1, HasSNR: true},
		{RSSI: -80},
	}}}
	pts, _, err := p.Points(up)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, pt := range pts {
		switch pt.Measurement {
		case "uplink_gateway":
			id := ""
			for _, tg := range pt.Tags {
				if tg.Key == "gateway_id" {
					id = tg.Value
				}
			}
			if _, twice := got[id]; twice {
				t.Fatalf("two points for gateway %q", id)
			}
			got[id] = pt.Fields[0].F
		case "uplink":
			if f := fieldOf(pt, "gateways"); f.I != 3 {
				t.Errorf("uplink gateways = %d, want 3 (a, b and the unnamed one)", f.I)
			}
			// The unnamed reception, the best, has no uplink_gateway
			// point: the uplink keeps its rssi (schema 2).
			if f := fieldOf(pt, "rssi"); f.F != -80 {
				t.Errorf("uplink rssi = %v, want the unnamed best reception's -80", f.F)
			}
		}
	}
	if fmt.Sprint(got) != "map[a:-100 b:-90]" {
		t.Fatalf("uplink_gateway rssi by gateway %v, want a's stronger reception and b's", got)
	}
}

func fieldOf(p Point, key string) Field {
	for _, f := range p.Fields {
		if f.Key == key {
			return f
		}
	}
	return Field{}
}
