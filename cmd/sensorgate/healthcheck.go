package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/sensorgate/sensorgate/config"
)

// healthcheckCommand asks the daemon of the config for GET /healthz and
// succeeds only on 200. It is the Dockerfile's HEALTHCHECK (the image has
// no shell nor curl) and serves systemd or a monitoring agent alike.
func healthcheckCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("healthcheck", stderr)
	path := fs.String("c", "/etc/sensorgate/sensorgate.yaml", "config file (its http.listen is asked)")
	addr := fs.String("addr", "", "host:port to ask instead of the config's http.listen")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "sensorgate healthcheck: -timeout must be above 0")
		return errUsage
	}
	listen, tlsCert := *addr, ""
	if listen == "" {
		cfg, err := config.Load(*path)
		if err != nil {
			return fmt.Errorf("healthcheck: %w", err)
		}
		listen, tlsCert = cfg.HTTP.Listen, cfg.HTTP.TLSCert
	}
	url, client, err := healthClient(listen, tlsCert, *timeout)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %s does not answer (is the daemon running? check its log): %w", url, err)
	}
	defer resp.Body.Close()
	// A health answer is a few bytes; whatever else answers there is not
	// read beyond this.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s: %q", url, resp.Status, body)
	}
	fmt.Fprintf(stdout, "%s: ok\n", url)
	return nil
}

// apiEndpoint is the base URL at which a client on this machine reaches
// the API listening on listen (an unspecified host is asked on loopback),
// and a transport for it: with the API on HTTPS the daemon's own
// certificate is trusted, so a self-signed one works. A zero Transport
// uses no HTTP_PROXY: the daemon is asked directly. The CLI's API
// commands (dialAPI) and healthcheck share it.
func apiEndpoint(listen, tlsCert string) (string, *http.Transport, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", nil, fmt.Errorf("listen address %q is not host:port: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme, tr := "http", &http.Transport{}
	if tlsCert != "" {
		scheme = "https"
		pool, _ := x509.SystemCertPool()
		if pool == nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(tlsCert)
		if err != nil {
			return "", nil, fmt.Errorf("read http.tls_cert: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return "", nil, errors.New("http.tls_cert holds no PEM certificate")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return scheme + "://" + net.JoinHostPort(host, port), tr, nil
}

// healthClient is the /healthz URL for a listen address and a client for it.
func healthClient(listen, tlsCert string, timeout time.Duration) (string, *http.Client, error) {
	base, tr, err := apiEndpoint(listen, tlsCert)
	if err != nil {
		return "", nil, fmt.Errorf("healthcheck: %w", err)
	}
	return base + "/healthz", &http.Client{Transport: tr, Timeout: timeout}, nil
}
