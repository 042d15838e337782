package simulate

import (
	"testing"

	"github.com/sensorgate/sensorgate/devices"
)

// A fleet past 65,536 devices (the benchmark's 100,000) has unique EUIs;
// the first 65,536 keep theirs.
func TestLargeFleetUnique(t *testing.T) {
	f, err := NewFleet(Options{Devices: 200000, Seed: 99})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[devices.EUI]bool, 200000)
	for _, d := range f.Devices() {
		if seen[d.EUI] {
			t.Fatalf("EUI %s twice", d.EUI)
		}
		seen[d.EUI] = true
	}
	if got := f.Devices()[1].EUI.String(); got != "70b3d57ed0630001" {
		t.Fatalf("device 1: %s", got)
	}
	if _, err := NewFleet(Options{Devices: 1<<24 + 1}); err == nil {
		t.Fatal("a fleet past 2^24 devices accepted")
	}
}
