package metrics

import (
	"os"
	"strings"
	"testing"
)

// TestGatewayMetricsDocumented: the README's metrics table names each
// gateway family with its label.
func TestGatewayMetricsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{
		"| `sensorgate_gateways` | gauge | `state` |",
		"| `sensorgate_gateway_last_seen_timestamp_seconds` | gauge | `gateway_id` |",
		"| `sensorgate_gateway_silent` | gauge | `gateway_id` |",
	} {
		if !strings.Contains(string(readme), row) {
			t.Errorf("README's metrics table lacks %s", row)
		}
	}
}
