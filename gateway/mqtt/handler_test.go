package mqtt

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// TestMessageHandlerReplacesParser: with WithMessageHandler, messages go
// to the handler as published (no parser, so a gateway-bridge event is
// fine), are acknowledged when it returns nil and redelivered after it
// refused one.
func TestMessageHandlerReplacesParser(t *testing.T) {
	m := testserver.StartMosquitto(t)
	var (
		mu      sync.Mutex
		got     = map[string]int{}
		refuse  = true
		handled []gateway.Uplink
	)
	mh := func(ctx context.Context, topic string, payload []byte, h gateway.Handler) error {
		mu.Lock()
		got[string(payload)]++
		no := refuse && string(payload) == "frame-2"
		if no {
			refuse = false
		}
		mu.Unlock()
		if no {
			return errors.New("frame handler busy")
		}
		// The handler passes the pipeline's Handler on: what it builds
		// from the message goes there.
		return h(ctx, gateway.Uplink{Topic: topic, Raw: payload})
	}
	cfg := Config{
		Name: "bridge", Type: "mqtt", Format: FormatGatewayBridge, Broker: m.URL(),
		Topics: []string{"eu868/gateway/+/event/up"}, ClientID: "bridge", ReconnectMax: 500 * time.Millisecond,
		UnknownDevices: "drop", // the frame handler's policy: not checked here
	}
	s, err := New(cfg, &memDeadLetters{}, zerolog.Nop(), WithMessageHandler(mh))
	if err != nil {
		t.Fatal(err)
	}
	stop := startRun(t, s, func(_ context.Context, up gateway.Uplink) error {
		mu.Lock()
		handled = append(handled, up)
		mu.Unlock()
		return nil
	})
	pub := publisher(t, m.URL())
	for _, p := range []string{"frame-1", "frame-2", "frame-3"} {
		publish(t, pub, "eu868/gateway/0016c001f153a14c/event/up", []byte(p))
	}
	waitFor(t, 20*time.Second, "three frames handled, one of them after redelivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == 3 && got["frame-2"] == 2
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got["frame-1"] != 1 || got["frame-3"] != 1 {
		t.Errorf("acknowledged messages came again: %v", got)
	}
	for _, up := range handled {
		if !strings.HasPrefix(up.Topic, "eu868/gateway/") {
			t.Errorf("topic %q", up.Topic)
		}
	}
}

func TestGatewayBridgeNeedsMessageHandler(t *testing.T) {
	cfg := Config{Name: "bridge", Format: FormatGatewayBridge, Broker: "tcp://127.0.0.1:1883", Topics: []string{"+/gateway/+/event/up"}}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("gateway-bridge is a valid format: %v", err)
	}
	if cfg.withDefaults().UnknownDevices != "" {
		t.Error("gateway-bridge got an accept/reject default: its policy is the frame handler's")
	}
	_, err := New(cfg, &memDeadLetters{}, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "WithMessageHandler") {
		t.Fatalf("New without a message handler: %v", err)
	}
}
