package httpapi

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"time"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway/redecode"
)

// Status is the daemon's overview for the status page: what only the
// daemon knows (sources, throughput, spool, InfluxDB). cmd/sensorgate
// fills it; the device counts are added here from Options.
type Status struct {
	Version    string           `json:"version"`
	Started    time.Time        `json:"started"`
	Sources    []SourceStatus   `json:"sources"`
	Throughput ThroughputStatus `json:"throughput"`
	Spool      *SpoolStatus     `json:"spool,omitempty"`
	Influx     *InfluxStatus    `json:"influx,omitempty"`
	// DeadLetters counts dead letters stored since start.
	DeadLetters uint64        `json:"dead_letters"`
	Devices     DeviceSummary `json:"devices"`
	// Instance is this instance's id and Instances every instance sharing
	// the registry (this one included) as their last heartbeats said;
	// both empty on a single instance.
	Instance  string             `json:"instance,omitempty"`
	Instances []devices.Instance `json:"instances,omitempty"`
	// Redecode lists the re-decode jobs since start, newest first,
	// without their reports (GET /api/v1/redecode/{id} has them).
	Redecode []redecode.JobStatus `json:"redecode,omitempty"`
}

// SourceStatus is one configured source.
type SourceStatus struct {
	Name   string `json:"name"`
	Type   string `json:"type"`   // mqtt, semtech-udp
	Format string `json:"format"` // chirpstack-v4, tts-v3, json, gateway-bridge, …
	// Connected is whether the source is connected to its broker and
	// subscribed; null for a source without a connection (a UDP port).
	Connected *bool `json:"connected"`
}

// ThroughputStatus is the uplinks the pipeline took (written or
// dead-lettered).
type ThroughputStatus struct {
	LastMinute uint64  `json:"uplinks_last_minute"`
	PerSecond  float64 `json:"uplinks_per_second"`
	Total      uint64  `json:"uplinks_total"`
}

// SpoolStatus is the delivery backlog.
type SpoolStatus struct {
	Bytes          int64   `json:"bytes"`
	Records        uint64  `json:"records"`
	OldestAge      float64 `json:"oldest_age_s"`
	DroppedRecords uint64  `json:"dropped_records"`
}

// InfluxStatus is the delivery to InfluxDB.
type InfluxStatus struct {
	Points        uint64            `json:"points_written"`
	Requests      map[string]uint64 `json:"requests"`
	Retries       map[string]uint64 `json:"retries"`
	LastError     string            `json:"last_error,omitempty"`
	LastErrorTime *time.Time        `json:"last_error_time,omitempty"`
}

// DeviceSummary counts devices for the overview. The status page's tiles
// read these counts instead of downloading every device: they are summed
// over the health table without a report per device.
type DeviceSummary struct {
	Registered int `json:"registered"`
	Unknown    int `json:"unknown"`
	Silent     int `json:"silent"`
	// Heard counts the devices heard from (registered or not), Colours
	// the health colours over registered and heard devices (grey: a
	// registered device never heard from), as GET /api/v1/device-health
	// counts them.
	Heard   int                    `json:"heard"`
	Colours map[devices.Colour]int `json:"colours"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	if s.opt.Status == nil {
		unavailable(w, "the daemon status")
		return
	}
	st := s.opt.Status(r.Context())
	if st.Sources == nil {
		st.Sources = []SourceStatus{}
	}
	if s.opt.Store != nil {
		st.Devices.Registered = s.opt.Store.Registry().Len()
	}
	if s.opt.Unknowns != nil {
		st.Devices.Unknown = s.opt.Unknowns.Len() // not List: that copies every payload, per poll
	}
	st.Devices.Colours = map[devices.Colour]int{devices.Green: 0, devices.Amber: 0, devices.Red: 0, devices.Grey: 0}
	if s.opt.Health != nil {
		// Counts only: no report per device is built.
		hp := s.opt.Health.Page(devices.EUI{}, 0, s.opt.Now(), nil)
		st.Devices.Silent, st.Devices.Heard = hp.Silent, hp.Heard
		for c, n := range hp.Colours {
			st.Devices.Colours[c] = n
		}
		st.Devices.Colours[devices.Grey] = max(st.Devices.Registered-(hp.Heard-hp.Unregistered), 0)
	} else {
		st.Devices.Colours[devices.Grey] = st.Devices.Registered
	}
	if s.opt.Redecode != nil {
		st.Redecode = s.opt.Redecode.List()
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.opt.Metrics == nil {
		unavailable(w, "the metrics registry")
		return
	}
	s.opt.Metrics.ServeHTTP(w, r)
}

// statusFiles are the status page: page.html, a template rendered per
// request, and assets/, served as they are. Everything is embedded, so
// the page works on a box without internet and loads nothing from a CDN.
//
//go:embed status
var statusFiles embed.FS

var (
	pageTemplate = template.Must(template.ParseFS(statusFiles, "status/page.html"))
	statusAssets = func() fs.FS {
		sub, err := fs.Sub(statusFiles, "status/assets")
		if err != nil {
			panic(err) // the directory is embedded above; a build without it does not compile
		}
		return sub
	}()
)

// pageCSP allows the page's own script and style only: no inline script,
// no other origin. The bearer token sits in the page's sessionStorage,
// where any script of this origin could read it, so script sources are
// what guards it.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
}

// pageData is what the page's shell is rendered with. Every daemon has
// a token, so the script always asks for it before its first call.
type pageData struct {
	Version string
}

func (s *Server) statusPage(w http.ResponseWriter, _ *http.Request) {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, pageData{Version: s.opt.Version}); err != nil {
		writeError(w, http.StatusInternalServerError, "render the status page: "+err.Error(), nil)
		return
	}
	pageHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

func statusAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("asset")
	if name != path.Base(name) || name == "." {
		writeError(w, http.StatusNotFound, "no status page asset "+name, nil)
		return
	}
	if _, err := fs.Stat(statusAssets, name); err != nil {
		writeError(w, http.StatusNotFound, "no status page asset "+name, nil)
		return
	}
	pageHeaders(w)
	http.ServeFileFS(w, r, statusAssets, name)
}

func redirectToStatus(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/status", http.StatusFound)
}

// StatusFunc reports the daemon's overview; see Options.Status.
type StatusFunc func(ctx context.Context) Status
