package httpapi

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/devices"
)

func TestHostPolicy(t *testing.T) {
	tests := []struct {
		listen  string
		allowed []string
		host    string
		ok      bool
	}{
		{"127.0.0.1:8080", nil, "127.0.0.1:8080", true},
		{"127.0.0.1:8080", nil, "127.0.0.1", true},
		{"127.0.0.1:8080", nil, "localhost:8080", true},
		{"127.0.0.1:8080", nil, "LOCALHOST.:8080", true},
		{"127.0.0.1:8080", nil, "[::1]:8080", true},
		{"127.0.0.1:8080", nil, "127.0.0.1:9999", true}, // ports are not compared
		{"127.0.0.1:8080", nil, "attacker.example:8080", false},
		{"127.0.0.1:8080", nil, "localhost.attacker.example:8080", false},
		{"127.0.0.1:8080", nil, "127.0.0.2:8080", false},
		{"127.0.0.1:8080", nil, "192.168.1.5:8080", false},
		{"127.0.0.1:8080", nil, "", false},
		{"127.0.0.1:8080", []string{"Gateway.Example"}, "gateway.example:8080", true},
		{"[::1]:8080", nil, "[::1]:8080", true},
		{"[::1]:8080", nil, "127.0.0.1:8080", true},
		{"localhost:8080", nil, "127.0.0.1:8080", true},
		{"0.0.0.0:8080", nil, "192.168.1.5:8080", true}, // any address: it cannot be re-pointed
		{"0.0.0.0:8080", nil, "[fe80::1]:8080", true},
		{":8080", nil, "10.0.0.7:8080", true},
		{":8080", nil, "localhost:8080", true},
		{":8080", nil, "attacker.example:8080", false},
		{":8080", []string{"sensors.city.example"}, "sensors.city.example", true},
		{"192.168.1.5:8080", nil, "192.168.1.5:8080", true},
		{"192.168.1.5:8080", nil, "127.0.0.1:8080", false},
		{"192.168.1.5:8080", nil, "attacker.example:8080", false},
		{"gw.example:8080", nil, "gw.example:8080", true},
		{"gw.example:8080", nil, "attacker.example:8080", false},
	}
	if name, err := os.Hostname(); err == nil && name != "" {
		tests = append(tests, []struct {
			listen  string
			allowed []string
			host    string
			ok      bool
		}{{":8080", nil, name + ":8080", true}, {"127.0.0.1:8080", nil, name + ":8080", name == "localhost"}}...)
	}
	for _, tt := range tests {
		if got := newHostPolicy(tt.listen, tt.allowed).allows(tt.host); got != tt.ok {
			t.Errorf("listen %s, allowed %v: Host %q allowed = %v, want %v", tt.listen, tt.allowed, tt.host, got, tt.ok)
		}
	}
}

func TestSameOrigin(t *testing.T) {
	tests := []struct {
		origin, host string
		ok           bool
	}{
		{"http://127.0.0.1:8080", "127.0.0.1:8080", true},
		{"http://LOCALHOST:8080", "localhost:8080", true},
		{"https://sensors.example", "sensors.example", true},
		{"https://sensors.example", "sensors.example:443", true},
		{"http://sensors.example", "sensors.example:80", true},
		{"http://[::1]:8080", "[::1]:8080", true},
		{"http://127.0.0.1:5555", "127.0.0.1:8080", false}, // another loopback port is another site
		{"http://localhost:8080", "127.0.0.1:8080", false},
		{"http://attacker.example", "127.0.0.1:8080", false},
		{"https://sensors.example", "sensors.example:8080", false},
		{"null", "127.0.0.1:8080", false},
		{"file://", "127.0.0.1:8080", false},
		{"ftp://127.0.0.1:8080", "127.0.0.1:8080", false},
		{"http://u:p@127.0.0.1:8080", "127.0.0.1:8080", false},
		{"%zz", "127.0.0.1:8080", false},
	}
	for _, tt := range tests {
		if got := sameOrigin(tt.origin, tt.host); got != tt.ok {
			t.Errorf("Origin %q to Host %q: same = %v, want %v", tt.origin, tt.host, got, tt.ok)
		}
	}
}

func TestCheckToken(t *testing.T) {
	for _, ok := range []string{"s3cret-token", "a", "Zm9v+/=~!#$%&'*"} {
		if err := CheckToken(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", " leading", "trailing ", "trailing\n", "in side", "tab\there", "ctl\x01", "del\x7f", "grüße"} {
		if err := CheckToken(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestBrowserGuards sends what a page of another site can make a browser
// send: each is refused, with the status and message named, and the
// registry is unchanged.
func TestBrowserGuards(t *testing.T) {
	f := newFixture(t)
	bearer := "Bearer " + token
	dev := `{"dev_eui":"0101010101010101","name":"bin-1","model":"cayenne-lpp"}`
	csv := "dev_eui,name,model\n0202020202020202,bin-2,cayenne-lpp\n"
	tests := []struct {
		name, method, path, host, ctype, origin, auth, body string
		status                                              int
		contains                                            string
	}{
		{"text/plain create", "POST", "/api/v1/devices", apiHost, "text/plain", "", bearer, dev, 415, "needs Content-Type: application/json"},
		{"form create", "POST", "/api/v1/devices", apiHost, "application/x-www-form-urlencoded", "", bearer, dev, 415, `got "application/x-www-form-urlencoded"`},
		{"multipart import", "POST", "/api/v1/devices/import?format=csv", apiHost, "multipart/form-data; boundary=x", "", bearer, csv, 415, "text/csv"},
		{"no type", "POST", "/api/v1/deadletters/replay", apiHost, "", "", bearer, "", 415, "got none"},
		{"no type, delete", "DELETE", "/api/v1/devices/0101010101010101", apiHost, "", "", bearer, "", 415, "also without a body"},
		{"bad type", "PUT", "/api/v1/devices/0101010101010101", apiHost, "application/json;;", "", bearer, dev, 415, "application/json"},
		{"foreign origin", "POST", "/api/v1/devices", apiHost, "application/json", "http://127.0.0.1:5555", bearer, dev, 403, `origin "http://127.0.0.1:5555" is not this API's`},
		{"null origin", "POST", "/api/v1/devices/import", apiHost, "text/csv", "null", bearer, csv, 403, "cannot change devices"},
		{"foreign host", "POST", "/api/v1/devices", "attacker.example:8080", "application/json", "http://attacker.example:8080", bearer, dev, 421, "http.allowed_hosts"},
		{"foreign host, export", "GET", "/api/v1/devices/export", "attacker.example:8080", "", "", bearer, "", 421, `host "attacker.example:8080" is not this API's`},
		{"foreign host, public route", "GET", "/metrics", "attacker.example", "", "", "", "", 421, "reach it as 127.0.0.1"},
		{"no token, right type", "POST", "/api/v1/devices", apiHost, "application/json", "", "", dev, 401, "missing bearer token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			req.Host = tt.host
			for k, v := range map[string]string{"Content-Type": tt.ctype, "Origin": tt.origin, "Authorization": tt.auth} {
				if v != "" {
					req.Header.Set(k, v)
				}
			}
			rec := httptest.NewRecorder()
			f.h.ServeHTTP(rec, req)
			if rec.Code != tt.status || !strings.Contains(errorOf(t, rec), tt.contains) {
				t.Fatalf("%d %s, want %d with %q", rec.Code, rec.Body, tt.status, tt.contains)
			}
		})
	}
	if n := f.store.Registry().Len(); n != 0 {
		t.Fatalf("the registry holds %d devices after refused requests", n)
	}

	// What the API's own clients send passes: a same-origin page, curl
	// (no Origin), a CSV import, a bodyless replay declared as JSON.
	for _, ok := range []struct{ method, path, ctype, origin, body string }{
		{"POST", "/api/v1/devices", "application/json; charset=utf-8", "http://" + apiHost, dev},
		{"POST", "/api/v1/devices/import", "text/csv", "", csv},
		{"POST", "/api/v1/deadletters/replay", "application/json", "http://" + apiHost, `{}`},
	} {
		req := httptest.NewRequest(ok.method, ok.path, strings.NewReader(ok.body))
		req.Host = apiHost
		req.Header.Set("Content-Type", ok.ctype)
		req.Header.Set("Authorization", bearer)
		if ok.origin != "" {
			req.Header.Set("Origin", ok.origin)
		}
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, req)
		if rec.Code >= 300 {
			t.Errorf("%s %s (%s, Origin %q): %d %s", ok.method, ok.path, ok.ctype, ok.origin, rec.Code, rec.Body)
		}
	}
	if n := f.store.Registry().Len(); n != 2 {
		t.Errorf("the registry holds %d devices, want 2", n)
	}
}

// TestForeignHostRefusedOverTCP is DNS rebinding against a served API: a
// client that resolved attacker.example to the daemon's address asks for
// the registry's export with its own name in Host, token and all, and
// gets 421 without a byte of the registry.
func TestForeignHostRefusedOverTCP(t *testing.T) {
	f := newFixture(t)
	if err := f.store.Create(context.Background(), devices.Device{EUI: devices.EUI{1, 2, 3, 4, 5, 6, 7, 8}, Name: "secret-bin", Model: "cayenne-lpp"}); err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Listen: "127.0.0.1:0", Token: token}, Options{Store: f.store, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(host string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+srv.Addr()+"/api/v1/devices/export?format=csv", nil)
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, body := get("attacker.example:" + strings.Split(srv.Addr(), ":")[1])
	if code != http.StatusMisdirectedRequest || bytes.Contains(body, []byte("secret-bin")) || !bytes.Contains(body, []byte("http.allowed_hosts")) {
		t.Fatalf("foreign Host: %d %s", code, body)
	}
	// The same request by the daemon's own address is answered.
	if code, body = get(srv.Addr()); code != 200 || !bytes.Contains(body, []byte("secret-bin")) {
		t.Fatalf("own Host: %d %s", code, body)
	}
}

// FuzzGuards feeds hostile Host and Origin headers (and tokens) to the
// guards: they never panic, a host is allowed only by a name of the
// policy (or as an IP address when every interface listens), and an
// Origin is never the same as a Host that is not allowed.
func FuzzGuards(f *testing.F) {
	for _, s := range [][2]string{
		{"127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"[::1]:8080", "http://[::1]:8080"},
		{"LOCALHOST.", "https://localhost"},
		{"attacker.example:8080", "null"},
		{"[fe80::1%25eth0]:80", "http://[fe80::1%25eth0]"},
		{"::ffff:127.0.0.1", "http://u:p@127.0.0.1:8080/path"},
		{"", ""},
		{"[", "http://["},
	} {
		f.Add(s[0], s[1])
	}
	loop := newHostPolicy("127.0.0.1:8080", []string{"sensors.example"})
	every := newHostPolicy(":8080", nil)
	f.Fuzz(func(t *testing.T, host, origin string) {
		if loop.allows(host) {
			if n := normalHost(host); !loop.names[n] {
				t.Fatalf("Host %q allowed as %q, not a name of %s", host, n, loop)
			}
		}
		if every.allows(host) && !every.names[normalHost(host)] && net.ParseIP(normalHost(host)) == nil {
			t.Fatalf("Host %q allowed on every interface, neither a name nor an address", host)
		}
		if sameOrigin(origin, host) {
			u, err := url.Parse(origin)
			if err != nil || u.User != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				t.Fatalf("Origin %q taken as the origin of Host %q", origin, host)
			}
		}
		if err := CheckToken(host); err == nil {
			for i := 0; i < len(host); i++ {
				if host[i] <= ' ' || host[i] >= 0x7f {
					t.Fatalf("token %q accepted with byte %#x", host, host[i])
				}
			}
		}
	})
}
