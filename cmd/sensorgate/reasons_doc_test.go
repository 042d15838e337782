package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/metrics"
)

// TestDeadLetterReasonsDocumented: every dead-letter reason the metrics
// label (the closed set) is named in the Dead letters section of
// docs/delivery.md and in
// the API's openapi enum, so an operator filtering or alerting by reason
// finds it.
func TestDeadLetterReasonsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/delivery.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Dead letters\n")
	if !ok {
		t.Fatal("docs/delivery.md has no Dead letters section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	openapi, err := os.ReadFile("../../gateway/httpapi/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The Reason schema: "Reason:", then "type: string", then "enum: [...]".
	_, schema, ok := strings.Cut(string(openapi), "\n    Reason:\n")
	if !ok {
		t.Fatal("openapi.yaml has no Reason schema")
	}
	_, list, _ := strings.Cut(schema, "enum: [")
	list, _, _ = strings.Cut(list, "]")
	var enum []string
	for _, e := range strings.Split(list, ",") {
		enum = append(enum, strings.TrimSpace(e))
	}
	for _, must := range []gateway.Reason{gateway.ReasonDeviceMismatch, gateway.ReasonBadTime} {
		if !slices.Contains(metrics.Reasons, must) {
			t.Errorf("metrics.Reasons lacks %s: its letters would be counted as reason=\"other\"", must)
		}
	}
	for _, r := range metrics.Reasons {
		if !strings.Contains(section, "`"+string(r)+"`") {
			t.Errorf("the Dead letters section of docs/delivery.md does not name reason %s", r)
		}
		if !slices.Contains(enum, string(r)) {
			t.Errorf("openapi.yaml's Reason enum %v lacks %s", enum, r)
		}
	}
}
