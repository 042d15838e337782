package influx

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	ihttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
)

// ErrRejected is wrapped by Writer.Write's error when points could not be
// encoded, and by the outcome of a record InfluxDB refused for good (400
// or 422: a field type conflict, a point outside the retention policy; 413
// for one point larger than it takes). Retrying cannot help, so the
// record becomes a dead letter. errors.Is(err, gateway.ErrRejected) holds
// as well, which is what the pipeline checks.
var ErrRejected error = rejectedError("influx: InfluxDB rejected the points")

type rejectedError string

func (e rejectedError) Error() string        { return string(e) }
func (e rejectedError) Is(target error) bool { return target == gateway.ErrRejected }

// timing holds the retry delays; tests shorten them.
type timing struct {
	minBackoff    time.Duration // first retry after a 429, 5xx or network error
	maxBackoff    time.Duration // cap of the doubling
	maxRetryAfter time.Duration // cap on a server's Retry-After
	authRetry     time.Duration // 401, 403, 404: an operator has to act; do not hammer
}

var defaultTiming = timing{
	minBackoff:    100 * time.Millisecond,
	maxBackoff:    30 * time.Second,
	maxRetryAfter: 5 * time.Minute,
	authRetry:     10 * time.Second,
}

// maxPooledBuffer keeps one huge Write from pinning its buffer in the pool.
const maxPooledBuffer = 1 << 20

// Client is the HTTP side of delivery: one write request at a time per
// call (post), the probe and database creation of the Monitor, request
// statistics, and the retry delays of the status policy. What to send and
// what an answer means for the records is the Deliverer's (deliver.go).
//
// The HTTP exchange goes through influxdb-client-go's api/http Service
// rather than its WriteAPI: the Service takes our request body as is, so
// delivery keeps its own byte-exact encoding, its own gzip and batching,
// and sees every status code and Retry-After for the policy, which
// WriteAPIBlocking (no batching of our own, its own retry and error
// mapping) would hide.
type Client struct {
	cfg      Config
	log      zerolog.Logger
	client   *http.Client
	svc      ihttp.Service
	writeURL string
	auth     string // Authorization header value, "" for none
	gzip     bool   // compress request bodies (Config.Gzip resolved)
	timing   timing

	// stats counts requests, retries and latency for Stats (stats.go).
	stats *writeStats
	// retryNow is closed (and replaced) by RetryNow.
	retryMu  sync.Mutex
	retryNow chan struct{}

	gzips sync.Pool // *gzip.Writer
}

// New checks cfg, fills in its defaults and returns a Client. It does not
// contact InfluxDB: an unreachable server at start is just the first
// thing the retry policy handles.
func New(cfg Config, log zerolog.Logger) (*Client, error) {
	return newClient(cfg, log, defaultTiming)
}

func newClient(cfg Config, log zerolog.Logger, tm timing) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	u, _ := url.Parse(cfg.URL) // checked by Validate
	var tc *tls.Config
	if u.Scheme == "https" {
		var err error
		if tc, err = cfg.TLS.Client(u.Hostname()); err != nil {
			return nil, fmt.Errorf("influx: %w", err)
		}
		if cfg.TLS.InsecureSkipVerify {
			log.Warn().Msg("influx.tls.insecure_skip_verify is on: InfluxDB's certificate is not checked, so anyone on the network path can read the token and change the data; use influx.tls.ca_file instead")
		}
	}

	client := &http.Client{
		// A backstop only: every request also has its own context deadline.
		Timeout: cfg.Timeout + 5*time.Second,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:       tc,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: cfg.Timeout,
			// The batches in flight, the sorting lane's request and the
			// Monitor's probe.
			MaxIdleConnsPerHost: cfg.MaxInFlight + 2,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	writeURL, auth := cfg.writeURL()
	return &Client{
		cfg:      cfg,
		log:      log,
		client:   client,
		svc:      ihttp.NewService(cfg.URL, auth, ihttp.DefaultOptions().SetHTTPClient(client).SetApplicationName("sensorgate")),
		writeURL: writeURL,
		auth:     auth,
		gzip:     cfg.compress(),
		timing:   tm,
		stats:    newWriteStats(),
		retryNow: make(chan struct{}),
	}, nil
}

// outcome is what one write request came to.
type outcome struct {
	status     int // 0: no HTTP response
	msg        string
	retryAfter time.Duration
	err        error // nil on 2xx
}

// post sends body, pieces of line protocol each ending in a newline, as
// one write request.
func (s *Client) post(ctx context.Context, body [][]byte) outcome {
	var (
		rd      io.Reader
		size    int64
		getBody func() (io.ReadCloser, error)
	)
	if s.gzip {
		rd = bytes.NewReader(s.gzipped(body)) // NewRequest sets the rest
	} else {
		// Sent from where the lines are: a batch is up to a few MiB, and
		// joining it into one buffer would be delivery's largest
		// allocation. GetBody lets the transport retry on a fresh
		// connection when a kept-alive one turns out closed.
		getBody = func() (io.ReadCloser, error) { return io.NopCloser(piecesReader(body)), nil }
		rd = piecesReader(body)
		for _, p := range body {
			size += int64(len(p))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	start := time.Now()
	perr := s.svc.DoPostRequest(ctx, s.writeURL, rd,
		func(req *http.Request) {
			req.Header.Set("Content-Type", "text/plain; charset=utf-8")
			if s.gzip {
				req.Header.Set("Content-Encoding", "gzip")
			} else {
				// Content-Length rather than chunked, which NewRequest
				// chooses for a reader it does not know.
				req.ContentLength, req.GetBody = size, getBody
			}
		},
		func(resp *http.Response) error {
			// Drain so the connection is reused; the Service leaves a 2xx
			// body to us.
			_, _ = io.Copy(io.Discard, resp.Body)
			return resp.Body.Close()
		})
	took := time.Since(start)
	if perr == nil {
		s.stats.request(http.StatusNoContent, took, false, "")
		return outcome{}
	}
	o := outcome{status: perr.StatusCode, err: perr}
	defer func() { s.stats.request(o.status, took, ctx.Err() == nil, o.msg) }()
	if o.status == 0 {
		o.msg = perr.Error()
		return o
	}
	// InfluxDB 1.8 answers {"error": "..."}, which the Service does not
	// decode; it copies X-Influxdb-Error (the first 1 KiB) into Message.
	o.msg = perr.Message
	if o.msg == "" {
		o.msg = perr.Error()
	}
	o.retryAfter = retryAfter(perr.Header.Get("Retry-After"))
	return o
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

// piecesReader reads the pieces one after the other.
func piecesReader(body [][]byte) *net.Buffers {
	bufs := make(net.Buffers, len(body))
	copy(bufs, body)
	return &bufs
}

// gzipped compresses the pieces into one buffer.
func (s *Client) gzipped(body [][]byte) []byte {
	size := 0
	for _, p := range body {
		size += len(p)
	}
	var out bytes.Buffer
	out.Grow(size/4 + 64)
	zw, _ := s.gzips.Get().(*gzip.Writer)
	if zw == nil {
		// BestSpeed: line protocol compresses well anyway, and the edge
		// box's CPU is better spent decoding.
		zw, _ = gzip.NewWriterLevel(&out, gzip.BestSpeed)
	} else {
		zw.Reset(&out)
	}
	for _, p := range body {
		_, _ = zw.Write(p) // a bytes.Buffer does not fail
	}
	_ = zw.Close()
	zw.Reset(io.Discard) // let the pool not hold on to this body
	s.gzips.Put(zw)
	return out.Bytes()
}

// waitRetry waits d or until ctx ends, cut short when the Monitor saw
// InfluxDB take writes again (RetryNow): a database just created, a
// server back.
func (s *Client) waitRetry(ctx context.Context, d time.Duration) {
	s.retryMu.Lock()
	now := s.retryNow
	s.retryMu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-now:
	case <-ctx.Done():
	}
}

// RetryNow ends every retry delay under way: the target takes writes
// again, so held points need not wait out their backoff.
func (s *Client) RetryNow() {
	s.retryMu.Lock()
	close(s.retryNow)
	s.retryNow = make(chan struct{})
	s.retryMu.Unlock()
}

// backoff doubles from minBackoff up to maxBackoff, with jitter (half to
// all of it) so edge boxes recovering together do not retry in lockstep.
func (s *Client) backoff(attempt int) time.Duration {
	d := s.timing.maxBackoff
	if attempt < 30 {
		d = min(s.timing.minBackoff<<attempt, s.timing.maxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}
