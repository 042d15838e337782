package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateways"
)

// registerGateways adds the gateway routes: health and the operator's
// entries (name, tags) of each gateway.
func (s *Server) registerGateways() {
	s.handle("GET /api/v1/gateways", s.listGateways)
	s.handle("GET /api/v1/gateways/{gateway_id}", s.getGateway)
	s.handle("PUT /api/v1/gateways/{gateway_id}", s.putGateway)
	s.handle("DELETE /api/v1/gateways/{gateway_id}", s.deleteGateway)
}

// gatewayPageBody is GET /api/v1/gateways: a page (limit, cursor, q as
// the device lists) or, without limit and cursor, every gateway.
type gatewayPageBody struct {
	Gateways []gateways.Health `json:"gateways"`
	Count    int               `json:"count"`
	// Total counts the gateways matching q, Silent the silent ones of
	// all gateways.
	Total      int    `json:"total"`
	Silent     int    `json:"silent"`
	Limit      int    `json:"limit"`
	NextCursor string `json:"next_cursor"`
}

func (s *Server) listGateways(w http.ResponseWriter, r *http.Request) {
	if s.opt.Gateways == nil {
		unavailable(w, "the gateway table")
		return
	}
	pq, err := parsePage(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	limit := pq.limit
	if !pq.paged {
		limit = 0
	}
	p := s.opt.Gateways.Page(pq.cursor, limit, s.opt.Now(), pq.search)
	body := gatewayPageBody{Gateways: nonNil(p.Gateways), Count: len(p.Gateways), Total: p.Matched, Silent: p.Silent, Limit: limit}
	var last devices.EUI
	if n := len(p.Gateways); n > 0 {
		last = p.Gateways[n-1].ID
	}
	body.NextCursor = nextCursor(p.More, last)
	writeJSON(w, http.StatusOK, body)
}

// gatewayPath reads {gateway_id}, the gateway EUI, answering 400 or 503.
func (s *Server) gatewayPath(w http.ResponseWriter, r *http.Request) (devices.EUI, bool) {
	if s.opt.Gateways == nil || s.opt.GatewayStore == nil {
		unavailable(w, "the gateway table")
		return devices.EUI{}, false
	}
	e, err := devices.ParseEUI(r.PathValue("gateway_id"))
	if err == nil && e.IsZero() {
		err = errors.New("gateway_id is all zeros")
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%v: the path names a gateway by its 16-hex-digit EUI", err), nil)
		return e, false
	}
	return e, true
}

func (s *Server) getGateway(w http.ResponseWriter, r *http.Request) {
	id, ok := s.gatewayPath(w, r)
	if !ok {
		return
	}
	h, ok := s.opt.Gateways.Get(id, s.opt.Now())
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("gateway %s is neither configured nor heard from", id), nil)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

// putGateway sets a gateway's name and tags (the whole entry), saved in
// state_dir; 201 for a gateway not known before, else 200.
func (s *Server) putGateway(w http.ResponseWriter, r *http.Request) {
	id, ok := s.gatewayPath(w, r)
	if !ok {
		return
	}
	var g gateways.Gateway
	if !decodeJSON(w, r, &g) {
		return
	}
	switch {
	case g.ID.IsZero():
		g.ID = id
	case g.ID != id:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("body id %s differs from the path's %s", g.ID, id), nil)
		return
	}
	if err := gateways.Check(g); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "gateway is invalid: "+err.Error(), nil)
		return
	}
	created, err := s.opt.GatewayStore.Set(g)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error(), nil)
		return
	}
	s.opt.Log.Info().Str("gateway_id", id.String()).Str("name", g.Name).Msg("gateway set through the API")
	h, _ := s.opt.Gateways.Get(id, s.opt.Now())
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, h)
}

// deleteGateway removes a gateway's entry (name, tags); its health stays
// while it is heard from.
func (s *Server) deleteGateway(w http.ResponseWriter, r *http.Request) {
	id, ok := s.gatewayPath(w, r)
	if !ok {
		return
	}
	deleted, err := s.opt.GatewayStore.Delete(id)
	switch {
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error(), nil)
		return
	case !deleted:
		writeError(w, http.StatusNotFound, fmt.Sprintf("gateway %s has no entry (name, tags) to delete", id), nil)
		return
	}
	s.opt.Log.Info().Str("gateway_id", id.String()).Msg("gateway entry deleted through the API")
	w.WriteHeader(http.StatusNoContent)
}
