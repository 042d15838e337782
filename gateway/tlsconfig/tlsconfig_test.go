package tlsconfig_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sensorgate/sensorgate/gateway/tlsconfig"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

func TestClient(t *testing.T) {
	pki := testserver.NewPKI(t)
	other := testserver.NewPKI(t)
	encrypted := filepath.Join(t.TempDir(), "enc.pem")
	if err := os.WriteFile(encrypted, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(t.TempDir(), "x.pem")
	if err := os.WriteFile(notPEM, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     tlsconfig.Config
		wantErr string
		check   func(*testing.T, *tls.Config)
	}{
		{name: "zero: system pool, URL host verified", check: func(t *testing.T, c *tls.Config) {
			if c.RootCAs != nil || c.ServerName != "broker.city" || c.MinVersion != tls.VersionTLS12 || c.InsecureSkipVerify {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "private CA and client certificate", cfg: tlsconfig.Config{CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey, ServerName: "mqtt.internal"},
			check: func(t *testing.T, c *tls.Config) {
				if c.RootCAs == nil || len(c.Certificates) != 1 || c.ServerName != "mqtt.internal" {
					t.Errorf("got %+v", c)
				}
			}},
		{name: "insecure", cfg: tlsconfig.Config{InsecureSkipVerify: true}, check: func(t *testing.T, c *tls.Config) {
			if !c.InsecureSkipVerify {
				t.Error("InsecureSkipVerify not set")
			}
		}},
		{name: "CA file missing", cfg: tlsconfig.Config{CAFile: "/nonexistent.pem"}, wantErr: "read ca_file"},
		{name: "key as CA", cfg: tlsconfig.Config{CAFile: pki.ClientKey}, wantErr: "holds no PEM certificate"},
		{name: "encrypted key", cfg: tlsconfig.Config{CertFile: pki.ClientCert, KeyFile: encrypted}, wantErr: "is encrypted"},
		{name: "key not PEM", cfg: tlsconfig.Config{CertFile: pki.ClientCert, KeyFile: notPEM}, wantErr: "holds no PEM block"},
		{name: "key of another certificate", cfg: tlsconfig.Config{CertFile: pki.ClientCert, KeyFile: other.ClientKey}, wantErr: "belong together"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.cfg.Client("broker.city")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Client = %v, want an error containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), string(other.ClientKeyPEM[28:60])) || strings.Contains(err.Error(), string(pki.ClientKeyPEM[28:60])) {
					t.Fatalf("error quotes key material: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestValidateAndScheme(t *testing.T) {
	if err := (tlsconfig.Config{CertFile: "a.pem"}).Validate("x.tls"); err == nil || !strings.Contains(err.Error(), "x.tls.key_file missing") {
		t.Errorf("Validate = %v", err)
	}
	if err := (tlsconfig.Config{CAFile: "/nonexistent"}).Validate("x.tls"); err == nil || !strings.Contains(err.Error(), "x.tls.ca_file") {
		t.Errorf("Validate = %v", err)
	}
	if err := (tlsconfig.Config{}).Validate("x.tls"); err != nil {
		t.Errorf("zero Validate = %v", err)
	}
	for scheme, want := range map[string]bool{"https": true, "ssl": true, "mqtts": true, "wss": true, "tls": true, "tcps": true, "tcp": false, "http": false, "ws": false, "mqtt": false} {
		if tlsconfig.Scheme(scheme) != want {
			t.Errorf("Scheme(%q) = %v", scheme, !want)
		}
	}
}
