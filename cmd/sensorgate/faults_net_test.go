package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
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

// proxyRequest is one write request the InfluxDB proxy saw.
type proxyRequest struct {
	at     time.Time
	lines  int
	body   [32]byte // SHA-256 of the uncompressed body: a retry sends the same
	status int      // what the proxy answered (injected or InfluxDB's)
}

// influxProxy is an HTTP proxy in front of a real InfluxDB that answers
// chosen write requests with errors: by the request's number, and 413 for
// any request with more than maxLines lines (a max-body-size).
type influxProxy struct {
	*httptest.Server
	target   string
	client   *http.Client
	plan     map[int]httpFault
	maxLines int

	mu   sync.Mutex
	seen []proxyRequest
}

func startInfluxProxy(t *testing.T, target string, plan map[int]httpFault, maxLines int) *influxProxy {
	t.Helper()
	p := &influxProxy{target: target, client: &http.Client{Timeout: 30 * time.Second}, plan: plan, maxLines: maxLines}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serveHTTP))
	t.Cleanup(p.Close)
	return p
}

func (p *influxProxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.URL.Path != "/api/v2/write" {
		p.forward(w, r, body)
		return
	}
	plain := body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err == nil {
			plain, err = io.ReadAll(zr)
		}
		if err != nil {
			http.Error(w, "proxy: bad gzip: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	req := proxyRequest{at: time.Now(), lines: bytes.Count(plain, []byte{'\n'}), body: sha256.Sum256(plain)}
	p.mu.Lock()
	fault, planned := p.plan[len(p.seen)]
	p.seen = append(p.seen, req)
	n := len(p.seen) - 1
	p.mu.Unlock()
	if !planned && p.maxLines > 0 && req.lines > p.maxLines {
		fault, planned = httpFault{status: http.StatusRequestEntityTooLarge}, true
	}
	if planned {
		if fault.retryAfter != "" {
			w.Header().Set("Retry-After", fault.retryAfter)
		}
		w.Header().Set("X-Influxdb-Error", "injected by the fault proxy: "+strconv.Itoa(fault.status))
		w.WriteHeader(fault.status)
		req.status = fault.status
	} else {
		req.status = p.forward(w, r, body)
	}
	p.mu.Lock()
	p.seen[n].status = req.status
	p.mu.Unlock()
}

func (p *influxProxy) forward(w http.ResponseWriter, r *http.Request, body []byte) int {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	req.Header = r.Header.Clone()
	resp, err := p.client.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return http.StatusBadGateway
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	return resp.StatusCode
}

// requests returns the write requests seen so far.
func (p *influxProxy) requests() []proxyRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]proxyRequest(nil), p.seen...)
}
