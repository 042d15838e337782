package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
)

// Server timeouts; not settings, as no sender needs others: a webhook
// body is small and network servers give up after 5 s (ChirpStack) or
// 10 s (The Things Stack).
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = time.Minute
	writeTimeout      = time.Minute
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	// closeWait bounds the wait for handlers after connections were
	// closed at the drain timeout: their reads fail at once.
	closeWait = 5 * time.Second
)

// Source is an HTTP feed: it listens where the network server posts, and
// answers each request only once the pipeline took its message.
//
// Requests are handled concurrently, at most Config.MaxInFlight at once,
// so the handler must be safe for concurrent use.
type Source struct {
	cfg      Config
	parser   *mqtt.Parser
	dl       gateway.DeadLetters
	counters *gateway.Counters
	events   Events
	auth     authenticator
	log      zerolog.Logger
	msgLog   zerolog.Logger // per-request problems, sampled
	tls      *tls.Config
	// retryAfter is the Retry-After header of every 503, in seconds.
	retryAfter string
	// headerTimeout and readTimeout cut off slow clients (tests shorten them).
	headerTimeout, readTimeout time.Duration

	// slots holds one token per request being handled (MaxInFlight).
	slots    chan struct{}
	drained  atomic.Int64 // slots taken by drain
	draining atomic.Bool
	running  atomic.Bool
	lis      *gateway.Listening
}

var _ gateway.Source = (*Source)(nil)

// Option changes how New builds a Source.
type Option func(*Source)

// WithEvents routes the events that are not uplinks (see Events).
func WithEvents(e Events) Option { return func(s *Source) { s.events = e } }

// WithClock sets the local clock the parser stamps a message without a
// time with (tests); default time.Now.
func WithClock(now func() time.Time) Option {
	return func(s *Source) { s.parser, _ = mqtt.NewParser(s.cfg.ParserConfig(), now) }
}

// New checks cfg, applies its defaults and returns a Source that listens
// when Run is called. dl keeps the messages that cannot be parsed;
// counters may be nil.
func New(cfg Config, dl gateway.DeadLetters, counters *gateway.Counters, log zerolog.Logger, opts ...Option) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	if dl == nil {
		return nil, fmt.Errorf("http source %q: no dead-letter store given: malformed messages could not be kept", cfg.Name)
	}
	parser, err := mqtt.NewParser(cfg.ParserConfig(), nil)
	if err != nil {
		return nil, fmt.Errorf("http source %q: %w", cfg.Name, err)
	}
	log = log.With().Str("source", cfg.Name).Logger()
	secs := int64((cfg.RetryAfter + time.Second - 1) / time.Second)
	s := &Source{
		cfg: cfg, parser: parser, dl: dl, counters: counters, auth: newAuthenticator(cfg.Auth),
		log: log, msgLog: log.Sample(&zerolog.BurstSampler{Burst: 10, Period: time.Minute}),
		retryAfter:    strconv.FormatInt(max(secs, 1), 10),
		headerTimeout: readHeaderTimeout, readTimeout: readTimeout,
		slots: make(chan struct{}, cfg.MaxInFlight),
		lis:   gateway.NewListening(),
	}
	for _, o := range opts {
		o(s)
	}
	if cfg.TLSCert != "" {
		// Loaded now, so a bad file stops the start instead of failing
		// every handshake.
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("http source %q: load tls_cert/tls_key: %w", cfg.Name, err)
		}
		s.tls = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	if cfg.Auth.None {
		log.Warn().Str("listen", cfg.Listen).Msg("http source runs with auth: none: anyone who can reach this port can write data and fill the dead letters; set auth (a shared secret header, basic or bearer) unless a proxy in front authenticates")
	}
	return s, nil
}

// Ready is closed once the source listens; Addr is valid from then on.
func (s *Source) Ready() <-chan struct{} { return s.lis.Ready() }

// Addr is the address the source listens on (with the port the kernel
// chose for ":0"), nil before Ready.
func (s *Source) Addr() net.Addr { return s.lis.Addr() }

// InFlight is the number of requests being handled (reading their body,
// in the pipeline), before shutdown begins.
func (s *Source) InFlight() int { return len(s.slots) - int(s.drained.Load()) }

// Run listens and serves until ctx ends. Then it drains: requests already
// taken finish (for at most DrainTimeout) while new ones are answered 503
// with Retry-After; then it stops listening and returns nil. It returns an
// error only when it cannot listen.
func (s *Source) Run(ctx context.Context, h gateway.Handler) error {
	if err := gateway.StartRun(fmt.Sprintf("http source %q", s.cfg.Name), h, &s.running); err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("http source %q: listen on %s: %w (is another process bound to it? change listen)", s.cfg.Name, s.cfg.Listen, err)
	}
	s.lis.Listen(ln.Addr())
	// Handlers outlive ctx by the drain: their context ends only at the
	// drain timeout (or when their client goes away).
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	srv := &http.Server{
		Handler:           s.Handler(h),
		ReadHeaderTimeout: s.headerTimeout,
		ReadTimeout:       s.readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return hctx },
		// net/http's own errors (handshakes, malformed requests) are the
		// clients' problems: logged, sampled.
		ErrorLog:  stdlog.New(s.msgLog, "http source: ", 0),
		TLSConfig: s.tls,
	}
	s.log.Info().Str("listen", s.lis.Addr().String()).Str("path", s.cfg.Path).Str("format", s.cfg.Format).
		Str("auth", s.auth.method).Bool("tls", s.tls != nil).Msg("http source listening")
	done := make(chan error, 1)
	go func() {
		if s.tls != nil {
			done <- srv.ServeTLS(ln, "", "")
		} else {
			done <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-done:
		return fmt.Errorf("http source %q: %w", s.cfg.Name, err)
	case <-ctx.Done():
	}

	// Drain: the listener stays open so that a sender hears 503 and
	// Retry-After rather than a refused connection, until every request
	// taken has been answered.
	s.draining.Store(true)
	if !s.drain(s.cfg.DrainTimeout) {
		s.log.Warn().Stringer("drain_timeout", s.cfg.DrainTimeout).Msg("requests still in flight at the drain timeout are cut off; their senders get no answer and must retry")
		cancelHandlers()
		_ = srv.Close()
		s.drain(closeWait)
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http source %q: %w", s.cfg.Name, err)
	}
	return nil
}

// drain takes every in-flight slot, so it returns true once no request is
// being handled; false when timeout passed first. The slots stay taken: a
// draining source takes no more requests.
func (s *Source) drain(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for int(s.drained.Load()) < cap(s.slots) {
		select {
		case s.slots <- struct{}{}:
			s.drained.Add(1)
		case <-t.C:
			return false
		}
	}
	return true
}

// Handler is the source's request handler with h as the pipeline; Run
// serves it, tests may too.
func (s *Source) Handler(h gateway.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, h) })
}

func (s *Source) serve(w http.ResponseWriter, r *http.Request, h gateway.Handler) {
	s.count("requests")
	if !s.pathMatches(r.URL.Path) {
		s.answer(w, r, http.StatusNotFound, "no http source here: post to "+s.cfg.Path)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.answer(w, r, http.StatusMethodNotAllowed, "network servers POST their messages: use POST")
		return
	}
	if !s.auth.ok(r) {
		s.count("unauthorized")
		s.msgLog.Warn().Str("remote", r.RemoteAddr).Str("auth", s.auth.method).Msg("http request refused: wrong or missing credentials")
		if c := s.auth.challenge(); c != "" {
			w.Header().Set("WWW-Authenticate", c)
		}
		s.answer(w, r, http.StatusUnauthorized, "unauthorized: send the credentials this source's auth asks for")
		return
	}
	if s.draining.Load() {
		s.count("unavailable")
		s.unavailable(w, r, "shutting down: retry later")
		return
	}
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		s.count("busy")
		s.unavailable(w, r, fmt.Sprintf("busy: %d requests in flight (max_in_flight): retry later", cap(s.slots)))
		return
	}
	if mt, hint := protobufType(r.Header.Get("Content-Type"), s.cfg.Format); mt != "" {
		s.count("unsupported_media_type")
		s.msgLog.Error().Str("content_type", mt).Msg("http source refused a protobuf body: " + hint)
		s.answer(w, r, http.StatusUnsupportedMediaType, "content type "+mt+" (protobuf) is not read here: "+hint)
		return
	}
	body, status, err := s.readBody(w, r)
	if err != nil {
		s.msgLog.Warn().Err(err).Str("remote", r.RemoteAddr).Int("status", status).Msg("http request body not taken")
		s.answer(w, r, status, err.Error())
		return
	}
	ctx := r.Context()
	if kind := messageKind(s.cfg.Format, r.URL.Query()); kind != EventUp {
		if s.cfg.Format != mqtt.FormatChirpStackV4 {
			s.event(ctx, w, r, kind, body)
			return
		}
		// ChirpStack v4's status, join and log events become points as
		// they do from its MQTT feed; the others are routed or counted.
		up, err := s.parser.ParseEvent(kind, r.URL.Path, body)
		switch {
		case err != nil:
			s.malformed(ctx, w, r, body, err)
		case up.Kind == gateway.KindIgnored:
			s.event(ctx, w, r, kind, body)
		default:
			s.deviceEvent(ctx, w, r, kind, up, h)
		}
		return
	}
	up, err := s.parser.Parse(r.URL.Path, body)
	if err == nil && up.Kind != gateway.KindUplink {
		// The Things Stack's joins become points as they do from its
		// MQTT feed; other messages the parser knows are routed or counted.
		kind := ttsKind(body)
		if up.Kind == gateway.KindIgnored {
			s.event(ctx, w, r, kind, body)
		} else {
			s.deviceEvent(ctx, w, r, kind, up, h)
		}
		return
	}
	if err != nil {
		// The Things Stack says what a message is in its body only: read
		// that once the parser refused it as an uplink, so that uplinks,
		// nearly all of the traffic, are read once.
		if s.cfg.Format == mqtt.FormatTTSV3 {
			if kind := ttsKind(body); kind != EventUp {
				s.event(ctx, w, r, kind, body)
				return
			}
		}
		s.malformed(ctx, w, r, body, err)
		return
	}
	if err := h(ctx, up); err != nil {
		s.count("not_taken")
		s.msgLog.Warn().Err(err).Str("dev_eui", up.DevEUI.String()).Msg("uplink not taken: answered 503 so the sender retries")
		s.unavailable(w, r, "not stored: "+err.Error()+": retry later")
		return
	}
	s.count("uplinks")
	w.WriteHeader(http.StatusNoContent)
}

// pathMatches: the configured path exactly, and below it when it ends in /.
func (s *Source) pathMatches(p string) bool {
	if strings.HasSuffix(s.cfg.Path, "/") {
		return strings.HasPrefix(p, s.cfg.Path) || p+"/" == s.cfg.Path
	}
	return p == s.cfg.Path
}

// readBody reads the body up to MaxBodyBytes. A declared length over it is
// refused before a byte is read; a longer chunked body is cut off at the
// bound. Either way the connection is closed after the answer, so the rest
// is never read.
func (s *Source) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	limit := int64(s.cfg.MaxBodyBytes)
	if r.ContentLength > limit {
		s.count("too_large")
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body of %d bytes is over this source's max_body_bytes %d", r.ContentLength, limit)
	}
	size := r.ContentLength
	if size < 0 {
		size = 4096
	}
	buf := make([]byte, 0, size+1)
	rd := http.MaxBytesReader(w, r.Body, limit)
	for {
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			var mbe *http.MaxBytesError
			switch {
			case errors.As(err, &mbe):
				s.count("too_large")
				return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body over this source's max_body_bytes %d", limit)
			case errors.Is(err, io.EOF):
				return buf, 0, nil
			}
			return nil, http.StatusBadRequest, fmt.Errorf("reading the body: %w", err)
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
	}
}

// deviceEvent hands a device event the parser read (a join, a status, a
// log event) to the pipeline, which writes its points, and answers 204
// once they are in the spool.
func (s *Source) deviceEvent(ctx context.Context, w http.ResponseWriter, r *http.Request, kind string, up gateway.Uplink, h gateway.Handler) {
	s.answerEvent(w, r, kind, h(ctx, up))
}

// event hands a message that is not an uplink to its route, by default
// counting it.
func (s *Source) event(ctx context.Context, w http.ResponseWriter, r *http.Request, kind string, body []byte) {
	var eh EventHandler
	if s.events != nil {
		eh = s.events(s.cfg.Format, kind)
	}
	var err error
	if eh != nil {
		err = eh(ctx, Event{Source: s.cfg.Name, Format: s.cfg.Format, Type: kind, Body: body})
	}
	s.answerEvent(w, r, kind, err)
}

// answerEvent answers an event message by what taking it returned: 503
// with Retry-After when it was not taken, so the sender retries; else 204,
// counted by kind.
func (s *Source) answerEvent(w http.ResponseWriter, r *http.Request, kind string, err error) {
	if err != nil {
		s.count("not_taken")
		s.msgLog.Warn().Err(err).Str("event", kind).Msg("event not taken: answered 503 so the sender retries")
		s.unavailable(w, r, "not stored: "+err.Error()+": retry later")
		return
	}
	s.count("events." + kind)
	w.WriteHeader(http.StatusNoContent)
}

// malformed keeps a message the parser refused as a dead letter and
// answers 400 with the reason; if even the dead letter is not kept, 503,
// so the sender tries again.
func (s *Source) malformed(ctx context.Context, w http.ResponseWriter, r *http.Request, body []byte, err error) {
	dl := mqtt.DeadLetterOf(s.cfg.Name, r.URL.Path, body, err)
	if perr := s.dl.Put(ctx, dl); perr != nil {
		s.count("not_taken")
		s.msgLog.Error().Err(perr).Msg("malformed message not kept as a dead letter: answered 503 so the sender retries")
		s.unavailable(w, r, "malformed, and not kept: "+perr.Error()+": retry later")
		return
	}
	s.count("malformed")
	s.msgLog.Warn().Str("reason", string(dl.Reason)).Err(err).Msg("message kept as a dead letter")
	s.answer(w, r, http.StatusBadRequest, string(dl.Reason)+": "+err.Error()+" (kept as a dead letter)")
}

// unavailable answers 503 with Retry-After: the message was not taken.
func (s *Source) unavailable(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Set("Retry-After", s.retryAfter)
	s.answer(w, r, http.StatusServiceUnavailable, msg)
}

// answer writes a short plain-text answer. Unless the body was read to
// its end, the connection is closed after it, so an unread (perhaps huge)
// body is never read.
func (s *Source) answer(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if status != http.StatusBadRequest || r.ContentLength < 0 {
		w.Header().Set("Connection", "close")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

func (s *Source) count(name string) {
	if s.counters != nil {
		s.counters.Inc("webhook." + name)
	}
}

// protobufType returns the media type of a protobuf body, with the hint
// that fixes the sender, or "" for anything else (JSON, or no type: the
// parser decides).
func protobufType(contentType, format string) (string, string) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", ""
	}
	switch mt {
	case "application/octet-stream", "application/x-protobuf", "application/protobuf", "application/vnd.google.protobuf":
	default:
		return "", ""
	}
	switch format {
	case mqtt.FormatTTSV3:
		return mt, "set the webhook's format to JSON in The Things Stack"
	case mqtt.FormatChirpStackV4:
		return mt, "set the HTTP integration's payload encoding to JSON in ChirpStack"
	case mqtt.FormatChirpStackV3:
		return mt, "set the HTTP integration's payload marshaler to JSON (or JSON_V3) in ChirpStack"
	}
	return mt, "send JSON with Content-Type: application/json"
}
