package gateway

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
)

func TestStartRun(t *testing.T) {
	var running atomic.Bool
	h := Handler(func(context.Context, Uplink) error { return nil })
	if err := StartRun(`http source "a"`, nil, &running); err == nil || !strings.Contains(err.Error(), `http source "a": Run without a handler`) {
		t.Fatalf("nil handler: %v", err)
	}
	if running.Load() {
		t.Fatal("a refused Run marked the source running")
	}
	if err := StartRun(`http source "a"`, h, &running); err != nil {
		t.Fatalf("first Run: %v", err)
	}
	if err := StartRun(`http source "a"`, h, &running); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second Run: %v", err)
	}
}

func TestListening(t *testing.T) {
	l := NewListening()
	if l.Addr() != nil {
		t.Fatal("Addr before Listen is not nil")
	}
	select {
	case <-l.Ready():
		t.Fatal("Ready before Listen")
	default:
	}
	addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1700}
	l.Listen(addr)
	<-l.Ready()
	if l.Addr() != addr {
		t.Fatalf("Addr = %v, want %v", l.Addr(), addr)
	}
}
