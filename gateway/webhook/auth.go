package webhook

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// authenticator checks a request's credentials. Secrets are kept as
// SHA-256 digests and compared in constant time, digest to digest, so
// neither the time taken nor an early exit tells a guesser how much of a
// secret (or of its length) was right.
type authenticator struct {
	method string // "header", "basic", "bearer" or "none"
	header string
	secret [sha256.Size]byte // header value, password or token
	user   [sha256.Size]byte
}

func newAuthenticator(a Auth) authenticator {
	au := authenticator{method: a.Method(), header: http.CanonicalHeaderKey(a.Header)}
	switch au.method {
	case "header":
		au.secret = sha256.Sum256([]byte(a.Value))
	case "basic":
		au.user = sha256.Sum256([]byte(a.Username))
		au.secret = sha256.Sum256([]byte(a.Password))
	case "bearer":
		au.secret = sha256.Sum256([]byte(a.BearerToken))
	}
	return au
}

// ok reports whether r carries the configured credentials.
func (a authenticator) ok(r *http.Request) bool {
	switch a.method {
	case "none":
		return true
	case "header":
		vs := r.Header.Values(a.header)
		return len(vs) == 1 && a.equal(a.secret, vs[0])
	case "basic":
		user, pass, ok := r.BasicAuth()
		// Both compared whatever the first gives.
		u, p := a.equal(a.user, user), a.equal(a.secret, pass)
		return ok && u && p
	case "bearer":
		h := r.Header.Get("Authorization")
		scheme, token, found := strings.Cut(h, " ")
		return found && strings.EqualFold(scheme, "Bearer") && a.equal(a.secret, strings.TrimSpace(token))
	}
	return false
}

func (a authenticator) equal(want [sha256.Size]byte, got string) bool {
	g := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(want[:], g[:]) == 1
}

// challenge is the WWW-Authenticate header of a 401, "" for none.
func (a authenticator) challenge() string {
	switch a.method {
	case "basic":
		return `Basic realm="sensorgate", charset="UTF-8"`
	case "bearer":
		return `Bearer realm="sensorgate"`
	}
	return ""
}
