package httpapi

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/deadletter"
)

const token = "s3cret-token"

var now = time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)

type fixture struct {
	srv      *Server
	h        http.Handler
	store    *devices.Store
	health   *devices.Health
	unknowns *devices.Unknowns
	dl       *deadletter.File
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	store, err := devices.OpenStore(context.Background(), filepath.Join(dir, devices.StoreFileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	dl, err := deadletter.Open(filepath.Join(dir, deadletter.FileName), deadletter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dl.Close() })
	f := &fixture{store: store, health: devices.NewHealth(3), unknowns: devices.NewUnknowns(), dl: dl}
	replayer := &deadletter.Replayer{Store: dl, Pipeline: &gateway.Pipeline{},
		Parse: func(gateway.DeadLetter) (gateway.Uplink, error) { return gateway.Uplink{}, deadletter.ErrNoParser }}
	f.srv, err = New(Config{Listen: "127.0.0.1:0", Token: token, MaxBodyBytes: 4 << 20}, Options{
		Store: store, Health: f.health, Unknowns: f.unknowns, Decoders: decoders.NewRegistry(),
		DeadLetters: dl, Replayer: replayer, Log: zerolog.Nop(), Now: func() time.Time { return now },
		Ready: []Check{{Name: "broker", Check: func(context.Context) error { return nil }}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.h = f.srv.Handler()
	return f
}

// apiHost is the Host the tests' requests carry: the fixture listens on
// 127.0.0.1.
const apiHost = "127.0.0.1:8080"

// do sends a request with the token (auth "" sends none) to apiHost. A
// request that changes state is sent as application/json unless ctype
// says otherwise, as every client of the API does (guard_test.go tests
// the refusals).
func (f *fixture) do(t *testing.T, method, path, auth, ctype string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Host = apiHost
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if ctype == "" && changesState(method) {
		ctype = "application/json"
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

func errorOf(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var e apiError
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error answer is %q, not JSON: %s", ct, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
		t.Fatalf("not a JSON error: %s (%v)", rec.Body, err)
	}
	return e.Error
}

func TestRequests(t *testing.T) {
	f := newFixture(t)
	bearer := "Bearer " + token
	dev := `{"dev_eui":"0101010101010101","name":"bin-1","model":"cayenne-lpp","tags":{"site":"north"}}`
	big := bytes.Repeat([]byte("x"), 5<<20)
	tests := []struct {
		name, method, path, auth, ctype, body string
		raw                                   []byte
		status                                int
		contains                              string // in the body
	}{
		{"healthz is public", "GET", "/healthz", "", "", "", nil, 200, `"ok"`},
		{"readyz is public", "GET", "/readyz", "", "", "", nil, 200, `"broker":"ok"`},
		{"openapi is public", "GET", "/openapi.json", "", "", "", nil, 200, `"openapi"`},
		{"no token", "GET", "/api/v1/devices", "", "", "", nil, 401, "missing bearer token"},
		{"wrong token", "GET", "/api/v1/devices", "Bearer nope", "", "", nil, 401, "wrong bearer token"},
		{"basic auth is not bearer", "GET", "/api/v1/devices", "Basic " + token, "", "", nil, 401, "missing bearer token"},
		{"list empty", "GET", "/api/v1/devices", bearer, "", "", nil, 200, `"devices":[]`},
		{"create", "POST", "/api/v1/devices", bearer, "application/json", dev, nil, 201, `"name":"bin-1"`},
		{"create again", "POST", "/api/v1/devices", bearer, "application/json", dev, nil, 409, "update it instead"},
		{"name taken", "POST", "/api/v1/devices", bearer, "", `{"dev_eui":"0202020202020202","name":"bin-1"}`, nil, 409, "bin-1"},
		{"bad JSON", "POST", "/api/v1/devices", bearer, "", `{"dev_eui": "01`, nil, 400, "truncated JSON"},
		{"JSON syntax", "POST", "/api/v1/devices", bearer, "", `{"dev_eui" 1}`, nil, 400, "not valid JSON"},
		{"unknown field", "POST", "/api/v1/devices", bearer, "", `{"dev_eui":"0303030303030303","nmae":"x"}`, nil, 400, `unknown field \"nmae\"`},
		{"wrong type", "POST", "/api/v1/devices", bearer, "", `{"dev_eui":"0303030303030303","name":3}`, nil, 400, `\"name\" must be string`},
		{"bad EUI in body", "POST", "/api/v1/devices", bearer, "", `{"dev_eui":"zz"}`, nil, 400, "invalid EUI"},
		{"empty body", "POST", "/api/v1/devices", bearer, "", ``, nil, 400, "empty"},
		{"trailing data", "POST", "/api/v1/devices", bearer, "", `{"dev_eui":"0303030303030303"} {}`, nil, 400, "data after"},
		{"unknown model", "POST", "/api/v1/devices", bearer, "", `{"dev_eui":"0303030303030303","model":"acme-x"}`, nil, 422, "unknown model"},
		{"short session key", "POST", "/api/v1/devices", bearer, "", `{"dev_eui":"0303030303030303","session":{"dev_addr":"26011bda","nwk_s_key":"0102","app_s_key":"0102030405060708090a0b0c0d0e0f10"}}`, nil, 400, "want 32 hex digits"},
		{"session missing key", "POST", "/api/v1/devices", bearer, "", `{"dev_eui":"0303030303030303","session":{"dev_addr":"26011bda","nwk_s_key":"0102030405060708090a0b0c0d0e0f10"}}`, nil, 422, "app_s_key is missing"},
		{"oversize", "POST", "/api/v1/devices", bearer, "", "", big, 413, "over 4194304 bytes"},
		{"get", "GET", "/api/v1/devices/0101010101010101", bearer, "", "", nil, 200, `"site":"north"`},
		{"get missing", "GET", "/api/v1/devices/0909090909090909", bearer, "", "", nil, 404, "not registered"},
		{"get bad EUI", "GET", "/api/v1/devices/nope", bearer, "", "", nil, 400, "16-hex-digit"},
		{"update", "PUT", "/api/v1/devices/0101010101010101", bearer, "", `{"name":"bin-1b","model":"cayenne-lpp"}`, nil, 200, `"name":"bin-1b"`},
		{"update EUI mismatch", "PUT", "/api/v1/devices/0101010101010101", bearer, "", `{"dev_eui":"0202020202020202"}`, nil, 400, "differs"},
		{"update missing", "PUT", "/api/v1/devices/0909090909090909", bearer, "", `{"name":"x"}`, nil, 404, "create it first"},
		{"filter by model", "GET", "/api/v1/devices?model=cayenne-lpp", bearer, "", "", nil, 200, `"count":1`},
		{"models", "GET", "/api/v1/models", bearer, "", "", nil, 200, `"cayenne-lpp"`},
		{"decode", "POST", "/api/v1/decode", bearer, "", `{"model":"cayenne-lpp","payload_hex":"0167 00E1","f_port":1}`, nil, 200, `"quantity":"air.temperature","value":22.5`},
		{"decode base64", "POST", "/api/v1/decode", bearer, "", `{"model":"cayenne-lpp","payload_base64":"AWcA4Q=="}`, nil, 200, `"measurement":"air"`},
		{"decode no payload", "POST", "/api/v1/decode", bearer, "", `{"model":"cayenne-lpp"}`, nil, 400, "payload is missing"},
		{"decode bad port", "POST", "/api/v1/decode", bearer, "", `{"model":"cayenne-lpp","payload_hex":"00","f_port":300}`, nil, 400, "0..255"},
		{"decode unknown model", "POST", "/api/v1/decode", bearer, "", `{"model":"acme","payload_hex":"00"}`, nil, 404, "no decoder"},
		{"decode rejected", "POST", "/api/v1/decode", bearer, "", `{"model":"cayenne-lpp","payload_hex":"0167"}`, nil, 422, "rejected the payload"},
		{"health never seen", "GET", "/api/v1/device-health", bearer, "", "", nil, 200, `"never_seen":["0101010101010101"]`},
		{"health of unseen", "GET", "/api/v1/devices/0101010101010101/health", bearer, "", "", nil, 404, "no uplink"},
		{"deadletters empty", "GET", "/api/v1/deadletters", bearer, "", "", nil, 200, `"dead_letters":[]`},
		{"deadletters bad reason", "GET", "/api/v1/deadletters?reason=nope", bearer, "", "", nil, 400, "decode_error"},
		{"deadletters bad since", "GET", "/api/v1/deadletters?since=yesterday", bearer, "", "", nil, 400, "RFC 3339"},
		{"deadletter missing", "GET", "/api/v1/deadletters/7", bearer, "", "", nil, 404, "no dead letter 7"},
		{"deadletter bad id", "GET", "/api/v1/deadletters/x", bearer, "", "", nil, 400, "ids are 1, 2, 3"},
		{"replay nothing", "POST", "/api/v1/deadletters/replay", bearer, "", `{}`, nil, 200, `"replayed":0`},
		{"replay unknown field", "POST", "/api/v1/deadletters/replay", bearer, "", `{"all":true}`, nil, 400, `unknown field \"all\"`},
		{"unknown route", "GET", "/api/v1/nothing", bearer, "", "", nil, 404, "no route"},
		{"wrong method", "PATCH", "/api/v1/devices", bearer, "", "", nil, 405, "use GET, POST"},
		{"delete", "DELETE", "/api/v1/devices/0101010101010101", bearer, "", "", nil, 204, ""},
		{"delete again", "DELETE", "/api/v1/devices/0101010101010101", bearer, "", "", nil, 404, "no such device"},
	}
	for _, tc := range tests {
		body := tc.raw
		if body == nil {
			body = []byte(tc.body)
		}
		rec := f.do(t, tc.method, tc.path, tc.auth, tc.ctype, body)
		if rec.Code != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, rec.Code, tc.status, rec.Body)
			continue
		}
		if rec.Code >= 400 {
			errorOf(t, rec)
		}
		if !strings.Contains(rec.Body.String(), tc.contains) {
			t.Errorf("%s: body %s lacks %s", tc.name, rec.Body, tc.contains)
		}
		if tc.status == 401 && rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate header", tc.name)
		}
	}
	if f.store.Len() != 0 {
		t.Errorf("store holds %d devices at the end", f.store.Len())
	}
}

// bulk builds an n-device CSV (The Things Stack style).
func bulk(n int) []byte {
	var b bytes.Buffer
	b.WriteString("id;dev_eui;name;model;tags\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "d%d;%016x;sensor-%05d;cayenne-lpp;site=s%d|district=d%d\n", i, 0x70b3d50000000000+i+1, i, i%40, i%5)
	}
	return b.Bytes()
}

func TestImportExport(t *testing.T) {
	f := newFixture(t)
	bearer := "Bearer " + token
	csv := bulk(10000)

	rec := f.do(t, "POST", "/api/v1/devices/import?dry_run=true", bearer, "text/csv", csv)
	var rep devices.ImportReport
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &rep) != nil || !rep.DryRun || rep.Applied || rep.Created != 10000 || rep.Total != 10000 || len(rep.Rows) != 0 {
		t.Fatalf("dry run: %d %+v", rec.Code, rep.Total)
	}
	if f.store.Len() != 0 {
		t.Fatal("dry run changed the store")
	}

	// One bad row: nothing is imported, the report names the row.
	bad := bytes.Replace(csv, []byte("sensor-05000;cayenne-lpp"), []byte("sensor-05000;acme-unknown"), 1)
	rec = f.do(t, "POST", "/api/v1/devices/import", bearer, "text/csv", bad)
	if rec.Code != 422 || !strings.Contains(errorOf(t, rec), "1 of 10000 rows are invalid") {
		t.Fatalf("bad import: %d %s", rec.Code, errorOf(t, rec))
	}
	var e struct {
		Detail devices.ImportReport `json:"detail"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &e)
	if e.Detail.Invalid != 1 || len(e.Detail.Rows) != 1 || e.Detail.Rows[0].Line != 5002 || !strings.Contains(strings.Join(e.Detail.Rows[0].Problems, ""), "acme-unknown") {
		t.Fatalf("report of the bad row: %+v", e.Detail.Rows)
	}
	if f.store.Len() != 0 || f.store.Registry().Len() != 0 {
		t.Fatal("a refused import left devices behind")
	}

	start := time.Now()
	rec = f.do(t, "POST", "/api/v1/devices/import", bearer, "text/csv", csv)
	t.Logf("HTTP import of 10,000 devices (parse, check, one transaction, registry swap): %v", time.Since(start))
	if rec.Code != 200 || f.store.Len() != 10000 {
		t.Fatalf("import: %d %s", rec.Code, rec.Body.String()[:200])
	}
	if d, ok := f.store.Registry().LookupName("sensor-00042"); !ok || d.Tags["site"] != "s2" {
		t.Fatalf("registry after import: %+v", d)
	}

	// Export in each format, and a CSV round trip changes nothing.
	for _, format := range []string{"json", "yaml", "csv"} {
		rec = f.do(t, "GET", "/api/v1/devices/export?format="+format, bearer, "", nil)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), "sensor-09999") {
			t.Fatalf("export %s: %d", format, rec.Code)
		}
		if format == "yaml" {
			var doc struct{ Devices []devices.Device }
			if err := yaml.Unmarshal(rec.Body.Bytes(), &doc); err != nil || len(doc.Devices) != 10000 {
				t.Fatalf("yaml export: %d devices, %v", len(doc.Devices), err)
			}
		}
		if format == "csv" {
			back := f.do(t, "POST", "/api/v1/devices/import?format=csv", bearer, "", rec.Body.Bytes())
			if back.Code != 200 || !strings.Contains(back.Body.String(), `"unchanged":10000`) {
				t.Fatalf("csv round trip: %d %.300s", back.Code, back.Body)
			}
		}
	}
	rec = f.do(t, "POST", "/api/v1/devices/import", bearer, "text/plain", csv)
	if rec.Code != 415 {
		t.Fatalf("no format: %d", rec.Code)
	}
	rec = f.do(t, "POST", "/api/v1/devices/import?format=yaml", bearer, "", []byte("- dev_eui: \"0101010101010101\"\n  nmae: x\n"))
	if rec.Code != 422 || !strings.Contains(rec.Body.String(), "nmae") {
		t.Fatalf("yaml typo: %d %s", rec.Code, rec.Body)
	}
}

func TestUnknownAdoptionAndHealth(t *testing.T) {
	f := newFixture(t)
	bearer := "Bearer " + token
	e, _ := devices.ParseEUI("0a0a0a0a0a0a0a0a")
	f.unknowns.Observe(devices.UnknownObservation{EUI: e, Time: now.Add(-time.Hour), Source: "cs", Name: "ns-bin", Payload: []byte{1, 2}, Raw: []byte(`{"x":1}`)})
	rec := f.do(t, "GET", "/api/v1/unknown-devices", bearer, "", nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"name":"ns-bin"`) || !strings.Contains(rec.Body.String(), `"last_payload":"AQI="`) {
		t.Fatalf("unknown list: %s", rec.Body)
	}
	rec = f.do(t, "POST", "/api/v1/unknown-devices/0b0b0b0b0b0b0b0b/adopt", bearer, "", []byte(`{}`))
	if rec.Code != 404 {
		t.Fatalf("adopt a device not in the list: %d", rec.Code)
	}
	rec = f.do(t, "POST", "/api/v1/unknown-devices/0a0a0a0a0a0a0a0a/adopt", bearer, "", []byte(`{"model":"cayenne-lpp","tags":{"site":"harbour"}}`))
	if rec.Code != 201 || !strings.Contains(rec.Body.String(), `"name":"ns-bin"`) {
		t.Fatalf("adopt: %d %s", rec.Code, rec.Body)
	}
	if _, ok := f.store.Registry().Lookup(e); !ok {
		t.Fatal("adopted device not in the registry")
	}
	if rec = f.do(t, "GET", "/api/v1/unknown-devices", bearer, "", nil); !strings.Contains(rec.Body.String(), `"count":0`) {
		t.Fatalf("adopted device still unknown: %s", rec.Body)
	}
	f.unknowns.Observe(devices.UnknownObservation{EUI: e, Time: now})
	if rec = f.do(t, "DELETE", "/api/v1/unknown-devices/0a0a0a0a0a0a0a0a", bearer, "", nil); rec.Code != 204 {
		t.Fatalf("dismiss: %d", rec.Code)
	}

	for i, at := range []time.Duration{-3 * time.Hour, -2 * time.Hour} {
		f.health.Observe(devices.Observation{EUI: e, Time: now.Add(at), Name: "ns-bin", FCnt: uint32(10 + 2*i), HasFCnt: true, RSSI: -90, HasRSSI: true})
	}
	rec = f.do(t, "GET", "/api/v1/devices/0a0a0a0a0a0a0a0a/health", bearer, "", nil)
	var h devices.DeviceHealth
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &h) != nil || h.Uplinks24h != 2 || h.Lost24h != 1 || !h.Silent || h.LastSeenAge != 7200 {
		t.Fatalf("health: %d %s", rec.Code, rec.Body)
	}
	rec = f.do(t, "GET", "/api/v1/device-health?silent=true", bearer, "", nil)
	if !strings.Contains(rec.Body.String(), `"count":1`) || !strings.Contains(rec.Body.String(), `"never_seen":[]`) {
		t.Fatalf("silent list: %s", rec.Body)
	}
}

func TestDeadLetterRoutes(t *testing.T) {
	f := newFixture(t)
	bearer := "Bearer " + token
	ctx := context.Background()
	for i, r := range []gateway.Reason{gateway.ReasonDecode, gateway.ReasonMalformed, gateway.ReasonDecode} {
		if err := f.dl.Put(ctx, gateway.DeadLetter{Time: now.Add(time.Duration(i-3) * time.Hour), Source: "cs", Reason: r, Detail: "x", Raw: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	rec := f.do(t, "GET", "/api/v1/deadletters?reason=decode_error&since=150m", bearer, "", nil)
	if !strings.Contains(rec.Body.String(), `"count":1`) || !strings.Contains(rec.Body.String(), `"id":3`) {
		t.Fatalf("filtered list: %s", rec.Body)
	}
	rec = f.do(t, "POST", "/api/v1/deadletters/2/replay", bearer, "", nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"failed":1`) || !strings.Contains(rec.Body.String(), "no parser") {
		t.Fatalf("replay one: %d %s", rec.Code, rec.Body)
	}
	rec = f.do(t, "GET", "/api/v1/deadletters/2", bearer, "", nil)
	if !strings.Contains(rec.Body.String(), `"replay_attempts":1`) {
		t.Fatalf("letter after a failed replay: %s", rec.Body)
	}
	rec = f.do(t, "POST", "/api/v1/deadletters/9/replay", bearer, "", nil)
	if rec.Code != 404 {
		t.Fatalf("replay a missing letter: %d", rec.Code)
	}
}

// TestOpenAPICoversRoutes keeps openapi.yaml in step with the routes.
func TestOpenAPICoversRoutes(t *testing.T) {
	f := newFixture(t)
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(openAPIYAML, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	described := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			// Operations the daemon adds with Handle say so; cmd/sensorgate
			// checks that it serves them.
			if o, ok := op.(map[string]any); ok && o["x-served-by"] != nil {
				continue
			}
			if method != "parameters" {
				described[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	for _, r := range f.srv.Routes() {
		r = strings.TrimSuffix(r, "{$}") // net/http's exact-match marker; OpenAPI paths are exact anyway
		if !described[r] {
			t.Errorf("route %s is not in openapi.yaml", r)
		}
		delete(described, r)
	}
	for r := range described {
		t.Errorf("openapi.yaml describes %s, which is not served", r)
	}
	if _, err := openAPIJSON(); err != nil {
		t.Fatal(err)
	}
}

// TestNewRefusesNoToken: no API without a token, loopback or not (the
// daemon generates one when the config has none).
func TestNewRefusesNoToken(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:8080", ":8080", "127.0.0.1:8080", "[::1]:8080", "localhost:8080"} {
		if _, err := New(Config{Listen: listen}, Options{}); err == nil || !strings.Contains(err.Error(), "no bearer token") {
			t.Errorf("%s without a token: %v", listen, err)
		}
		if _, err := New(Config{Listen: listen, Token: token}, Options{}); err != nil {
			t.Errorf("%s with a token: %v", listen, err)
		}
	}
	if _, err := New(Config{Listen: "127.0.0.1:0", Token: token, TLSCert: "c.pem"}, Options{}); err == nil {
		t.Fatal("a cert without a key accepted")
	}
}

func TestReadyzNotReady(t *testing.T) {
	s, err := New(Config{Listen: "127.0.0.1:0", Token: token}, Options{Ready: []Check{
		{Name: "broker:cs", Check: func(context.Context) error { return errors.New("not connected") }},
		{Name: "influx", Check: func(context.Context) error { return nil }},
	}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{h: s.Handler()}
	rec := f.do(t, "GET", "/readyz", "", "", nil)
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), `"broker:cs":"not connected"`) || !strings.Contains(rec.Body.String(), `"influx":"ok"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if rec = f.do(t, "GET", "/api/v1/devices", "Bearer "+token, "", nil); rec.Code != 503 {
		t.Fatalf("no store: %d %s", rec.Code, rec.Body)
	}
}

// TestReadyzAdvisory: an advisory check's failure is reported under its
// name while the daemon stays ready; a failing ordinary check still
// makes it not ready.
func TestReadyzAdvisory(t *testing.T) {
	advisory := Check{Name: "codec_limits", Advisory: true, Check: func(context.Context) error { return errors.New("degraded: 2 killed") }}
	for _, tc := range []struct {
		name   string
		checks []Check
		code   int
		status string
	}{
		{"advisory only", []Check{advisory, {Name: "influx", Check: func(context.Context) error { return nil }}}, 200, `"status":"ready"`},
		{"and a real failure", []Check{advisory, {Name: "influx", Check: func(context.Context) error { return errors.New("down") }}}, 503, `"status":"not ready"`},
		// An ordinary check may report a degraded state by wrapping ErrDegraded.
		{"and a degraded one", []Check{advisory, {Name: "influx", Check: func(context.Context) error { return fmt.Errorf("%w: spooling", ErrDegraded) }}}, 200, `"influx":"degraded: spooling"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Config{Listen: "127.0.0.1:0", Token: token}, Options{Ready: tc.checks})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "http://127.0.0.1/readyz", nil)
			s.Handler().ServeHTTP(rec, req)
			body := rec.Body.String()
			if rec.Code != tc.code || !strings.Contains(body, tc.status) || !strings.Contains(body, `"codec_limits":"degraded: 2 killed"`) {
				t.Fatalf("%d %s", rec.Code, body)
			}
		})
	}
}

// TestRunTLSAndShutdown serves HTTPS on a free port and stops on cancel.
func TestRunTLSAndShutdown(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	s, err := New(Config{Listen: "127.0.0.1:0", Token: token, TLSCert: certFile, TLSKey: keyFile}, Options{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // our own test certificate
	resp, err := client.Get("https://" + s.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || !strings.Contains(string(body), "ok") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	// A second server on the same port fails at Listen, with a hint.
	s2, _ := New(Config{Listen: s.Addr(), Token: token}, Options{})
	if err := s2.Listen(); err == nil || !strings.Contains(err.Error(), "http.listen") {
		t.Fatalf("second listen: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("still listening after shutdown")
	}
}

func selfSigned(t *testing.T, dir string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// A CSV import is bounded by http.max_import_bytes, not the ordinary body
// limit (it streams); a YAML import keeps the ordinary limit.
func TestImportBodyLimits(t *testing.T) {
	f := newFixture(t) // MaxBodyBytes 4 MiB
	bearer := "Bearer " + token
	csv := bulk(80000)
	if len(csv) <= 4<<20 {
		t.Fatalf("the CSV is %d bytes: make it larger than max_body_bytes", len(csv))
	}
	rec := f.do(t, "POST", "/api/v1/devices/import?dry_run=true", bearer, "text/csv", csv)
	var rep devices.ImportReport
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &rep) != nil || rep.Total != 80000 {
		t.Fatalf("CSV over max_body_bytes: %d %s", rec.Code, rec.Body.String()[:min(200, rec.Body.Len())])
	}
	yml := append([]byte("devices:\n"), bytes.Repeat([]byte("  - {dev_eui: 0101010101010101, name: a}\n"), 4<<20/40)...)
	rec = f.do(t, "POST", "/api/v1/devices/import?dry_run=true", bearer, "application/yaml", yml)
	if rec.Code != 413 || !strings.Contains(errorOf(t, rec), "http.max_body_bytes") {
		t.Fatalf("YAML over max_body_bytes: %d %s", rec.Code, errorOf(t, rec))
	}
	f.srv.cfg.MaxImportBytes = 1 << 20
	rec = f.do(t, "POST", "/api/v1/devices/import?dry_run=true", bearer, "text/csv", csv)
	if rec.Code != 413 || !strings.Contains(errorOf(t, rec), "http.max_import_bytes") {
		t.Fatalf("CSV over max_import_bytes: %d %s", rec.Code, errorOf(t, rec))
	}
	if f.store.Len() != 0 {
		t.Fatal("a refused import changed the store")
	}
}
