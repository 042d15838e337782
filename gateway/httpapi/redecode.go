package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway/redecode"
)

// RedecodeRequest starts a re-decode (POST /api/v1/redecode). Times are
// RFC 3339 or a duration back from now ("720h").
type RedecodeRequest struct {
	Since         string   `json:"since"`
	Until         string   `json:"until"`
	Devices       []string `json:"devices,omitempty"`
	Model         string   `json:"model,omitempty"`
	Source        string   `json:"source,omitempty"`
	ModelOverride string   `json:"model_override,omitempty"`
	DryRun        bool     `json:"dry_run,omitempty"`
}

// RedecodeJobs is the answer of GET /api/v1/redecode.
type RedecodeJobs struct {
	Jobs []redecode.JobStatus `json:"jobs"`
}

func (s *Server) registerRedecode() {
	s.handle("POST /api/v1/redecode", s.startRedecode)
	s.handle("GET /api/v1/redecode", s.listRedecode)
	s.handle("GET /api/v1/redecode/{id}", s.getRedecode)
	s.handle("DELETE /api/v1/redecode/{id}", s.cancelRedecode)
}

func (s *Server) startRedecode(w http.ResponseWriter, r *http.Request) {
	if s.opt.Redecode == nil {
		unavailable(w, "re-decoding")
		return
	}
	var body RedecodeRequest
	if !decodeJSON(w, r, &body) {
		return
	}
	req, err := s.redecodeRequest(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	st, err := s.opt.Redecode.Start(req)
	switch {
	case errors.Is(err, redecode.ErrBusy):
		writeError(w, http.StatusConflict, fmt.Sprintf("%v (job %d)", err, st.ID), st)
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error(), nil)
	default:
		w.Header().Set("Location", "/api/v1/redecode/"+strconv.Itoa(st.ID))
		writeJSON(w, http.StatusAccepted, st)
	}
}

func (s *Server) redecodeRequest(b RedecodeRequest) (redecode.Request, error) {
	now := s.opt.Now()
	req := redecode.Request{Model: b.Model, Source: b.Source, ModelOverride: b.ModelOverride, DryRun: b.DryRun}
	var err error
	if req.Since, err = ParseSince(b.Since, now); err != nil {
		return req, fmt.Errorf("since: %w", err)
	}
	if req.Until, err = ParseSince(b.Until, now); err != nil {
		return req, fmt.Errorf("until: %w", err)
	}
	if req.Since.IsZero() {
		return req, errors.New("since is required: the start of the range to decode again (RFC 3339, or a duration back from now: 720h)")
	}
	if len(b.Devices) > redecode.MaxDevices {
		return req, fmt.Errorf("%d devices named; at most %d per job", len(b.Devices), redecode.MaxDevices)
	}
	for _, d := range b.Devices {
		e, err := devices.ParseEUI(d)
		if err != nil {
			return req, fmt.Errorf("devices: %q: %w", d, err)
		}
		req.Devices = append(req.Devices, e)
	}
	return req, nil
}

func (s *Server) listRedecode(w http.ResponseWriter, r *http.Request) {
	if s.opt.Redecode == nil {
		unavailable(w, "re-decoding")
		return
	}
	writeJSON(w, http.StatusOK, RedecodeJobs{Jobs: s.opt.Redecode.List()})
}

func (s *Server) getRedecode(w http.ResponseWriter, r *http.Request) {
	s.redecodeJob(w, r, func(id int) (redecode.JobStatus, bool) { return s.opt.Redecode.Get(id) })
}

func (s *Server) cancelRedecode(w http.ResponseWriter, r *http.Request) {
	s.redecodeJob(w, r, func(id int) (redecode.JobStatus, bool) { return s.opt.Redecode.Cancel(id) })
}

func (s *Server) redecodeJob(w http.ResponseWriter, r *http.Request, f func(int) (redecode.JobStatus, bool)) {
	if s.opt.Redecode == nil {
		unavailable(w, "re-decoding")
		return
	}
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("job id %q: ids are 1, 2, 3, … as GET /api/v1/redecode lists them", r.PathValue("id")), nil)
		return
	}
	st, ok := f(id)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no re-decode job %d (the last %d are kept until the daemon restarts)", id, 16), nil)
		return
	}
	writeJSON(w, http.StatusOK, st)
}
