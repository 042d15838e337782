package httpapi

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"net/http"
	"sync"

	"gopkg.in/yaml.v3"
)

// ErrDegraded, wrapped by a check's error, reports trouble the daemon
// works around (InfluxDB away while the spool keeps the points): the
// reason shows under the check's name and the daemon stays ready.
var ErrDegraded = errors.New("degraded")

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz runs every check at once, each bounded by checkTimeout, and is
// ready only when all pass, advisory ones aside (they report only). Its answer names each check, so an operator
// sees which part is down.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	results := make(map[string]string, len(s.opt.Ready))
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		ready = true
	)
	for _, c := range s.opt.Ready {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
			defer cancel()
			err := c.Check(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				results[c.Name] = err.Error()
				ready = ready && (c.Advisory || errors.Is(err, ErrDegraded))
			} else {
				results[c.Name] = "ok"
			}
		}()
	}
	wg.Wait()
	if !ready {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "checks": results})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": results})
}

// openAPIYAML is the hand-written API description; a test checks that
// every registered route is in it.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// openAPIJSON is the same document as JSON, converted once.
var openAPIJSON = sync.OnceValues(func() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(openAPIYAML, &doc); err != nil {
		return nil, err
	}
	return json.MarshalIndent(doc, "", "  ")
})

func serveOpenAPIJSON(w http.ResponseWriter, _ *http.Request) {
	b, err := openAPIJSON()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "openapi.yaml does not convert to JSON: "+err.Error(), nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func serveOpenAPIYAML(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(openAPIYAML)
}
