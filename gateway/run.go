package gateway

import (
	"fmt"
	"net"
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

// Listening publishes the address a source listens on, once it listens:
// tests and the daemon wait on Ready, then read Addr.
type Listening struct {
	ready chan struct{}
	addr  net.Addr
}

// NewListening returns a Listening not yet ready.
func NewListening() *Listening { return &Listening{ready: make(chan struct{})} }

// Ready is closed once Listen has been called.
func (l *Listening) Ready() <-chan struct{} { return l.ready }

// Addr is the address given to Listen, nil before Ready.
func (l *Listening) Addr() net.Addr {
	select {
	case <-l.ready:
		return l.addr
	default:
		return nil
	}
}

// Listen records the address and closes Ready; call it once.
func (l *Listening) Listen(addr net.Addr) {
	l.addr = addr
	close(l.ready)
}
