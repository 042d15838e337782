package testserver

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// WriteRequest is one InfluxDB write request an InfluxProxy saw.
type WriteRequest struct {
	N      int       // its number, from 0, among write requests
	At     time.Time // when it arrived
	Lines  int       // line-protocol lines in its (uncompressed) body
	Bytes  int       // the uncompressed body's length
	Body   [32]byte  // SHA-256 of the uncompressed body: a retry sends the same
	Status int       // what the proxy answered (injected, or InfluxDB's)
	Gzip   bool      // the body came with Content-Encoding: gzip
	// Data is the uncompressed body, for the inject function only
	// (Requests leaves it out, so a long test does not keep every body).
	Data []byte
}

// InfluxProxy is an HTTP proxy in front of a real InfluxDB that can answer
// write requests itself with an injected status (5xx, 429 with
// Retry-After, 413…) instead of forwarding them: the fault is the test's,
// the database behind it is real.
type InfluxProxy struct {
	*httptest.Server
	target string
	client *http.Client
	inject func(WriteRequest) (status int, header http.Header)

	mu   sync.Mutex
	seen []WriteRequest
}

// StartInfluxProxy starts a proxy to the InfluxDB at target. For each
// write request (/api/v2/write) inject returns a status to answer with, or
// 0 to forward; a nil inject forwards everything. Other requests are
// forwarded. The proxy stops when the test ends.
func StartInfluxProxy(t TB, target string, inject func(WriteRequest) (status int, header http.Header)) *InfluxProxy {
	t.Helper()
	p := &InfluxProxy{target: target, client: &http.Client{Timeout: 30 * time.Second}, inject: inject}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

func (p *InfluxProxy) serve(w http.ResponseWriter, r *http.Request) {
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
	gzipped := r.Header.Get("Content-Encoding") == "gzip"
	if gzipped {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err == nil {
			plain, err = io.ReadAll(zr)
		}
		if err != nil {
			http.Error(w, "proxy: bad gzip: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	req := WriteRequest{At: time.Now(), Lines: bytes.Count(plain, []byte{'\n'}), Bytes: len(plain), Body: sha256.Sum256(plain), Gzip: gzipped}
	p.mu.Lock()
	req.N = len(p.seen)
	p.seen = append(p.seen, req)
	p.mu.Unlock()
	var hdr http.Header
	if p.inject != nil {
		req.Data = plain
		req.Status, hdr = p.inject(req)
	}
	if req.Status != 0 {
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.Header().Set("X-Influxdb-Error", "injected by the test proxy")
		w.WriteHeader(req.Status)
	} else {
		req.Status = p.forward(w, r, body)
	}
	p.mu.Lock()
	p.seen[req.N].Status = req.Status
	p.mu.Unlock()
}

func (p *InfluxProxy) forward(w http.ResponseWriter, r *http.Request, body []byte) int {
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

// Requests returns the write requests seen so far, in arrival order.
func (p *InfluxProxy) Requests() []WriteRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]WriteRequest(nil), p.seen...)
}
