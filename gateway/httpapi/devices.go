package httpapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sensorgate/sensorgate/devices"
)

// register adds every route. Public: liveness, readiness, metrics, the
// API description and the status page's shell and assets (they hold no
// data: the page fetches it from /api/v1 with the token); everything else
// needs the token.
func (s *Server) register() {
	s.Handle("GET /healthz", http.HandlerFunc(s.healthz), true)
	s.Handle("GET /readyz", http.HandlerFunc(s.readyz), true)
	s.Handle("GET /openapi.json", http.HandlerFunc(serveOpenAPIJSON), true)
	s.Handle("GET /openapi.yaml", http.HandlerFunc(serveOpenAPIYAML), true)
	// Metrics carry source names, decoder models and counts, never a
	// device: public, as Prometheus scrapers expect.
	s.Handle("GET /metrics", http.HandlerFunc(s.metrics), true)
	s.Handle("GET /{$}", http.HandlerFunc(redirectToStatus), true)
	s.Handle("GET /status", http.HandlerFunc(s.statusPage), true)
	s.Handle("GET /status/{asset}", http.HandlerFunc(statusAsset), true)

	s.handle("GET /api/v1/status", s.status)

	s.handle("GET /api/v1/devices", s.listDevices)
	s.handle("POST /api/v1/devices", s.createDevice)
	s.handle("GET /api/v1/devices/{dev_eui}", s.getDevice)
	s.handle("PUT /api/v1/devices/{dev_eui}", s.updateDevice)
	s.handle("DELETE /api/v1/devices/{dev_eui}", s.deleteDevice)
	s.handle("POST /api/v1/devices/import", s.importDevices)
	s.handle("GET /api/v1/devices/export", s.exportDevices)
	s.handle("GET /api/v1/devices/{dev_eui}/health", s.deviceHealth)
	s.handle("GET /api/v1/device-health", s.listHealth)
	s.handle("GET /api/v1/unknown-devices", s.listUnknown)
	s.handle("POST /api/v1/unknown-devices/{dev_eui}/adopt", s.adopt)
	s.handle("DELETE /api/v1/unknown-devices/{dev_eui}", s.dismissUnknown)
	s.handle("GET /api/v1/models", s.listModels)
	s.handle("POST /api/v1/decode", s.decode)
	s.handle("GET /api/v1/deadletters", s.listDeadLetters)
	s.handle("GET /api/v1/deadletters/{id}", s.getDeadLetter)
	s.handle("POST /api/v1/deadletters/replay", s.replay)
	s.handle("POST /api/v1/deadletters/{id}/replay", s.replayOne)
	s.registerGateways()
	s.registerRedecode()
}

// unavailable answers 503 for a route whose backing part is not wired.
func unavailable(w http.ResponseWriter, what string) {
	writeError(w, http.StatusServiceUnavailable, what+" is not available in this process", nil)
}

// pathEUI reads the {dev_eui} path value, answering 400 if it is not one.
func pathEUI(w http.ResponseWriter, r *http.Request) (devices.EUI, bool) {
	e, err := devices.ParseEUI(r.PathValue("dev_eui"))
	if err == nil && e.IsZero() {
		err = errors.New("dev_eui is all zeros")
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%v: the path names a device by its 16-hex-digit DevEUI", err), nil)
		return e, false
	}
	return e, true
}

// devicePath reads {dev_eui} and checks the registry is wired, answering
// 400 or 503 when not.
func (s *Server) devicePath(w http.ResponseWriter, r *http.Request) (devices.EUI, bool) {
	e, ok := pathEUI(w, r)
	if ok && s.opt.Store == nil {
		unavailable(w, "the device registry")
		return e, false
	}
	return e, ok
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) {
	if s.opt.Store == nil {
		unavailable(w, "the device registry")
		return
	}
	pq, err := parsePage(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	model := r.URL.Query().Get("model")
	if !pq.paged {
		// The whole list, streamed: a registry of 100,000 devices is 11 MB
		// of JSON, which is not built in memory.
		n := writeDeviceList(w, "{\"devices\":[", s.opt.Store, func(d *devices.Device) bool {
			return (model == "" || d.Model == model) && pq.search.Match(d)
		})
		fmt.Fprintf(w, "],\"count\":%d}\n", n)
		return
	}
	var match func(*devices.Device) bool
	if model != "" || pq.search != "" {
		match = func(d *devices.Device) bool { return (model == "" || d.Model == model) && pq.search.Match(d) }
	}
	withHealth := false
	if v := r.URL.Query().Get("health"); v != "" {
		if withHealth, err = strconv.ParseBool(v); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("health=%.20q: give true or false", v), nil)
			return
		}
	}
	p := s.opt.Store.Page(pq.cursor, pq.limit, match)
	var last devices.EUI
	if n := len(p.Devices); n > 0 {
		last = p.Devices[n-1].EUI
	}
	writeJSON(w, http.StatusOK, devicePage{
		Devices: nonNil(p.Devices), Count: len(p.Devices), Total: p.Matched, Registered: p.Registered,
		Limit: pq.limit, NextCursor: nextCursor(p.More, last), Health: s.pageHealth(withHealth, p.Devices),
	})
}

// pageHealth is the health of a page's devices heard from, by DevEUI,
// when asked for: the status page's table shows a page of devices with
// their health in one request, without listing the health of all.
func (s *Server) pageHealth(want bool, devs []devices.Device) map[string]devices.DeviceHealth {
	if !want || s.opt.Health == nil {
		return nil
	}
	now := s.opt.Now()
	out := make(map[string]devices.DeviceHealth, len(devs))
	for _, d := range devs {
		if h, ok := s.opt.Health.Get(d.EUI, now); ok {
			out[d.EUI.String()] = h
		}
	}
	return out
}

// devicePage is a page of GET /api/v1/devices.
type devicePage struct {
	Devices    []devices.Device `json:"devices"`
	Count      int              `json:"count"`
	Total      int              `json:"total"`
	Registered int              `json:"registered"`
	Limit      int              `json:"limit"`
	NextCursor string           `json:"next_cursor"`
	// Health holds the page's devices heard from, by DevEUI, with
	// health=true.
	Health map[string]devices.DeviceHealth `json:"health,omitempty"`
}

func (s *Server) getDevice(w http.ResponseWriter, r *http.Request) {
	e, ok := s.devicePath(w, r)
	if !ok {
		return
	}
	d, found := s.opt.Store.Device(e)
	if !found {
		writeError(w, http.StatusNotFound, fmt.Sprintf("device %s is not registered", e), nil)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// checkDevice reports what makes d unfit for the registry, in the words
// of a bulk import row.
func (s *Server) checkDevice(d devices.Device) []string {
	row := []devices.Row{{Line: 1, Device: d, DevEUI: d.EUI.String()}}
	if d.EUI.IsZero() {
		row[0].Problems = append(row[0].Problems, "dev_eui is missing or all zeros")
	}
	devices.CheckRows(row, nil, s.knownModel)
	return row[0].Problems
}

func (s *Server) knownModel(m string) bool {
	if s.opt.Decoders == nil {
		return true
	}
	_, ok := s.opt.Decoders.Lookup(m)
	return ok
}

func (s *Server) createDevice(w http.ResponseWriter, r *http.Request) {
	if s.opt.Store == nil {
		unavailable(w, "the device registry")
		return
	}
	var d devices.Device
	if !decodeJSON(w, r, &d) {
		return
	}
	if p := s.checkDevice(d); len(p) > 0 {
		writeError(w, http.StatusUnprocessableEntity, "device is invalid: "+strings.Join(p, "; "), p)
		return
	}
	if !s.storeError(w, s.opt.Store.Create(r.Context(), d)) {
		return
	}
	d, _ = s.opt.Store.Device(d.EUI)
	if s.opt.Unknowns != nil {
		s.opt.Unknowns.Remove(d.EUI)
	}
	s.opt.Log.Info().Str("device", d.Name).Str("dev_eui", d.EUI.String()).Msg("device created through the API")
	writeJSON(w, http.StatusCreated, d)
}

func (s *Server) updateDevice(w http.ResponseWriter, r *http.Request) {
	e, ok := s.devicePath(w, r)
	if !ok {
		return
	}
	var d devices.Device
	if !decodeJSON(w, r, &d) {
		return
	}
	switch {
	case d.EUI.IsZero():
		d.EUI = e
	case d.EUI != e:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("body dev_eui %s differs from the path's %s: a DevEUI cannot change; delete and create instead", d.EUI, e), nil)
		return
	}
	if p := s.checkDevice(d); len(p) > 0 {
		writeError(w, http.StatusUnprocessableEntity, "device is invalid: "+strings.Join(p, "; "), p)
		return
	}
	if !s.storeError(w, s.opt.Store.Update(r.Context(), d)) {
		return
	}
	d, _ = s.opt.Store.Device(e)
	s.opt.Log.Info().Str("device", d.Name).Str("dev_eui", e.String()).Msg("device updated through the API")
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) deleteDevice(w http.ResponseWriter, r *http.Request) {
	e, ok := s.devicePath(w, r)
	if !ok {
		return
	}
	if !s.storeError(w, s.opt.Store.Delete(r.Context(), e)) {
		return
	}
	if s.opt.Health != nil {
		s.opt.Health.Forget(e)
	}
	s.opt.Log.Info().Str("dev_eui", e.String()).Msg("device deleted through the API")
	w.WriteHeader(http.StatusNoContent)
}

// storeError answers a Store error (true: there was none).
func (s *Server) storeError(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, devices.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error(), nil)
	case errors.Is(err, devices.ErrConflict):
		writeError(w, http.StatusConflict, err.Error(), nil)
	default:
		s.opt.Log.Error().Err(err).Msg("device registry change failed")
		writeError(w, http.StatusInternalServerError, "the registry could not be changed (nothing was): "+err.Error(), nil)
	}
	return false
}

// bulkFormat picks the import format from ?format= or the Content-Type.
func bulkFormat(r *http.Request) (devices.BulkFormat, error) {
	f := strings.ToLower(r.URL.Query().Get("format"))
	if f == "" {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch mt {
		case "text/csv", "application/csv":
			f = "csv"
		case "application/yaml", "application/x-yaml", "text/yaml", "application/json":
			f = "yaml"
		}
	}
	switch f {
	case "csv":
		return devices.BulkCSV, nil
	case "yaml", "yml", "json":
		return devices.BulkYAML, nil
	}
	return "", errors.New("say what the body is: ?format=csv|yaml|json, or Content-Type text/csv, application/yaml or application/json")
}

func (s *Server) importDevices(w http.ResponseWriter, r *http.Request) {
	if s.opt.Store == nil {
		unavailable(w, "the device registry")
		return
	}
	format, err := bulkFormat(r)
	if err != nil {
		writeError(w, http.StatusUnsupportedMediaType, err.Error(), nil)
		return
	}
	dryRun, ok := boolParam(w, r, "dry_run")
	if !ok {
		return
	}
	// The body is read as it is checked: a CSV import is bounded by
	// http.max_import_bytes (Handler), not held whole. YAML is parsed as
	// one tree, so it keeps the ordinary body limit.
	if format != devices.BulkCSV {
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	} else {
		// Rows are checked while the body arrives, so reading a large
		// import takes longer than the server's read timeout allows
		// other requests.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(importReadTimeout))
	}
	rep, err := s.opt.Store.Import(r.Context(), r.Body, format, s.knownModel, dryRun)
	var fileErr *devices.BulkFileError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &fileErr):
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	case errors.As(err, &tooBig):
		key := "http.max_body_bytes"
		if format == devices.BulkCSV {
			key = "http.max_import_bytes"
		}
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("import body is over %d bytes: split the import, or raise %s", tooBig.Limit, key), nil)
		return
	case isReadError(err):
		writeError(w, http.StatusBadRequest, "could not read the request body: "+err.Error(), nil)
		return
	case err != nil:
		s.storeError(w, err)
		return
	}
	if rep.Total == 0 {
		writeError(w, http.StatusBadRequest, "the import holds no device", nil)
		return
	}
	if rep.Invalid > 0 {
		writeError(w, http.StatusUnprocessableEntity,
			fmt.Sprintf("%d of %d rows are invalid; nothing was imported: fix them and import again (a dry run checks without importing: dry_run=true in the API, -dry-run in the CLI)", rep.Invalid, rep.Total), rep)
		return
	}
	if !dryRun {
		s.opt.Log.Info().Int("created", rep.Created).Int("updated", rep.Updated).Int("unchanged", rep.Unchanged).Msg("devices imported through the API")
		if s.opt.Unknowns != nil {
			// The unknown list is bounded; the import may not be.
			reg := s.opt.Store.Registry()
			for _, u := range s.opt.Unknowns.List() {
				if _, ok := reg.Lookup(u.DevEUI); ok {
					s.opt.Unknowns.Remove(u.DevEUI)
				}
			}
		}
	}
	writeJSON(w, http.StatusOK, rep)
}

// importReadTimeout bounds reading a CSV import's body (a million rows
// take seconds of CPU; a slow link or a busy machine, longer).
const importReadTimeout = 10 * time.Minute

// isReadError reports whether err came from reading the request body
// rather than from the registry's database.
func isReadError(err error) bool {
	var re *devices.ReadError
	return errors.As(err, &re)
}

func (s *Server) exportDevices(w http.ResponseWriter, r *http.Request) {
	if s.opt.Store == nil {
		unavailable(w, "the device registry")
		return
	}
	switch f := r.URL.Query().Get("format"); f {
	case "", "json":
		w.Header().Set("Content-Disposition", `attachment; filename="devices.json"`)
		writeDeviceList(w, "{\"devices\":[", s.opt.Store, nil)
		fmt.Fprint(w, "]}\n")
	case "yaml", "yml":
		devs := s.opt.Store.Devices()
		b, err := yaml.Marshal(map[string]any{"devices": nonNil(devs)})
		if err != nil {
			writeError(w, http.StatusInternalServerError, "encode YAML: "+err.Error(), nil)
			return
		}
		w.Header().Set("Content-Type", "application/yaml")
		w.Header().Set("Content-Disposition", `attachment; filename="devices.yaml"`)
		_, _ = w.Write(b)
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="devices.csv"`)
		_ = devices.WriteCSV(w, s.opt.Store.Devices())
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("format %q: use json, yaml or csv", f), nil)
	}
}

// writeDeviceList answers 200 with JSON that starts with head and goes on
// with the devices match accepts (nil: all), in name order, encoded one
// by one, and returns how many it wrote; the caller closes the JSON.
func writeDeviceList(w http.ResponseWriter, head string, store *devices.Store, match func(*devices.Device) bool) int {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	defer bw.Flush()
	bw.WriteString(head) //nolint:errcheck // a client gone is seen at Flush, and nothing can be told to it
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	n := 0
	store.EachByName(func(d *devices.Device) bool {
		if match != nil && !match(d) {
			return true
		}
		if n > 0 {
			bw.WriteByte(',') //nolint:errcheck // as above
		}
		n++
		return enc.Encode(d) == nil
	})
	return n
}

func (s *Server) listModels(w http.ResponseWriter, _ *http.Request) {
	if s.opt.Decoders == nil {
		unavailable(w, "the decoder registry")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": nonNil(s.opt.Decoders.Models())})
}

// adoptRequest is the body of an adoption: what the registry entry should
// say. Name defaults to the network server's name for the device.
type adoptRequest struct {
	Name      string            `json:"name"`
	Model     string            `json:"model"`
	Tags      map[string]string `json:"tags"`
	Variables map[string]string `json:"variables"`
	Session   *devices.Session  `json:"session"`
}

func (s *Server) listUnknown(w http.ResponseWriter, r *http.Request) {
	if s.opt.Unknowns == nil {
		unavailable(w, "unknown-device tracking")
		return
	}
	pq, err := parsePage(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	if pq.paged {
		var match func(*devices.UnknownDevice) bool
		if pq.search != "" {
			match = pq.search.MatchUnknown
		}
		p := s.opt.Unknowns.Page(pq.cursor, pq.limit, match)
		var last devices.EUI
		if n := len(p.Devices); n > 0 {
			last = p.Devices[n-1].DevEUI
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"devices": nonNil(p.Devices), "count": len(p.Devices), "total": p.Matched, "listed": p.Listed,
			"accepted": p.Accepted, "dropped": s.opt.Unknowns.Dropped(), "limit": pq.limit, "next_cursor": nextCursor(p.More, last),
		})
		return
	}
	list := slices.DeleteFunc(s.opt.Unknowns.List(), func(d devices.UnknownDevice) bool { return !pq.search.MatchUnknown(&d) })
	writeJSON(w, http.StatusOK, map[string]any{"devices": nonNil(list), "count": len(list), "dropped": s.opt.Unknowns.Dropped()})
}

func (s *Server) adopt(w http.ResponseWriter, r *http.Request) {
	e, ok := pathEUI(w, r)
	if !ok {
		return
	}
	if s.opt.Unknowns == nil || s.opt.Store == nil {
		unavailable(w, "unknown-device tracking")
		return
	}
	u, found := s.opt.Unknowns.Get(e)
	if !found {
		writeError(w, http.StatusNotFound, fmt.Sprintf("device %s is not in the unknown-device list: register it with POST /api/v1/devices", e), nil)
		return
	}
	var req adoptRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	d := devices.Device{EUI: e, Name: req.Name, Model: req.Model, Tags: req.Tags, Variables: req.Variables, Session: req.Session}
	if d.Name == "" {
		d.Name = u.Name
	}
	if p := s.checkDevice(d); len(p) > 0 {
		writeError(w, http.StatusUnprocessableEntity, "device is invalid: "+strings.Join(p, "; "), p)
		return
	}
	if !s.storeError(w, s.opt.Store.Adopt(r.Context(), d, s.opt.Unknowns)) {
		return
	}
	d, _ = s.opt.Store.Device(e)
	s.opt.Log.Info().Str("device", d.Name).Str("dev_eui", e.String()).Msg("unknown device adopted")
	writeJSON(w, http.StatusCreated, d)
}

func (s *Server) dismissUnknown(w http.ResponseWriter, r *http.Request) {
	e, ok := pathEUI(w, r)
	if !ok {
		return
	}
	if s.opt.Unknowns == nil {
		unavailable(w, "unknown-device tracking")
		return
	}
	if !s.opt.Unknowns.Remove(e) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("device %s is not in the unknown-device list", e), nil)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) deviceHealth(w http.ResponseWriter, r *http.Request) {
	e, ok := pathEUI(w, r)
	if !ok {
		return
	}
	if s.opt.Health == nil {
		unavailable(w, "device health")
		return
	}
	h, found := s.opt.Health.Get(e, s.opt.Now())
	if !found {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no uplink of %s seen yet", e), nil)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *Server) listHealth(w http.ResponseWriter, r *http.Request) {
	if s.opt.Health == nil {
		unavailable(w, "device health")
		return
	}
	silent, ok := boolParam(w, r, "silent")
	if !ok {
		return
	}
	pq, err := parsePage(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	var colour devices.Colour
	if c := r.URL.Query().Get("colour"); c != "" {
		if colour, ok = devices.ParseColour(c); !ok {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("colour=%.20q: use green, amber, red or grey", c), nil)
			return
		}
	}
	if pq.paged || colour != "" {
		s.healthPage(w, pq, colour, silent)
		return
	}
	list := s.opt.Health.Report(s.opt.Now())
	if pq.search != "" {
		list = slices.DeleteFunc(list, func(h devices.DeviceHealth) bool { return !pq.search.MatchHealth(&h) })
	}
	// Registered devices never heard from are the silent ones an
	// operator most needs to see.
	var never []string
	if s.opt.Store != nil {
		heard := make(map[devices.EUI]bool, len(list))
		for _, h := range list {
			heard[h.DevEUI] = true
		}
		s.opt.Store.EachByName(func(d *devices.Device) bool {
			if !heard[d.EUI] {
				never = append(never, d.EUI.String())
			}
			return true
		})
	}
	if silent {
		list = slices.DeleteFunc(list, func(h devices.DeviceHealth) bool { return !h.Silent })
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": nonNil(list), "count": len(list), "never_seen": nonNil(never)})
}

func boolParam(w http.ResponseWriter, r *http.Request, name string) (bool, bool) {
	switch v := strings.ToLower(r.URL.Query().Get(name)); v {
	case "", "false", "0", "no":
		return false, true
	case "true", "1", "yes":
		return true, true
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s=%q: use true or false", name, v), nil)
		return false, false
	}
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
