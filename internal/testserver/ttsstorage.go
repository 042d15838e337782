package testserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TTSStorage is a test server that speaks The Things Stack Storage
// Integration's documented HTTP API (GET
// /api/v3/as/applications/{id}/packages/storage/uplink_message, with
// after, before, limit and order=received_at; a Bearer API key; newline-
// delimited {"result": ApplicationUp} lines; errors as The Things Stack's
// JSON status). The real Storage Integration is part of a network server
// that cannot run here; this stands in for it, and can misbehave on
// request: stall, rate-limit, revoke the key, add lines that are no
// uplinks. after and before are exclusive.
type TTSStorage struct {
	srv *httptest.Server
	app string

	mu       sync.Mutex
	key      string
	revoked  bool
	stored   []storedUp // by received_at
	requests []url.Values
	// stallAfter > 0: a response stops after that many lines and sends
	// nothing more until the client goes away.
	stallAfter int
	// limit429 > 0: that many requests are answered 429 first.
	limit429 int
	// extra lines are sent at the start of every response.
	extra [][]byte
	// ignoreLimit sends every stored message whatever limit asks.
	ignoreLimit bool
}

// IgnoreLimit makes responses hold every stored message after after,
// as a server that ignores limit would.
func (s *TTSStorage) IgnoreLimit(on bool) { s.mu.Lock(); s.ignoreLimit = on; s.mu.Unlock() }

type storedUp struct {
	at time.Time
	up []byte
}

// StartTTSStorage starts the server for application app, accepting key.
func StartTTSStorage(t TB, app, key string) *TTSStorage {
	s := &TTSStorage{app: app, key: key}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the server's base URL, what storage.url holds.
func (s *TTSStorage) URL() string { return s.srv.URL }

// Store adds ApplicationUp messages; each must have a top-level received_at.
func (s *TTSStorage) Store(ups ...[]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, up := range ups {
		var head struct {
			ReceivedAt time.Time `json:"received_at"`
		}
		if err := json.Unmarshal(up, &head); err != nil || head.ReceivedAt.IsZero() {
			return fmt.Errorf("testserver: stored message without received_at: %v", err)
		}
		// One line per message, as the server marshals it.
		var line bytes.Buffer
		if err := json.Compact(&line, up); err != nil {
			return err
		}
		s.stored = append(s.stored, storedUp{head.ReceivedAt, line.Bytes()})
	}
	sort.SliceStable(s.stored, func(i, j int) bool { return s.stored[i].at.Before(s.stored[j].at) })
	return nil
}

// Revoke makes the key invalid, as an expired or deleted API key is.
func (s *TTSStorage) Revoke(revoked bool) { s.mu.Lock(); s.revoked = revoked; s.mu.Unlock() }

// StallAfter makes every response stop after n lines (0: never).
func (s *TTSStorage) StallAfter(n int) { s.mu.Lock(); s.stallAfter = n; s.mu.Unlock() }

// RateLimit answers the next n requests 429 with X-Rate-Limit-Retry: 1.
func (s *TTSStorage) RateLimit(n int) { s.mu.Lock(); s.limit429 = n; s.mu.Unlock() }

// ExtraLines sends lines at the start of every response.
func (s *TTSStorage) ExtraLines(lines ...[]byte) { s.mu.Lock(); s.extra = lines; s.mu.Unlock() }

// Requests returns the query of every request that reached the handler.
func (s *TTSStorage) Requests() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.requests...)
}

// tsError writes an error as The Things Stack's HTTP API does.
func tsError(w http.ResponseWriter, status, code int, name, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"code": code, "message": "error:pkg/" + name + " (" + msg + ")",
		"details": []map[string]any{{"@type": "type.googleapis.com/ttn.lorawan.v3.ErrorDetails", "name": name, "message_format": msg, "code": code}},
	})
}

func (s *TTSStorage) serve(w http.ResponseWriter, r *http.Request) {
	want := "/api/v3/as/applications/" + s.app + "/packages/storage/uplink_message"
	s.mu.Lock()
	s.requests = append(s.requests, r.URL.Query())
	key, revoked, stall, extra := s.key, s.revoked, s.stallAfter, s.extra
	limited := s.limit429 > 0
	if limited {
		s.limit429--
	}
	s.mu.Unlock()
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case !ok || auth == "":
		tsError(w, http.StatusUnauthorized, 16, "auth:unauthenticated", "unauthenticated")
		return
	case auth != key || revoked:
		tsError(w, http.StatusUnauthorized, 16, "identityserver:api_key_not_found", "API key not found")
		return
	case r.URL.Path != want:
		tsError(w, http.StatusNotFound, 5, "applicationserver:application_not_found", "application not found")
		return
	case limited:
		w.Header().Set("X-Rate-Limit-Limit", "10")
		w.Header().Set("X-Rate-Limit-Available", "0")
		w.Header().Set("X-Rate-Limit-Reset", "1")
		w.Header().Set("X-Rate-Limit-Retry", "1")
		tsError(w, http.StatusTooManyRequests, 8, "ratelimit:rate_limit_exceeded", "rate limit exceeded")
		return
	}
	q := r.URL.Query()
	var after, before time.Time
	for _, p := range []struct {
		k string
		t *time.Time
	}{{"after", &after}, {"before", &before}} {
		if v := q.Get(p.k); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				tsError(w, http.StatusBadRequest, 3, "validate:field_invalid", p.k+" is not a timestamp")
				return
			}
			*p.t = t
		}
	}
	limit := 1000
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			tsError(w, http.StatusBadRequest, 3, "validate:field_invalid", "limit")
			return
		}
		limit = n
	}
	if o := q.Get("order"); o != "" && o != "received_at" {
		tsError(w, http.StatusBadRequest, 3, "validate:field_invalid", "order: this server sorts by received_at only")
		return
	}
	s.mu.Lock()
	var page [][]byte
	for _, st := range s.stored {
		if len(page) == limit && !s.ignoreLimit {
			break
		}
		if (after.IsZero() || st.at.After(after)) && (before.IsZero() || st.at.Before(before)) {
			page = append(page, st.up)
		}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	lines := 0
	send := func(b []byte) bool {
		if stall > 0 && lines == stall {
			if fl != nil {
				fl.Flush()
			}
			<-r.Context().Done() // the client gives up, or the server closes
			return false
		}
		lines++
		_, err := w.Write(append(b, '\n'))
		return err == nil
	}
	for _, e := range extra {
		if !send(e) {
			return
		}
	}
	for _, up := range page {
		if !send(append(append([]byte(`{"result":`), up...), '}')) {
			return
		}
	}
}
