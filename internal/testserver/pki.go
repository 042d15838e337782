package testserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// PKI is a private certificate authority made for one test, with a server
// certificate for 127.0.0.1 and localhost and a client certificate, all
// as PEM files in a temporary directory: what a city's own CA hands its
// brokers, InfluxDB and clients.
type PKI struct {
	Dir        string
	CAFile     string // the authority's certificate
	ServerCert string // for 127.0.0.1, ::1 and localhost, signed by the CA
	ServerKey  string
	ClientCert string // client authentication, CN "sensorgate", signed by the CA
	ClientKey  string
	// ClientKeyPEM is the client key file's content, for tests that check
	// it appears nowhere.
	ClientKeyPEM []byte
}

// NewPKI makes a fresh authority and its certificates. Each call makes
// another authority, so two PKIs do not trust each other.
func NewPKI(t TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	p := &PKI{Dir: dir}
	caKey := newKey(t)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "sensorgate test CA " + filepath.Base(dir)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("pki: CA certificate: %v", err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p.CAFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)

	issue := func(name string, tmpl *x509.Certificate) (certFile, keyFile string, keyPEM []byte) {
		key := newKey(t)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatalf("pki: %s certificate: %v", name, err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatalf("pki: %s key: %v", name, err)
		}
		certFile = writePEM(t, dir, name+".pem", "CERTIFICATE", der)
		keyFile = writePEM(t, dir, name+"-key.pem", "PRIVATE KEY", kder)
		return certFile, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	}
	p.ServerCert, p.ServerKey, _ = issue("server", &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	p.ClientCert, p.ClientKey, p.ClientKeyPEM = issue("client", &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: "sensorgate"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return p
}

func newKey(t TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("pki: generate key: %v", err)
	}
	return k
}

func serial(t TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("pki: serial: %v", err)
	}
	return n
}

func writePEM(t TB, dir, name, typ string, der []byte) string {
	path := filepath.Join(dir, name)
	// 0644 even for keys, so that a server running as another user can
	// read them: a test's keys guard nothing.
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
		t.Fatalf("pki: write %s: %v", name, err)
	}
	return path
}
