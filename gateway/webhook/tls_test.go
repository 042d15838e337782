package webhook

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// TestTLS: with tls_cert and tls_key the source serves HTTPS only, with
// the configured certificate; a bad key file stops New.
func TestTLS(t *testing.T) {
	pki := testserver.NewPKI(t)
	cfg := testConfig(mqtt.FormatChirpStackV4)
	cfg.TLSCert, cfg.TLSKey = pki.ServerCert, pki.ServerKey
	rec := &recorder{}
	r := startRig(t, cfg, rec.handle)
	pem, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	url := strings.Replace(r.url, "http://", "https://", 1) + "/hook/"
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(upBody(t)))
	req.Header.Set("X-Secret", "s3cret")
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent || len(rec.all()) != 1 {
		t.Fatalf("over HTTPS: %d, %d uplinks", res.StatusCode, len(rec.all()))
	}
	if res, err := http.Post(r.url+"/hook/", "application/json", strings.NewReader(upBody(t))); err == nil {
		res.Body.Close()
		if res.StatusCode == http.StatusNoContent {
			t.Fatal("plain HTTP taken by a TLS source")
		}
	}

	cfg.TLSKey = pki.ClientKey // not the certificate's key
	if _, err := New(cfg, &letters{}, &gateway.Counters{}, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "tls_cert/tls_key") {
		t.Fatalf("New with a mismatched key: %v", err)
	}
}
