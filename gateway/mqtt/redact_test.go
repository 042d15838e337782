package mqtt

import (
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/internal/testserver"
)

func TestRedactBroker(t *testing.T) {
	tests := []struct{ in, want string }{
		{"tcp://127.0.0.1:1883", "tcp://127.0.0.1:1883"},
		{"tcp://user:hunter2@127.0.0.1:1883", "tcp://user:xxxxx@127.0.0.1:1883"},
		{"ssl://user@broker:8883", "ssl://user@broker:8883"},
		{"tcp://us%zz:hunter2@host:1883", "tcp://xxxxx@host:1883"}, // does not parse
		{"user:hunter2@host:1883", "xxxxx@host:1883"},
		{"tcp://a:b@c:hunter2@host:1883", "tcp://a:xxxxx@host:1883"},
	}
	for _, tt := range tests {
		got := RedactBroker(tt.in)
		if got != tt.want || strings.Contains(got, "hunter2") {
			t.Errorf("RedactBroker(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestBrokerPasswordNotLogged connects to a real Mosquitto with a
// password in the broker URL (a config refuses that; code may not) and
// checks that the log, which names the broker on every line, never
// holds it.
func TestBrokerPasswordNotLogged(t *testing.T) {
	m := testserver.StartMosquitto(t) // anonymous: any credentials are taken
	cfg := Config{
		Name: "redact", Type: "mqtt", Format: FormatChirpStackV4,
		Broker: strings.Replace(m.URL(), "tcp://", "tcp://user:hunter2@", 1),
		Topics: []string{"application/+/device/+/event/up"}, ClientID: "redact",
	}
	logs := &syncBuffer{}
	s, err := New(cfg, &memDeadLetters{}, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	stop := startRun(t, s, (&recorder{}).handle)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "subscribed") || !strings.Contains(out, "user:xxxxx@127.0.0.1") {
		t.Fatalf("the log does not show the connection with the redacted broker:\n%s", out)
	}
	if strings.Contains(out, "hunter2") {
		t.Fatalf("the password is in the log:\n%s", out)
	}
	for _, bad := range []string{"tcp://u:hunter2@", "tcp://u:hunter2@127.0.0.1"} {
		if err := (Config{Name: "x", Type: "mqtt", Format: "nope", Broker: bad}).Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("validate %q: %v", bad, err)
		}
	}
}
