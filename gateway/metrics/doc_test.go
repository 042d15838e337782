package metrics

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway/deadletter"
	"github.com/sensorgate/sensorgate/gateway/influx"
	"github.com/sensorgate/sensorgate/gateway/spool"
)

// TestFamiliesDocumented: every sensorgate_* family the registry serves,
// with every part of Options set, has a row in the metrics table of
// docs/operations.md, so an operator who sees it on /metrics finds what it
// means.
func TestFamiliesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "\n## Prometheus metrics\n")
	if !ok {
		t.Fatal(`docs/operations.md has no "Prometheus metrics" section`)
	}
	table, _, _ = strings.Cut(table, "\n## ")
	m := New(Options{
		Sources:         []Source{{Name: "cs", Ready: func() bool { return true }}},
		Spool:           func() spool.Stats { return spool.Stats{} },
		Influx:          func() influx.WriteStats { return influx.WriteStats{} },
		Counters:        func() map[string]uint64 { return map[string]uint64{"uplinks": 1} },
		Devices:         func() (int, int) { return 1, 1 },
		State:           func() []StateTable { return []StateTable{{Name: "health", Limit: 1}} },
		DeadLetterStore: func() deadletter.Stats { return deadletter.Stats{} },
		Now:             time.Now,
	})
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fams {
		name := f.GetName()
		if !strings.HasPrefix(name, namespace+"_") {
			continue
		}
		n++
		if !strings.Contains(table, "| `"+name+"` |") {
			t.Errorf("%s is served on /metrics but has no row in the metrics table of docs/operations.md", name)
		}
	}
	if n < 20 {
		t.Fatalf("gathered only %d sensorgate families: the fixture no longer sets every option", n)
	}
}
