package ttsstorage

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Bounds of retrying; not settings: they describe how long a transient
// failure is worth waiting out before the next connection tries again.
const (
	// maxAttempts of one request that fails with a network error, a
	// stall or a 5xx, before Fetch gives up.
	maxAttempts = 5
	// maxRateLimitWaits of one request answered 429 before Fetch gives up.
	maxRateLimitWaits = 20
	// maxWait caps a wait a 429 or X-Rate-Limit-Reset asks for.
	maxWait = 5 * time.Minute
	// maxErrorBody is how much of an error response is read for its message.
	maxErrorBody = 64 << 10
)

// errStalled is the cause of a request cancelled because the server sent
// nothing for Config.Timeout.
var errStalled = errors.New("stalled")

// Range is the time range of a fetch, by the stored messages' received_at:
// after After, and before Before unless Before is zero.
type Range struct {
	After, Before time.Time
}

// Stats says what a fetch did.
type Stats struct {
	Requests int // HTTP requests sent, retries included
	Messages int // results handed to fn
	// Skipped counts lines that were no result: too long, malformed, or
	// without an ApplicationUp object (logged each).
	Skipped int
	// Last is the received_at of the newest message fn took; everything
	// stored up to it has been handed to fn. Zero if none.
	Last time.Time
}

// Client fetches one application's stored uplinks.
type Client struct {
	source  string
	cfg     Config
	hc      *http.Client
	log     zerolog.Logger
	maxLine int
	// backoff is the first wait after a failed request (doubling).
	backoff time.Duration

	mu   sync.Mutex
	next time.Time // no request before this (request_interval, rate limits)
}

// New returns a Client for the storage settings of the named source.
func New(source string, cfg Config, log zerolog.Logger) (*Client, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("source %q: %w", source, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = cfg.Timeout
	tr.DialContext = (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = cfg.Timeout
	return &Client{
		source: source, cfg: cfg, hc: &http.Client{Transport: tr}, maxLine: MaxLineBytes, backoff: time.Second,
		log: log.With().Str("source", source).Str("application_id", cfg.ApplicationID).Logger(),
	}, nil
}

// Config is the client's settings, defaults applied.
func (c *Client) Config() Config { return c.cfg }

// Fetch hands every stored uplink of the range to fn, oldest first, page
// by page, each page read as a stream. It returns when the range is
// exhausted, fn returns an error (returned wrapped), ctx ends, or the
// server fails for good (an *AuthError for a refused API key). Stats.Last
// says how far it got either way, so a caller can resume from there.
//
// Pages overlap by the last message of the previous one (the next page
// asks for what came after just before it), so a message that shares
// its received_at with the end of a page is not lost; fn sees that one
// twice, which the pipeline's idempotent points make harmless.
func (c *Client) Fetch(ctx context.Context, r Range, fn func(context.Context, Message) error) (Stats, error) {
	var st Stats
	after := r.After
	for {
		n, last, err := c.page(ctx, after, r.Before, &st, fn)
		if err != nil {
			return st, err
		}
		if n < c.cfg.PageSize {
			return st, nil
		}
		next := last.Add(-time.Nanosecond)
		if last.IsZero() || !next.After(after) {
			return st, fmt.Errorf("source %q: a full page of %d stored uplinks did not move past received_at %s: raise storage.page_size (at most %d)",
				c.source, n, after.Format(time.RFC3339Nano), MaxPageSize)
		}
		after = next
	}
}

// page fetches one page from after, retrying transient failures; a retry
// after part of the page resumes from the last message taken. It returns
// how many results the page held and the received_at of its last.
func (c *Client) page(ctx context.Context, after, before time.Time, st *Stats, fn func(context.Context, Message) error) (int, time.Time, error) {
	attempts, waits := 0, 0
	var last time.Time
	for {
		if err := c.wait(ctx); err != nil {
			return 0, last, err
		}
		st.Requests++
		// n is the count of this request alone: a page is the last one
		// when its final request held fewer than page_size results.
		n, glast, err := c.request(ctx, after, before, st, fn)
		if !glast.IsZero() {
			last = glast
		}
		var rl *rateLimited
		var perm *permanentError
		switch {
		case err == nil:
			return n, last, nil
		case ctx.Err() != nil:
			return n, last, ctx.Err()
		case errors.As(err, &perm):
			return n, last, perm.err
		case errors.As(err, &rl):
			waits++
			if waits > maxRateLimitWaits {
				return n, last, fmt.Errorf("source %q: the Storage Integration kept answering 429 Too Many Requests (%d times): try again later, or raise storage.request_interval", c.source, waits)
			}
			c.log.Info().Stringer("wait", rl.wait).Msg("the Storage Integration asks to slow down (429); waiting")
			c.delay(rl.wait)
		default:
			attempts++
			if attempts >= maxAttempts {
				return n, last, fmt.Errorf("source %q: fetching stored uplinks failed %d times, last: %w", c.source, attempts, err)
			}
			backoff := c.backoff << attempts
			c.log.Warn().Err(err).Int("attempt", attempts).Stringer("retry_in", backoff).Msg("fetching stored uplinks failed; retrying")
			c.delay(backoff)
		}
		if next := glast.Add(-time.Nanosecond); !glast.IsZero() && next.After(after) {
			// Resume the page where it broke off; a failure after progress
			// is a new one, so a flaky server still gets through.
			after, attempts = next, 0
		}
	}
}

// request sends one request and streams its results to fn.
func (c *Client) request(ctx context.Context, after, before time.Time, st *Stats, fn func(context.Context, Message) error) (int, time.Time, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, c.pageURL(after, before), nil)
	if err != nil {
		return 0, time.Time{}, &permanentError{fmt.Errorf("source %q: storage.url: %w", c.source, err)}
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey.Secret())
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, time.Time{}, c.cause(rctx, err)
	}
	defer resp.Body.Close()
	c.noteRateLimit(resp.Header, resp.StatusCode)
	if resp.StatusCode != http.StatusOK {
		return 0, time.Time{}, c.statusError(resp)
	}
	stall := time.AfterFunc(c.cfg.Timeout, func() { cancel(errStalled) })
	defer stall.Stop()
	lr := newLineReader(&idleReader{r: resp.Body, t: stall, d: c.cfg.Timeout}, c.maxLine)
	n, skipped := 0, 0
	var last time.Time
	for lineNo := 1; ; lineNo++ {
		if n == c.cfg.PageSize {
			// A full page: what a server sends beyond the limit it was
			// asked for is not read; the next page starts after the last.
			return n, last, nil
		}
		line, long, err := lr.next()
		if err == io.EOF {
			return n, last, nil
		}
		if err != nil {
			return n, last, c.cause(rctx, err)
		}
		if skipped > c.cfg.PageSize {
			// Lines that are no uplink are logged and skipped, but a
			// response of nothing else must end.
			return n, last, &permanentError{fmt.Errorf("source %q: the Storage Integration's response holds more than %d lines that are no stored uplink: is storage.url The Things Stack's address?", c.source, c.cfg.PageSize)}
		}
		if long > 0 {
			skipped++
			st.Skipped++
			c.log.Warn().Int("line", lineNo).Int("bytes", long).Int("max_bytes", c.maxLine).Msg("skipped a response line longer than any stored uplink")
			continue
		}
		m, err := ParseLine(line)
		var se *StreamError
		switch {
		case errors.As(err, &se):
			return n, last, fmt.Errorf("source %q: %w", c.source, se)
		case err != nil:
			skipped++
			st.Skipped++
			c.log.Warn().Int("line", lineNo).Err(err).Msg("skipped a response line that is not a stored uplink")
			continue
		case m.Up == nil:
			continue
		}
		// The timeout is the server's: not while the pipeline takes the
		// uplink (a full spool may hold it up for long).
		stall.Stop()
		if err := fn(ctx, m); err != nil {
			return n, last, &permanentError{err}
		}
		stall.Reset(c.cfg.Timeout)
		n++
		st.Messages++
		if !m.ReceivedAt.IsZero() {
			last = m.ReceivedAt
			if m.ReceivedAt.After(st.Last) {
				st.Last = m.ReceivedAt
			}
		}
	}
}

// pageURL is the request URL of one page.
func (c *Client) pageURL(after, before time.Time) string {
	q := url.Values{}
	q.Set("order", "received_at")
	q.Set("limit", strconv.Itoa(c.cfg.PageSize))
	if !after.IsZero() {
		q.Set("after", after.UTC().Format(time.RFC3339Nano))
	}
	if !before.IsZero() {
		q.Set("before", before.UTC().Format(time.RFC3339Nano))
	}
	return strings.TrimSuffix(c.cfg.URL, "/") + "/api/v3/as/applications/" + url.PathEscape(c.cfg.ApplicationID) +
		"/packages/storage/uplink_message?" + q.Encode()
}

// cause turns a failed request or read into the error to report: a stall
// says so, a cancelled parent is the parent's error.
func (c *Client) cause(ctx context.Context, err error) error {
	if errors.Is(context.Cause(ctx), errStalled) {
		return fmt.Errorf("the Storage Integration at %s sent nothing for %s", c.cfg.URL, c.cfg.Timeout)
	}
	return err
}

// wait blocks until the next request may be sent.
func (c *Client) wait(ctx context.Context) error {
	c.mu.Lock()
	d := time.Until(c.next)
	c.mu.Unlock()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// delay puts the next request at least d from now.
func (c *Client) delay(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := time.Now().Add(min(d, maxWait)); t.After(c.next) {
		c.next = t
	}
}

// noteRateLimit schedules the next request after a response: at least
// request_interval later, and after the window resets when the server says
// nothing is left of it (X-Rate-Limit-Available: 0).
func (c *Client) noteRateLimit(h http.Header, status int) {
	c.delay(c.cfg.RequestInterval)
	if status == http.StatusTooManyRequests {
		return // statusError reads the wait
	}
	if h.Get("X-Rate-Limit-Available") == "0" {
		if s, err := strconv.Atoi(h.Get("X-Rate-Limit-Reset")); err == nil && s > 0 {
			c.delay(time.Duration(s) * time.Second)
		}
	}
}

// AuthError is the Storage Integration refusing the API key (401, 403).
type AuthError struct {
	Source, Application string
	Key                 APIKey
	Status              int
	Message             string // the server's
}

func (e *AuthError) Error() string {
	what := "refused"
	if e.Status == http.StatusForbidden {
		what = "does not grant the right to read application traffic"
	}
	msg := ""
	if e.Message != "" {
		msg = ": " + e.Message
	}
	return fmt.Sprintf("source %q: The Things Stack %s API key %s for application %q (%d %s%s): "+
		"create an API key of the application with the right \"Read application traffic\" (or renew the expired one) and set it in the source's storage.api_key; "+
		"nothing is lost: the uplinks since the last one stored stay to be fetched at the next connection, or with sensorgate backfill --source %s",
		e.Source, what, e.Key, e.Application, e.Status, http.StatusText(e.Status), msg, e.Source)
}

// rateLimited is a 429 with the wait it asks for.
type rateLimited struct{ wait time.Duration }

func (e *rateLimited) Error() string { return "429 Too Many Requests" }

// permanentError is a failure that retrying the request cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// statusError reads a non-200 response into the error to act on.
func (c *Client) statusError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var e StreamError
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		msg = e.Message
	}
	msg = truncate(msg, 300)
	switch s := resp.StatusCode; {
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		return &permanentError{&AuthError{Source: c.source, Application: c.cfg.ApplicationID, Key: c.cfg.APIKey, Status: s, Message: msg}}
	case s == http.StatusTooManyRequests:
		return &rateLimited{wait: retryAfter(resp.Header, c.cfg.RequestInterval)}
	case s == http.StatusNotFound:
		return &permanentError{fmt.Errorf("source %q: %s answered 404 Not Found (%s): check storage.url and storage.application_id, and that the application's Storage Integration is activated (Integrations → Storage Integration)", c.source, c.cfg.URL, msg)}
	case s >= 500 || s == http.StatusRequestTimeout:
		return fmt.Errorf("the Storage Integration answered %d %s: %s", s, http.StatusText(s), msg)
	}
	return &permanentError{fmt.Errorf("source %q: the Storage Integration answered %d %s: %s", c.source, resp.StatusCode, http.StatusText(resp.StatusCode), msg)}
}

// retryAfter is the wait a 429 asks for: Retry-After (seconds or an HTTP
// date), else The Things Stack's X-Rate-Limit-Retry (seconds), else
// fallback; at least a second, at most maxWait.
func retryAfter(h http.Header, fallback time.Duration) time.Duration {
	d := fallback
	if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.Atoi(v); err == nil {
			d = time.Duration(s) * time.Second
		} else if t, err := http.ParseTime(v); err == nil {
			d = time.Until(t)
		}
	} else if s, err := strconv.Atoi(h.Get("X-Rate-Limit-Retry")); err == nil {
		d = time.Duration(s) * time.Second
	}
	return min(max(d, time.Second), maxWait)
}

// idleReader resets t to d on every read that returns data: the request is
// cancelled only when the server sends nothing for d.
type idleReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.t.Reset(r.d)
	}
	return n, err
}

// lineReader reads lines of at most max bytes; a longer one is read
// through and reported by its length, without being kept, up to skipMax
// bytes: a line longer still ends the response (errEndlessLine).
type lineReader struct {
	r       *bufio.Reader
	buf     []byte
	max     int
	skipMax int
}

// errEndlessLine is a line longer than a reader reads through.
var errEndlessLine = errors.New("a response line runs on past 64 MiB: not a stored uplink; the response was abandoned")

func newLineReader(r io.Reader, maxLine int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: maxLine, skipMax: max(64<<20, 2*maxLine)}
}

// next returns the next line without its newline; or, for a line longer
// than max, nil and its length; io.EOF after the last line.
func (l *lineReader) next() (line []byte, long int, err error) {
	l.buf = l.buf[:0]
	total := 0
	for {
		chunk, err := l.r.ReadSlice('\n')
		total += len(chunk)
		if total <= l.max+1 { // +1: the newline
			l.buf = append(l.buf, chunk...)
		}
		switch {
		case err == bufio.ErrBufferFull && total > l.skipMax:
			return nil, total, errEndlessLine
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && total > 0:
			err = nil // a last line without a newline
		case err != nil:
			return nil, 0, err
		}
		if len(l.buf) > 0 && l.buf[len(l.buf)-1] == '\n' {
			total--
		}
		if total > l.max {
			return nil, total, nil
		}
		return trimNewline(l.buf), 0, nil
	}
}

// trimNewline drops a trailing "\n" or "\r\n".
func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}
