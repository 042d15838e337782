package testserver

import "testing"

// TB is the part of testing.TB the servers use. Tests pass their
// *testing.T or *testing.B; the end-to-end benchmark tool
// (cmd/sensorgate-bench), which is not a test, passes its own
// implementation, so both start and stop the servers the same way.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	TempDir() string
	Cleanup(func())
}

// Every test type keeps satisfying TB, so existing callers compile.
var _ TB = testing.TB(nil)
