package script

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestTuneGC: GCPercent applies unless the operator set GOGC, whose
// choice stands.
func TestTuneGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)

	t.Setenv("GOGC", "150") // restored after the test
	if TuneGC() {
		t.Fatal("GOGC set: TuneGC changed the target")
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC set: target %d, want it left at 100", got)
	}

	os.Unsetenv("GOGC")
	if !TuneGC() {
		t.Fatal("GOGC unset: TuneGC did nothing")
	}
	if got := debug.SetGCPercent(100); got != GCPercent {
		t.Fatalf("GOGC unset: target %d, want %d", got, GCPercent)
	}
}
