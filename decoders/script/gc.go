package script

import (
	"os"
	"runtime/debug"
)

// GCPercent is the garbage collector's target (GOGC) for a process that
// runs JavaScript codecs. goja allocates for every value a codec touches,
// 3.5–22 KB per call for our test codecs against a live heap of a few MB,
// so at Go's default of 100 the collector runs hundreds of times a
// second, and two cores decoding at once spend their second core on it:
// BenchmarkScriptDecodeParallel gained 1.0–1.2× from the second core at
// 100 and 1.45–1.65× at 400. The price is heap headroom: the heap may grow
// to five times the live data instead of twice.
const GCPercent = 400

// TuneGC sets GCPercent unless the operator chose a target with the GOGC
// environment variable, and reports whether it did.
func TuneGC() bool {
	if _, set := os.LookupEnv("GOGC"); set {
		return false
	}
	debug.SetGCPercent(GCPercent)
	return true
}
