package httpapi

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway/deadletter"
	"github.com/sensorgate/sensorgate/gateway/redecode"
	"github.com/sensorgate/sensorgate/gateways"
)

// DefaultMaxBodyBytes bounds a request body: a 10,000-device CSV with
// session keys is about 2 MiB, so 16 MiB leaves room without letting one
// request exhaust memory.
const DefaultMaxBodyBytes = 16 << 20

// DefaultMaxImportBytes bounds a CSV import: 1,000,000 devices with name,
// model and two tags are about 75 MB. The import streams, so the bound is
// about how long one request may hold the registry, not memory.
const DefaultMaxImportBytes = 256 << 20

// importPath is the route of bulk imports, whose body limit is its own.
const importPath = "/api/v1/devices/import"

// Timeouts of the HTTP server. Writes get long because a replay of many
// dead letters answers only when it is done.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = time.Minute
	writeTimeout      = 5 * time.Minute
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = 10 * time.Second
	checkTimeout      = 2 * time.Second
)

// Config is the API's listener. The daemon fills it from the config's
// http section.
type Config struct {
	// Listen is host:port; port 0 picks a free port (tests).
	Listen string
	// Token is the bearer token every /api/ call must carry: required
	// (the daemon generates one when the config has none), visible ASCII
	// without spaces (CheckToken).
	Token string
	// AllowedHosts are names (or addresses) clients may reach the API by
	// beyond those of Listen; see hostPolicy.
	AllowedHosts []string
	// TLSCert and TLSKey are PEM files; both set serves HTTPS.
	TLSCert, TLSKey string
	// MaxBodyBytes bounds request bodies (DefaultMaxBodyBytes when 0).
	MaxBodyBytes int64
	// MaxImportBytes bounds a CSV device import, which is read as it is
	// checked rather than held (DefaultMaxImportBytes when 0).
	MaxImportBytes int64
}

// Decoders resolves and lists decoder models; *decoders.Registry
// implements it.
type Decoders interface {
	Lookup(model string) (decoders.Decoder, bool)
	Models() []string
}

// Check is one readiness condition: nil means ready.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
	// Advisory: a failure is reported under Name but does not make the
	// daemon not ready, for trouble that costs some uplinks while the
	// daemon does its job for the rest (a codec overrunning its limits).
	Advisory bool
}

// Options are what the API serves. A nil member turns its routes into
// 503 answers saying what is not configured, so a partial wiring (a test,
// a tool) still answers clearly.
type Options struct {
	Store    *devices.Store
	Health   *devices.Health
	Unknowns *devices.Unknowns
	Decoders Decoders
	// Gateways is gateway health and entries; GatewayStore saves the
	// API's changes to the entries.
	Gateways     *gateways.Table
	GatewayStore *gateways.Store
	// DeadLetters lists letters; Replayer replays them.
	DeadLetters *deadletter.File
	Replayer    *deadletter.Replayer
	// Redecode runs re-decode jobs (POST /api/v1/redecode); the status
	// page shows them.
	Redecode *redecode.Jobs
	// Ready are the /readyz conditions, all of which must hold.
	Ready []Check
	// Metrics serves GET /metrics (the Prometheus registry); Status
	// reports the overview of GET /api/v1/status, which the status page
	// shows. Version is shown on the page.
	Metrics http.Handler
	Status  StatusFunc
	Version string
	Log     zerolog.Logger
	// Now is the clock (tests set it).
	Now func() time.Time
}

// Server is the HTTP API: /healthz, /readyz, /metrics, the OpenAPI
// description, the status page, and the /api/v1 routes for devices,
// health, unknown devices, dead letters, decoding and the overview.
type Server struct {
	cfg    Config
	opt    Options
	mux    *http.ServeMux
	routes []string // "METHOD /path", for the OpenAPI test
	hosts  hostPolicy

	mu sync.Mutex
	ln net.Listener
}

// New checks cfg and returns a server with every route registered; call
// Listen and Run to serve, or use Handler in tests.
func New(cfg Config, opt Options) (*Server, error) {
	if cfg.MaxImportBytes <= 0 {
		cfg.MaxImportBytes = DefaultMaxImportBytes
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("httpapi: TLS needs both a certificate and a key: set http.tls_cert and http.tls_key, or neither")
	}
	if err := CheckToken(cfg.Token); err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &Server{cfg: cfg, opt: opt, mux: http.NewServeMux(), hosts: newHostPolicy(cfg.Listen, cfg.AllowedHosts)}
	s.register()
	return s, nil
}

// Handle adds a route (a net/http pattern with a method, such as
// "GET /metrics"). Public routes skip the bearer token; everything that
// reads or changes devices and dead letters must not be public. The route
// must also be described in openapi.yaml (a test checks).
func (s *Server) Handle(pattern string, h http.Handler, public bool) {
	s.routes = append(s.routes, pattern)
	if !public {
		h = s.authenticated(h)
	}
	s.mux.Handle(pattern, h)
}

func (s *Server) handle(pattern string, h http.HandlerFunc) { s.Handle(pattern, h, false) }

// Routes lists the registered patterns.
func (s *Server) Routes() []string { return append([]string(nil), s.routes...) }

// Handler is the API with body limits, the browser guards (guard.go)
// and the not-found answer in JSON.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hosts.allows(r.Host) {
			writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf("host %q is not this API's: reach it as %s, or add the name to http.allowed_hosts", r.Host, s.hosts), nil)
			return
		}
		limit := s.cfg.MaxBodyBytes
		if r.URL.Path == importPath {
			limit = s.cfg.MaxImportBytes // importDevices: CSV streams, YAML gets MaxBodyBytes
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		if _, pattern := s.mux.Handler(r); pattern == "" {
			// The mux would answer in plain text; the API answers in JSON.
			if allowed := s.allowedMethods(r); allowed != "" {
				w.Header().Set("Allow", allowed)
				writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s: use %s", r.Method, r.URL.Path, allowed), nil)
				return
			}
			writeError(w, http.StatusNotFound, fmt.Sprintf("no route %s %s: see /openapi.json", r.Method, r.URL.Path), nil)
			return
		}
		if changesState(r.Method) && !s.browserSafe(w, r) {
			return
		}
		s.mux.ServeHTTP(w, r)
	})
}

// allowedMethods lists the methods that have a route for r's path.
func (s *Server) allowedMethods(r *http.Request) string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := s.mux.Handler(probe); p != "" {
			out = append(out, m)
		}
	}
	return strings.Join(out, ", ")
}

// authenticated requires the bearer token, compared in constant time.
// The configured token has no spaces (CheckToken), so trimming the one
// sent only forgives a client's padding; both sides are compared as they
// are otherwise.
func (s *Server) authenticated(h http.Handler) http.Handler {
	want := []byte(s.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		scheme, token, ok := strings.Cut(auth, " ")
		if auth == "" || !ok || !strings.EqualFold(scheme, "Bearer") {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sensorgate"`)
			writeError(w, http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <token>, the config's http.token or else the file state_dir/http.token", nil)
			return
		}
		if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sensorgate", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "wrong bearer token: use the config's http.token or else the file state_dir/http.token", nil)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Listen opens the listener, so that a taken port fails the daemon's
// start instead of a goroutine later.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("httpapi: listen on %s: %w (is another sensorgate running? change http.listen)", s.cfg.Listen, err)
	}
	s.ln = ln
	return nil
}

// Addr is the listening address (after Listen), for tests and logs.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Run serves until ctx ends, then shuts down gracefully: new connections
// are refused and in-flight requests get shutdownTimeout to finish.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		// net/http's own errors (TLS handshakes, malformed requests) are
		// the clients' problems: logged, never answered.
		ErrorLog: stdlog.New(s.opt.Log, "http: ", 0),
	}
	tlsOn := s.cfg.TLSCert != ""
	if tlsOn {
		// Load now so a bad file is reported as such, not as a handshake
		// failure per client.
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			s.ln.Close()
			return fmt.Errorf("httpapi: load http.tls_cert/http.tls_key: %w", err)
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	s.opt.Log.Info().Str("listen", s.Addr()).Bool("tls", tlsOn).Stringer("hosts", s.hosts).Msg("HTTP API serving")
	done := make(chan error, 1)
	go func() {
		if tlsOn {
			done <- srv.ServeTLS(s.ln, "", "")
		} else {
			done <- srv.Serve(s.ln)
		}
	}()
	select {
	case err := <-done:
		return fmt.Errorf("httpapi: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		srv.Close()
	}
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("httpapi: shutdown: %w", err)
	}
	return nil
}

// apiError is every error answer: a sentence for the operator and, where
// useful, structured detail (an import report, the checks that failed).
type apiError struct {
	Error  string `json:"error"`
	Detail any    `json:"detail,omitempty"`
}

func writeError(w http.ResponseWriter, status int, msg string, detail any) {
	writeJSON(w, status, apiError{Error: msg, Detail: detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing to tell it
}

// readBody reads the whole body, answering 413 past the limit.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over %d bytes: split the import, or raise http.max_body_bytes", tooBig.Limit), nil)
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "could not read the request body: "+err.Error(), nil)
		return nil, false
	}
	return b, true
}

// decodeJSON reads a JSON body into v strictly: unknown fields, trailing
// data and an empty body are errors, each answered 400 with where and
// what (413 past the size limit).
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	b, ok := readBody(w, r)
	if !ok {
		return false
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		writeError(w, http.StatusBadRequest, "request body is empty: send a JSON object", nil)
		return false
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("data after the JSON value")
	}
	if err == nil {
		return true
	}
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		msg    string
	)
	switch {
	case errors.As(err, &syntax):
		msg = fmt.Sprintf("request body is not valid JSON: %v (at byte %d)", syntax, syntax.Offset)
	case errors.As(err, &typ):
		msg = fmt.Sprintf("request body: field %q must be %s, not a JSON %s", typ.Field, typ.Type, typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		msg = "request body is truncated JSON"
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		msg = "request body: " + strings.TrimPrefix(err.Error(), "json: ") + ": check the field names against /openapi.json"
	default:
		msg = "request body: " + err.Error()
	}
	writeError(w, http.StatusBadRequest, msg, nil)
	return false
}
