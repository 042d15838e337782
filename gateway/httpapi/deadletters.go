package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/deadletter"
)

// defaultListLimit bounds a dead-letter listing unless ?limit= says
// otherwise: a broken feed can leave millions.
const defaultListLimit = 1000

// ParseSince reads a point in time as RFC 3339, or as a duration back
// from now ("90m", "24h"), the form an operator types after an incident.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-05-04T08:00:00Z) nor a duration back from now (24h)", s)
}

// reasons are the dead-letter reasons a filter may name.
var reasons = []gateway.Reason{
	gateway.ReasonMalformed, gateway.ReasonUnknownDevice, gateway.ReasonUnknownModel, gateway.ReasonDecode,
	gateway.ReasonNormalize, gateway.ReasonRejected, gateway.ReasonReplay, gateway.ReasonBadMIC, gateway.ReasonEncrypted,
	gateway.ReasonDeviceMismatch, gateway.ReasonBadTime, gateway.ReasonUnknownDeviceLimit,
}

func checkReason(r string) error {
	if r == "" {
		return nil
	}
	var names []string
	for _, k := range reasons {
		if string(k) == r {
			return nil
		}
		names = append(names, string(k))
	}
	return fmt.Errorf("reason %q: use one of %s", r, strings.Join(names, ", "))
}

// filterQuery reads a dead-letter filter from the query string.
func (s *Server) filterQuery(r *http.Request) (deadletter.Filter, error) {
	q := r.URL.Query()
	f := deadletter.Filter{Reason: gateway.Reason(q.Get("reason")), Source: q.Get("source"), DevEUI: strings.ToLower(q.Get("dev_eui")), Limit: defaultListLimit}
	if err := checkReason(q.Get("reason")); err != nil {
		return f, err
	}
	var err error
	if f.Since, err = ParseSince(q.Get("since"), s.opt.Now()); err != nil {
		return f, fmt.Errorf("since: %w", err)
	}
	if f.Until, err = ParseSince(q.Get("until"), s.opt.Now()); err != nil {
		return f, fmt.Errorf("until: %w", err)
	}
	if v := q.Get("replayed"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, fmt.Errorf("replayed=%q: use true or false", v)
		}
		f.Replayed = &b
	}
	if v := q.Get("cursor"); v != "" {
		// Oldest first it bounds ids from below, newest first from above:
		// listDeadLetters moves it to Before for order=newest.
		if f.After, err = strconv.ParseUint(v, 10, 64); err != nil || f.After == 0 {
			return f, fmt.Errorf("cursor=%.40q is not one this API gave: pass next_cursor of the previous page as it is", v)
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 0 {
			return f, fmt.Errorf("limit=%q: give a count, 0 for all", v)
		}
	}
	return f, nil
}

func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	if s.opt.DeadLetters == nil {
		unavailable(w, "the dead-letter store")
		return
	}
	f, err := s.filterQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	switch o := r.URL.Query().Get("order"); o {
	case "", "oldest":
	case "newest":
		f.Newest = true
		f.Before, f.After = f.After, 0
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("order=%q: use oldest or newest", o), nil)
		return
	}
	// The letters are streamed as the store reads them, so a listing of
	// all (limit=0) of a large store does not hold them in memory.
	n := 0
	var last uint64
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	err = s.opt.DeadLetters.Each(r.Context(), f, func(l deadletter.Letter) error {
		sep := ","
		if n == 0 {
			startJSON(w)
			sep = `{"dead_letters":[`
		}
		n++
		last = l.ID
		if _, err := io.WriteString(w, sep); err != nil {
			return err
		}
		return enc.Encode(l)
	})
	if err != nil {
		s.opt.Log.Error().Err(err).Int("sent", n).Msg("read dead letters")
		if n == 0 {
			writeError(w, http.StatusInternalServerError, err.Error(), nil)
		}
		return // a body cut short is not valid JSON: the client sees the failure
	}
	if n == 0 {
		startJSON(w)
		_, _ = io.WriteString(w, `{"dead_letters":[`)
	}
	// A full page may be followed by more; the client asks and may get
	// an empty last page, which costs less than looking ahead here.
	next := ""
	if f.Limit > 0 && n == f.Limit {
		next = strconv.FormatUint(last, 10)
	}
	_, _ = fmt.Fprintf(w, "],\"count\":%d,\"limit\":%d,\"next_cursor\":%q}\n", n, f.Limit, next)
}

// startJSON sends writeJSON's headers and status 200 for a body written
// piece by piece.
func startJSON(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
}

func pathID(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("dead-letter id %q: ids are 1, 2, 3, … as GET /api/v1/deadletters lists them", r.PathValue("id")), nil)
		return 0, false
	}
	return id, true
}

func (s *Server) getDeadLetter(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if s.opt.DeadLetters == nil {
		unavailable(w, "the dead-letter store")
		return
	}
	l, found, err := s.opt.DeadLetters.Get(r.Context(), id)
	switch {
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error(), nil)
	case !found:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no dead letter %d", id), nil)
	default:
		writeJSON(w, http.StatusOK, l)
	}
}

// ReplayRequest selects the dead letters to replay; an empty selection
// replays every letter not yet replayed.
type ReplayRequest struct {
	IDs    []uint64 `json:"ids"`
	Reason string   `json:"reason"`
	Source string   `json:"source"`
	DevEUI string   `json:"dev_eui"`
	Since  string   `json:"since"` // RFC 3339 or a duration back from now
	Until  string   `json:"until"`
	// Force replays letters that were replayed before too.
	Force bool `json:"force"`
}

// ReplayResponse is the outcome of a replay, per letter and counted.
type ReplayResponse struct {
	Results  []deadletter.Result `json:"results"`
	Replayed int                 `json:"replayed"`
	Failed   int                 `json:"failed"`
	Skipped  int                 `json:"skipped"`
}

func (s *Server) replay(w http.ResponseWriter, r *http.Request) {
	var req ReplayRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	f := deadletter.Filter{IDs: req.IDs, Reason: gateway.Reason(req.Reason), Source: req.Source, DevEUI: strings.ToLower(req.DevEUI)}
	err := checkReason(req.Reason)
	if err == nil {
		f.Since, err = ParseSince(req.Since, s.opt.Now())
	}
	if err == nil {
		f.Until, err = ParseSince(req.Until, s.opt.Now())
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	s.runReplay(w, r, f, req.Force)
}

func (s *Server) replayOne(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	force, ok := boolParam(w, r, "force")
	if !ok {
		return
	}
	if s.opt.DeadLetters != nil {
		if _, found, err := s.opt.DeadLetters.Get(r.Context(), id); err == nil && !found {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no dead letter %d", id), nil)
			return
		}
	}
	s.runReplay(w, r, deadletter.Filter{IDs: []uint64{id}}, force)
}

func (s *Server) runReplay(w http.ResponseWriter, r *http.Request, f deadletter.Filter, force bool) {
	if s.opt.Replayer == nil {
		unavailable(w, "dead-letter replay")
		return
	}
	results, err := s.opt.Replayer.Replay(r.Context(), f, force)
	resp := ReplayResponse{Results: nonNil(results)}
	for _, res := range results {
		switch res.Status {
		case deadletter.StatusReplayed:
			resp.Replayed++
		case deadletter.StatusFailed:
			resp.Failed++
		case deadletter.StatusSkipped:
			resp.Skipped++
		}
	}
	if err != nil {
		s.opt.Log.Error().Err(err).Int("replayed", resp.Replayed).Msg("dead-letter replay stopped")
		writeError(w, http.StatusServiceUnavailable, err.Error(), resp)
		return
	}
	s.opt.Log.Info().Int("replayed", resp.Replayed).Int("failed", resp.Failed).Int("skipped", resp.Skipped).Msg("dead letters replayed")
	writeJSON(w, http.StatusOK, resp)
}
