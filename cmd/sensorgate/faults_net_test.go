package main

import (
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/internal/testserver"
)

// tcpProxy forwards TCP connections from a loopback port of its own to a
// target, so a test can cut the network between sensorgate and the broker
// (close the listener and every connection) and restore it on the same
// port.
type tcpProxy struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

func startTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

// URL is the proxy's address for paho.
func (p *tcpProxy) URL() string { return "tcp://" + p.addr }

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // cut
			}
			go p.pipe(c)
		}
	}()
}

func (p *tcpProxy) pipe(c net.Conn) {
	u, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // cut while dialling
		p.mu.Unlock()
		c.Close()
		u.Close()
		return
	}
	p.conns[c], p.conns[u] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(u, c)
	go cp(c, u)
	<-done
	c.Close()
	u.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, u)
	p.mu.Unlock()
}

// cut closes the listener and every forwarded connection: both ends see
// the connection drop, and new connections are refused until restore.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

// restore listens on the same port again.
func (p *tcpProxy) restore() error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.serve(ln)
	return nil
}

// httpFault is what the InfluxDB proxy answers instead of forwarding.
type httpFault struct {
	status     int
	retryAfter string
}

// startInfluxProxy puts testserver's proxy in front of a real InfluxDB:
// write request n gets plan[n], and any request with more than maxLines
// lines a 413 (a max-body-size).
func startInfluxProxy(t *testing.T, target string, plan map[int]httpFault, maxLines int) *testserver.InfluxProxy {
	return testserver.StartInfluxProxy(t, target, func(r testserver.WriteRequest) (int, http.Header) {
		fault, planned := plan[r.N]
		if !planned && maxLines > 0 && r.Lines > maxLines {
			fault, planned = httpFault{status: http.StatusRequestEntityTooLarge}, true
		}
		if !planned {
			return 0, nil
		}
		var h http.Header
		if fault.retryAfter != "" {
			h = http.Header{"Retry-After": {fault.retryAfter}}
		}
		return fault.status, h
	})
}
