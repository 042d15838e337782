package httpapi

import (
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
)

// The guards below keep a web page in a browser on the operator's machine
// (or LAN) from using the API, token or not:
//
//   - hostPolicy stops DNS rebinding: a page on attacker.example whose
//     name is re-pointed at 127.0.0.1 reaches the daemon with
//     "Host: attacker.example", which is not one of the daemon's names.
//   - A state-changing request must say it carries JSON (or an import
//     type). None of those is a type a page may send cross-origin without
//     asking first (a CORS preflight, which the API never grants), so a
//     form post or a text/plain fetch is refused before it changes
//     anything.
//   - A state-changing request with an Origin must come from the API's own
//     origin; a browser always sends Origin on such requests.
//
// The bearer token comes on top: a browser never adds it on its own (it
// is not a cookie), so a foreign page cannot send it.

// CheckToken is the rule for http.token and the generated token file:
// non-empty, visible ASCII only. A space or newline (a stray paste, a
// file read with its line break) would never match what a client sends,
// and a browser cannot send non-ASCII in a header.
func CheckToken(token string) error {
	if token == "" {
		return errors.New("no bearer token: set http.token, or let the daemon generate one in state_dir")
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("the bearer token has a space, a control or a non-ASCII character at byte %d: use visible ASCII only (tokens are compared exactly)", i)
		}
	}
	return nil
}

// changesState reports whether a request of this method may change
// something: everything but reads.
func changesState(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// bodyTypes are the media types a state-changing request may declare:
// JSON, and the device import's CSV and YAML. None is CORS-safelisted.
var bodyTypes = []string{"application/json", "text/csv", "application/csv", "application/yaml", "application/x-yaml", "text/yaml"}

// browserSafe checks a state-changing request's Content-Type and Origin,
// answering 415 or 403 when they are not what a client of this API
// sends.
func (s *Server) browserSafe(w http.ResponseWriter, r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || !slices.Contains(bodyTypes, mt) {
		got := "none"
		if ct != "" {
			got = fmt.Sprintf("%q", ct)
		}
		writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("%s %s needs Content-Type: application/json (text/csv or application/yaml for an import), got %s; also without a body", r.Method, r.URL.Path, got), nil)
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("origin %q is not this API's (%s): a page of another site cannot change devices or replay dead letters", o, r.Host), nil)
		return false
	}
	return true
}

// sameOrigin reports whether an Origin header names the host:port the
// request was sent to. The scheme only supplies the default port: one
// port is one server, and a TLS proxy in front changes the scheme.
// "null" (a sandboxed frame, a file) is never the same.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.User != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	def := "80"
	if u.Scheme == "https" {
		def = "443"
	}
	return strings.EqualFold(withPort(u.Host, def), withPort(host, def))
}

// withPort writes host as host:port, adding def when it has no port.
func withPort(host, def string) string {
	if h, p, err := net.SplitHostPort(host); err == nil {
		return net.JoinHostPort(h, p)
	}
	return net.JoinHostPort(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), def)
}

// hostPolicy is the set of Host headers the API answers: the names of its
// listen address, and http.allowed_hosts. Ports are not compared (a proxy
// or a port forward changes them, and rebinding is about names).
//
//   - A loopback listen address (127.0.0.1, ::1, localhost) answers to
//     127.0.0.1, localhost and [::1].
//   - Every interface (0.0.0.0, ::, or no host) answers to any IP address
//     (an address cannot be re-pointed as a name can), localhost and the
//     machine's host name.
//   - Another address or name answers to itself.
type hostPolicy struct {
	names map[string]bool // lower case, without a trailing dot; IPs in net.IP.String form
	anyIP bool
	list  []string // for messages, in the order given
}

func newHostPolicy(listen string, allowed []string) hostPolicy {
	p := hostPolicy{names: map[string]bool{}}
	add := func(name string) {
		if n := normalHost(name); n != "" && !p.names[n] {
			p.names[n] = true
			p.list = append(p.list, n)
		}
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = listen
	}
	ip := net.ParseIP(host)
	switch {
	case host == "" || (ip != nil && ip.IsUnspecified()):
		p.anyIP = true
		add("localhost")
		if h, err := os.Hostname(); err == nil {
			add(h)
		}
	case strings.EqualFold(host, "localhost") || (ip != nil && ip.IsLoopback()):
		add(host)
		add("127.0.0.1")
		add("localhost")
		add("::1")
	default:
		add(host)
	}
	for _, h := range allowed {
		add(h)
	}
	return p
}

// normalHost is a Host header's host part as the policy keeps names: no
// port, no brackets, lower case, no trailing dot, an IP in canonical form.
func normalHost(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if ip := net.ParseIP(host); ip != nil {
		return ip.String()
	}
	return host
}

func (p hostPolicy) allows(hostport string) bool {
	h := normalHost(hostport)
	if h == "" {
		return false
	}
	if p.anyIP && net.ParseIP(h) != nil {
		return true
	}
	return p.names[h]
}

// String lists the allowed hosts, for messages and the log.
func (p hostPolicy) String() string {
	s := strings.Join(p.list, ", ")
	if p.anyIP {
		s = "any IP address, " + s
	}
	return s
}
