package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/lorawan"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/gateway/ttsstorage"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// TestStoredUplinkSamePoints: every The Things Stack uplink of the shared
// feed corpus gives the same lines when it arrives live over MQTT and
// when a refill fetches it from the Storage Integration (whose results
// may lack correlation_ids, as the documentation's example does), so an
// uplink both received and refilled overwrites itself in InfluxDB. The
// points' identity is measurement, tags and time; time is the uplink's
// uplink_message.received_at, which both carry.
func TestStoredUplinkSamePoints(t *testing.T) {
	root := "../../testdata"
	clock := func() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }
	devs, err := devices.LoadFile(filepath.Join(root, "golden", "devices.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := devices.NewRegistry(devs)
	if err != nil {
		t.Fatal(err)
	}
	var cfg mqtt.Config
	raw, err := os.ReadFile(filepath.Join(root, "feeds", "tts-v3", "source.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Name = "tts"
	parser, err := mqtt.NewParser(cfg, clock)
	if err != nil {
		t.Fatal(err)
	}
	sink, dl := &goldenSink{}, &goldenDL{}
	p := &gateway.Pipeline{
		Devices: reg, Decoders: decoders.NewRegistry(), Sink: sink, DeadLetters: dl,
		Sources:     map[string]gateway.SourcePolicy{cfg.Name: {AcceptUnknown: !cfg.RejectUnknown(), Map: cfg.Map, GatewayPoints: true}},
		AllowedTags: []string{"district", "site"}, Log: zerolog.Nop(), Now: clock,
		Decrypt: lorawan.DecryptFRMPayload,
	}
	lines := func() string {
		out := strings.Join(sink.out, "") + strings.Join(dl.out, "")
		sink.out, dl.out = nil, nil
		return out
	}
	msgs, _ := filepath.Glob(filepath.Join(root, "feeds", "tts-v3", "*.json"))
	compared := 0
	for _, path := range msgs {
		body, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var head map[string]json.RawMessage
		if json.Unmarshal(body, &head) != nil || head["uplink_message"] == nil || head["received_at"] == nil {
			continue // the Storage Integration's uplink_message type holds uplinks only, each with received_at
		}
		topic, err := os.ReadFile(strings.TrimSuffix(path, ".json") + ".topic")
		if err != nil {
			t.Fatal(err)
		}
		up, err := parser.Parse(strings.TrimSpace(string(topic)), body)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if err := p.Handle(context.Background(), up); err != nil {
			t.Fatal(err)
		}
		live := lines()
		if !strings.Contains(live, "uplink,") {
			t.Fatalf("%s: live gave no uplink point:\n%s", path, live)
		}
		delete(head, "correlation_ids")
		bare, _ := json.Marshal(head)
		for variant, stored := range map[string][]byte{"as published": body, "without correlation_ids": bare} {
			srv := testserver.StartTTSStorage(t, "app", "key")
			if err := srv.Store(stored); err != nil {
				t.Fatal(err)
			}
			client, err := ttsstorage.New("tts", ttsstorage.Config{URL: srv.URL(), APIKey: ttsstorage.NewAPIKey("key"), ApplicationID: "app", RequestInterval: time.Millisecond}, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			fill := &ttsstorage.Backfill{Client: client, Parser: parser, Handler: p.Handle, DeadLetters: dl, Log: zerolog.Nop()}
			res, err := fill.Run(context.Background(), ttsstorage.Range{}, nil)
			if err != nil || res.Uplinks != 1 {
				t.Fatalf("%s (%s): %+v, %v\n%s", path, variant, res, err, lines())
			}
			if got := lines(); got != live {
				t.Errorf("%s (%s): stored gave\n%s\nlive gave\n%s", filepath.Base(path), variant, got, live)
			}
		}
		compared++
	}
	if compared < 4 {
		t.Fatalf("compared only %d uplinks of the corpus", compared)
	}
}
