package httpapi

import (
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway/redecode"
)

// TestRedecodeRoutes: the re-decode routes' answers that need no
// InfluxDB (the jobs themselves run against a real one in
// gateway/redecode and cmd/sensorgate): requests that cannot run are
// refused with the reason, unknown jobs are 404, and the guards hold.
func TestRedecodeRoutes(t *testing.T) {
	unwired := newFixture(t)
	if rec := unwired.do(t, "POST", "/api/v1/redecode", "Bearer "+token, "", []byte(`{"since":"24h"}`)); rec.Code != 503 {
		t.Errorf("without re-decoding wired: %d %s", rec.Code, rec.Body)
	}

	f := newFixture(t)
	var err error
	f.srv, err = New(Config{Listen: "127.0.0.1:0", Token: token}, Options{
		Redecode: redecode.NewJobs(&redecode.Runner{Log: zerolog.Nop(), Now: func() time.Time { return now }}), Log: zerolog.Nop(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	f.h = f.srv.Handler()
	for _, tc := range []struct {
		name, method, path, auth, ctype, body string
		code                                  int
		want                                  string
	}{
		{"no since", "POST", "/api/v1/redecode", "Bearer " + token, "", `{}`, 400, "since is required"},
		{"bad since", "POST", "/api/v1/redecode", "Bearer " + token, "", `{"since":"last week"}`, 400, "neither an RFC 3339 time"},
		{"reversed", "POST", "/api/v1/redecode", "Bearer " + token, "", `{"since":"2026-05-04T00:00:00Z","until":"2026-05-03T00:00:00Z"}`, 400, "not before"},
		{"future since", "POST", "/api/v1/redecode", "Bearer " + token, "", `{"since":"2027-01-01T00:00:00Z"}`, 400, "not before"},
		{"bad device", "POST", "/api/v1/redecode", "Bearer " + token, "", `{"since":"24h","devices":["xyz"]}`, 400, "devices"},
		{"two filters", "POST", "/api/v1/redecode", "Bearer " + token, "", `{"since":"24h","model":"a","source":"b"}`, 400, "not several"},
		{"unknown key", "POST", "/api/v1/redecode", "Bearer " + token, "", `{"since":"24h","dryrun":true}`, 400, "unknown field"},
		{"no token", "POST", "/api/v1/redecode", "", "", `{"since":"24h"}`, 401, ""},
		{"form post", "POST", "/api/v1/redecode", "Bearer " + token, "text/plain", `{"since":"24h"}`, 415, ""},
		{"list", "GET", "/api/v1/redecode", "Bearer " + token, "", ``, 200, `{"jobs":[]}`},
		{"unknown job", "GET", "/api/v1/redecode/7", "Bearer " + token, "", ``, 404, "no re-decode job 7"},
		{"bad id", "GET", "/api/v1/redecode/x", "Bearer " + token, "", ``, 400, "job id"},
		{"cancel unknown", "DELETE", "/api/v1/redecode/7", "Bearer " + token, "", ``, 404, "no re-decode job 7"},
	} {
		rec := f.do(t, tc.method, tc.path, tc.auth, tc.ctype, []byte(tc.body))
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, rec.Code, rec.Body, tc.code, tc.want)
		}
	}
}
