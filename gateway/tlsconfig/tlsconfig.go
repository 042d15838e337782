// Package tlsconfig holds the client TLS settings an operator gives a
// broker or an InfluxDB connection: a private certificate authority, a
// client certificate (mutual TLS, as ChirpStack v4's per-application MQTT
// integration certificates need) and the name to verify.
//
// Only file names are configured; the key material is read when a
// connection is set up and never appears in a log line, an error or a
// marshalled config.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// Config is the tls block of an MQTT source or of influx.
type Config struct {
	// CAFile is a PEM bundle of the authorities that may sign the
	// server's certificate. Empty means the system's pool (and
	// SSL_CERT_FILE / SSL_CERT_DIR).
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are this client's certificate (chain) and its
	// unencrypted private key, both PEM; set both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the server's certificate must carry, when
	// it is not the host of the URL (a broker reached by IP address whose
	// certificate names its DNS name).
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any server certificate. Only for a test
	// bench: anyone on the path can read and change the traffic.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// IsZero reports whether nothing is set: the connection uses Go's
// defaults when its URL asks for TLS.
func (c Config) IsZero() bool { return c == Config{} }

// Validate reports every problem at once; path names the block in the
// config ("sources[0].tls", "influx.tls"). It checks what can be checked
// without reading the files' contents as keys: that they exist.
func (c Config) Validate(path string) error {
	var errs []error
	if (c.CertFile == "") != (c.KeyFile == "") {
		missing := "key_file"
		if c.CertFile == "" {
			missing = "cert_file"
		}
		errs = append(errs, fmt.Errorf("%s.%s missing: a client certificate needs both cert_file and key_file (PEM), or neither", path, missing))
	}
	for _, f := range []struct{ key, name string }{{"ca_file", c.CAFile}, {"cert_file", c.CertFile}, {"key_file", c.KeyFile}} {
		if f.name == "" {
			continue
		}
		if _, err := os.Stat(f.name); err != nil {
			errs = append(errs, fmt.Errorf("%s.%s: %w: give the path of a PEM file the daemon can read", path, f.key, err))
		}
	}
	return errors.Join(errs...)
}

// Scheme reports whether a URL scheme connects over TLS: https for
// InfluxDB; ssl, tls, mqtts, tcps and wss for a broker.
func Scheme(scheme string) bool {
	switch scheme {
	case "https", "ssl", "tls", "mqtts", "tcps", "wss":
		return true
	}
	return false
}

// Client builds the *tls.Config for a connection to host (the URL's host
// name, used for verification unless ServerName is set). A zero Config
// gives Go's defaults with TLS 1.2 at least.
func (c Config) Client(host string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if c.ServerName != "" {
		tc.ServerName = c.ServerName
	}
	tc.InsecureSkipVerify = c.InsecureSkipVerify
	if c.CAFile != "" {
		pool, err := loadCA(c.CAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := loadKeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func loadCA(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls: read ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("tls: ca_file %s holds no PEM certificate: give the authority's certificate (-----BEGIN CERTIFICATE-----)", file)
	}
	return pool, nil
}

// loadKeyPair is tls.LoadX509KeyPair with errors that name the setting,
// and a clear one for an encrypted key.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: read cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: read key_file: %w", err)
	}
	if blk, _ := pem.Decode(keyPEM); blk != nil {
		if blk.Type == "ENCRYPTED PRIVATE KEY" || blk.Headers["Proc-Type"] != "" {
			return tls.Certificate{}, fmt.Errorf("tls: key_file %s is encrypted: sensorgate reads unencrypted keys only; decrypt it (openssl pkey -in KEY -out KEY.plain), keep it mode 0600", keyFile)
		}
	} else {
		return tls.Certificate{}, fmt.Errorf("tls: key_file %s holds no PEM block: give the client's private key in PEM", keyFile)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// crypto/tls's errors name what failed, never the bytes.
		return tls.Certificate{}, fmt.Errorf("tls: cert_file %s and key_file %s are not a certificate and its key (check both are PEM and belong together): %w", certFile, keyFile, err)
	}
	return cert, nil
}
