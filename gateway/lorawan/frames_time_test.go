package lorawan

import (
	"testing"
	"time"
)

// TestEarliestIgnoresUnsetGatewayClocks: a gateway time of 1970 or before
// (Go's zero time, a negative Unix time, the epoch) is a clock without a
// fix; the uplink takes the earliest real time of the other copies, or
// the local receive time when none has one.
func TestEarliestIgnoresUnsetGatewayClocks(t *testing.T) {
	real1 := time.Date(2026, 3, 1, 12, 0, 0, 5e8, time.UTC)
	real2 := real1.Add(-time.Millisecond)
	bad := []time.Time{{}, time.Unix(0, 0), time.Unix(-1, 0), time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)}
	for _, b := range bad {
		if got := earliest([]Frame{{Time: b}, {Time: real1}, {Time: real2}, {Time: b}}); !got.Equal(real2) {
			t.Errorf("with a gateway at %s: %s, want %s", b, got, real2)
		}
		if got := earliest([]Frame{{Time: b}}); !got.IsZero() {
			t.Errorf("only a gateway at %s: %s, want none (local receive time)", b, got)
		}
	}
}
