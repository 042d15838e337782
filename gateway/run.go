package gateway

import (
	"fmt"
	"sync/atomic"
)

// StartRun is the check a source's Run makes before it starts: it needs a
// handler, and one source runs once at a time (running is set until the
// source clears it). source names it in the errors, e.g. `http source "x"`.
func StartRun(source string, h Handler, running *atomic.Bool) error {
	if h == nil {
		return fmt.Errorf("%s: Run without a handler", source)
	}
	if !running.CompareAndSwap(false, true) {
		return fmt.Errorf("%s: already running", source)
	}
	return nil
}
