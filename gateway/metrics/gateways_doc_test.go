package metrics

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
)

// TestGatewayMetricsDocumented: the metrics table of docs/operations.md names each
// gateway family with its label.
func TestGatewayMetricsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{
		"| `sensorgate_gateways` | gauge | `state` |",
		"| `sensorgate_gateway_last_seen_timestamp_seconds` | gauge | `gateway_id` |",
		"| `sensorgate_gateway_silent` | gauge | `gateway_id` |",
	} {
		if !strings.Contains(string(readme), row) {
			t.Errorf("docs/operations.md metrics table lacks %s", row)
		}
	}
}

// TestEventsAreNotUplinks: device events and gateway stats the pipeline
// observes count neither as uplinks nor in the throughput.
func TestEventsAreNotUplinks(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	m := fixture(&now)
	for _, k := range []gateway.Kind{gateway.KindStatus, gateway.KindEvent, gateway.KindGatewayStats} {
		m.Observe(gateway.Uplink{Source: "cs", Kind: k}, gateway.Seen{})
	}
	m.Observe(gateway.Uplink{Source: "cs"}, gateway.Seen{})
	if got := gather(t, m)["sensorgate_uplinks_total{result=written,source=cs}"]; got != 1 {
		t.Errorf("uplinks written %v, want 1", got)
	}
	if tp := m.Throughput(); tp.Total != 1 {
		t.Errorf("throughput %+v, want one uplink", tp)
	}
}
