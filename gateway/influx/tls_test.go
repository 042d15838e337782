package influx

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/tlsconfig"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// TestSinkTLS writes to a real InfluxDB 1.8 serving HTTPS with a
// certificate from a private CA: trusted through influx.tls.ca_file the
// point lands; with another authority's certificate in ca_file, or with
// none (the system pool), nothing is written and the log says why.
func TestSinkTLS(t *testing.T) {
	pki := testserver.NewPKI(t)
	db := testserver.StartInfluxDB(t, testserver.HTTPS(pki))
	if !strings.HasPrefix(db.URL(), "https://") {
		t.Fatalf("server URL %s is not https", db.URL())
	}
	pt := func(v float64) []gateway.Point {
		return []gateway.Point{{Measurement: "tls", Tags: []gateway.Tag{{Key: "k", Value: "v"}}, Fields: []gateway.Field{gateway.FloatField("v", v)}, Time: time.Unix(1700000000, 0)}}
	}

	t.Run("private CA trusted", func(t *testing.T) {
		cfg := Config{URL: db.URL(), Bucket: db.Bucket(), TLS: tlsconfig.Config{CAFile: pki.CAFile}}
		s, _ := startSink(t, cfg, fastTiming)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Write(ctx, pt(1)); err != nil {
			t.Fatalf("Write over HTTPS: %v", err)
		}
		if n := db.Count(t, "tls"); n != 1 {
			t.Fatalf("InfluxDB holds %d points, want 1", n)
		}
	})

	other := testserver.NewPKI(t)
	for _, tc := range []struct {
		name string
		tls  tlsconfig.Config
	}{
		{"another CA", tlsconfig.Config{CAFile: other.CAFile}},
		{"system pool", tlsconfig.Config{}},
	} {
		t.Run(tc.name+" refused", func(t *testing.T) {
			cfg := Config{URL: db.URL(), Bucket: db.Bucket(), TLS: tc.tls}
			s, logs := startSink(t, cfg, fastTiming)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- s.Write(ctx, pt(2)) }()
			// The write is held back (retrying) until the log names the
			// certificate problem; then the caller gives up.
			waitFor(t, "the log to name the certificate problem", 60*time.Second, func() bool {
				select {
				case err := <-done:
					t.Fatalf("Write = %v before the log named the certificate problem, want it held back (retrying)", err)
				default:
				}
				return strings.Contains(logs.String(), "certificate")
			})
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("Write = %v, want it held back (retrying) until cancelled", err)
			}
		})
	}
	if n := db.Count(t, "tls"); n != 1 {
		t.Fatalf("InfluxDB holds %d points after the refused writes, want 1", n)
	}
}

// TestSinkTLSConfigErrors: a TLS block that cannot work is refused when
// the sink is made, with a message naming the setting, and never quotes
// key material.
func TestSinkTLSConfigErrors(t *testing.T) {
	pki := testserver.NewPKI(t)
	other := testserver.NewPKI(t)
	for _, tc := range []struct {
		name, url string
		tls       tlsconfig.Config
		want      string
	}{
		{"tls on http", "http://127.0.0.1:8086", tlsconfig.Config{CAFile: pki.CAFile}, "not https"},
		{"cert without key", "https://127.0.0.1:8086", tlsconfig.Config{CertFile: pki.ClientCert}, "key_file missing"},
		{"missing CA file", "https://127.0.0.1:8086", tlsconfig.Config{CAFile: pki.Dir + "/nope.pem"}, "ca_file"},
		{"key of another cert", "https://127.0.0.1:8086", tlsconfig.Config{CertFile: pki.ClientCert, KeyFile: other.ClientKey}, "belong together"},
		{"key as CA", "https://127.0.0.1:8086", tlsconfig.Config{CAFile: pki.ClientKey}, "no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Config{URL: tc.url, Bucket: "db/rp", TLS: tc.tls}, zerolog.Nop())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tc.want)
			}
			for _, key := range [][]byte{pki.ClientKeyPEM, other.ClientKeyPEM} {
				body := string(key[28:60]) // inside the base64, past the header
				if strings.Contains(err.Error(), body) {
					t.Fatalf("error quotes key material: %v", err)
				}
			}
		})
	}
}
