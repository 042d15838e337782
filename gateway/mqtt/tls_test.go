package mqtt

import (
	"net/url"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway/tlsconfig"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// TestSourceTLS runs a source against a real Mosquitto whose TLS listener
// has a certificate from a private CA and requires a client certificate
// signed by it (as a broker for ChirpStack v4's integration certificates
// does). With the CA and the client certificate configured the source
// subscribes and receives; the other cases are refused by the handshake.
func TestSourceTLS(t *testing.T) {
	pki := testserver.NewPKI(t)
	broker := testserver.StartMosquitto(t, testserver.TLSListener(pki))
	good := tlsconfig.Config{CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}

	t.Run("private CA and client certificate", func(t *testing.T) {
		logs := &syncBuffer{}
		cfg := Config{
			Name: "tls-ok", Type: "mqtt", Format: FormatChirpStackV4, Broker: broker.TLSURL(),
			Topics: []string{"application/+/device/+/event/up"}, ReconnectMax: 500 * time.Millisecond, TLS: good,
		}
		s, err := New(cfg, &memDeadLetters{}, zerolog.New(logs))
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		stop := startRun(t, s, rec.handle)
		// Published on the plain listener: the same broker, so the TLS
		// session receives it.
		topic, payload, _ := v4Message(1)
		publish(t, publisher(t, broker.URL()), topic, payload)
		waitFor(t, 10*time.Second, "uplink received over TLS", func() bool { return len(rec.list()) == 1 })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(logs.String(), string(pki.ClientKeyPEM[28:60])) {
			t.Fatalf("the log holds key material:\n%s", logs)
		}
	})

	other := testserver.NewPKI(t)
	for _, tc := range []struct {
		name string
		tls  tlsconfig.Config
		want string // in the connection error; "" where only the broker can tell
	}{
		{"server certificate from another CA", tlsconfig.Config{CAFile: other.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}, "certificate"},
		{"system pool", tlsconfig.Config{CertFile: pki.ClientCert, KeyFile: pki.ClientKey}, "certificate"},
		// With TLS 1.3 the broker refuses a client certificate after the
		// client's handshake is done, so the client sees either the alert
		// or the closed connection; the broker's log says which.
		{"no client certificate", tlsconfig.Config{CAFile: pki.CAFile}, ""},
		{"client certificate of another CA", tlsconfig.Config{CAFile: pki.CAFile, CertFile: other.ClientCert, KeyFile: other.ClientKey}, ""},
	} {
		t.Run(tc.name+" refused", func(t *testing.T) {
			s := newTestSource(t, broker.TLSURL(), "tls-bad", &memDeadLetters{}, func(c *Config) { c.TLS = tc.tls })
			err := connectOnce(t, s)
			if err == nil {
				t.Fatal("connected, want the TLS handshake refused")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			for _, key := range [][]byte{pki.ClientKeyPEM, other.ClientKeyPEM} {
				if strings.Contains(err.Error(), string(key[28:60])) {
					t.Fatalf("error quotes key material: %v", err)
				}
			}
		})
	}
	if log := broker.Log(); !strings.Contains(log, "certificate") {
		t.Errorf("the broker's log names no refused certificate:\n%s", log)
	}
}

// connectOnce makes one MQTT connection as s would (its dial function and
// TLS settings) and returns the error, without retrying.
func connectOnce(t *testing.T, s *Source) error {
	t.Helper()
	u, err := url.Parse(s.cfg.Broker)
	if err != nil {
		t.Fatal(err)
	}
	o := paho.NewClientOptions().AddBroker(s.cfg.Broker).SetClientID(s.cfg.ClientID).
		SetConnectRetry(false).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
		SetTLSConfig(s.tls).SetCustomOpenConnectionFn(openBuffered)
	if s.tls == nil || u.Scheme != "ssl" {
		t.Fatalf("source for %s has no TLS configuration", s.cfg.Broker)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(15 * time.Second) {
		t.Fatal("connect did not finish in 15s")
	}
	if tok.Error() == nil {
		c.Disconnect(0)
	}
	return tok.Error()
}

// TestTLSValidation: a tls block a broker URL would ignore, or that
// cannot be loaded, is refused at New with the setting named.
func TestTLSValidation(t *testing.T) {
	pki := testserver.NewPKI(t)
	for _, tc := range []struct {
		name, broker string
		tls          tlsconfig.Config
		want         string
	}{
		{"tls on tcp", "tcp://127.0.0.1:1883", tlsconfig.Config{CAFile: pki.CAFile}, "not a TLS URL"},
		{"key without cert", "ssl://127.0.0.1:8883", tlsconfig.Config{KeyFile: pki.ClientKey}, "cert_file missing"},
		{"missing key file", "ssl://127.0.0.1:8883", tlsconfig.Config{CertFile: pki.ClientCert, KeyFile: pki.Dir + "/none.pem"}, "key_file"},
		{"certificate as key", "ssl://127.0.0.1:8883", tlsconfig.Config{CertFile: pki.ClientCert, KeyFile: pki.ClientCert}, "belong together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Name: "x", Type: "mqtt", Format: FormatChirpStackV4, Broker: tc.broker, Topics: []string{"a/#"}, TLS: tc.tls}
			_, err := New(cfg, &memDeadLetters{}, zerolog.Nop())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
