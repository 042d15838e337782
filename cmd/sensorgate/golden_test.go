package main

import (
	"context"
	"errors"
	"flag"
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
	"github.com/sensorgate/sensorgate/gateway/influx"
	"github.com/sensorgate/sensorgate/gateway/lorawan"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/gateways"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/golden from the current pipeline")

// TestGolden feeds every message in testdata/feeds through the whole
// pipeline (feed parser, registry, decoders, normalization, points, line
// protocol) and compares the lines, or the dead letter, with
// testdata/golden/<dir>/<name>.lp. A change of the InfluxDB schema shows
// up here as a diff to review.
func TestGolden(t *testing.T) {
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
	dirs, _ := filepath.Glob(filepath.Join(root, "feeds", "*", "source.yaml"))
	bad, _ := filepath.Glob(filepath.Join(root, "feeds", "bad", "*", "source.yaml"))
	dirs = append(dirs, bad...)
	if len(dirs) < 5 {
		t.Fatalf("found only %d feed folders", len(dirs))
	}
	seen := 0
	for _, srcYAML := range dirs {
		dir := filepath.Dir(srcYAML)
		rel, _ := filepath.Rel(filepath.Join(root, "feeds"), dir)
		var cfg mqtt.Config
		raw, err := os.ReadFile(srcYAML)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		cfg.Name = strings.ReplaceAll(rel, "/", "-")
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
		msgs, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, msgPath := range msgs {
			name := strings.TrimSuffix(filepath.Base(msgPath), ".json")
			t.Run(rel+"/"+name, func(t *testing.T) {
				seen++
				body, err := os.ReadFile(msgPath)
				if err != nil {
					t.Fatal(err)
				}
				topic, err := os.ReadFile(strings.TrimSuffix(msgPath, ".json") + ".topic")
				if err != nil {
					t.Fatal(err)
				}
				sink.out, dl.out = nil, nil
				up, err := parser.Parse(strings.TrimSpace(string(topic)), body)
				if err != nil {
					// What the MQTT source does with a message it cannot parse.
					reason := gateway.ReasonMalformed
					var pe *mqtt.ParseError
					if errors.As(err, &pe) {
						reason = pe.Reason
					}
					dl.out = append(dl.out, "# dead letter "+string(reason)+": "+err.Error()+"\n")
				} else if err := p.Handle(context.Background(), up); err != nil {
					t.Fatal(err)
				}
				got := strings.Join(sink.out, "") + strings.Join(dl.out, "")
				if err == nil && up.Kind == gateway.KindIgnored {
					got = "# ignored: an event sensorgate does not use (counted as events_ignored)\n"
				}
				if got == "" {
					t.Fatal("message produced neither points nor a dead letter")
				}
				if strings.HasPrefix(rel, "bad") && !strings.HasPrefix(got, "# dead letter") {
					t.Fatalf("a bad message produced points:\n%s", got)
				}
				checkGolden(t, filepath.Join(root, "golden", rel, name+".lp"), got)
			})
		}
	}
	if seen < 30 {
		t.Fatalf("only %d feed messages checked", seen)
	}
}

// TestGoldenGatewayStats is TestGolden for gateway statistics
// (testdata/feeds/gateway-stats, read by the gateway-bridge source's
// handler): each message's gateway point, with the tags
// testdata/golden/gateways.yaml gives, or its dead letter.
func TestGoldenGatewayStats(t *testing.T) {
	root := "../../testdata"
	clock := func() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }
	table := gateways.NewTable(0)
	if _, err := gateways.Open(table, filepath.Join(root, "golden", "gateways.yaml"), ""); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, rel := range []string{"gateway-stats", "bad/gateway-stats"} {
		msgs, _ := filepath.Glob(filepath.Join(root, "feeds", rel, "*.json"))
		for _, msgPath := range msgs {
			name := strings.TrimSuffix(filepath.Base(msgPath), ".json")
			t.Run(rel+"/"+name, func(t *testing.T) {
				seen++
				body, err := os.ReadFile(msgPath)
				if err != nil {
					t.Fatal(err)
				}
				topic, err := os.ReadFile(strings.TrimSuffix(msgPath, ".json") + ".topic")
				if err != nil {
					t.Fatal(err)
				}
				sink, dl := &goldenSink{}, &goldenDL{}
				p := &gateway.Pipeline{Sink: sink, DeadLetters: dl, Log: zerolog.Nop(), Now: clock,
					Gateways: gateways.Tagger{Table: table}, GatewayTags: []string{"site"}}
				var got string
				up, err := lorawan.ParseBridgeStats(strings.TrimSpace(string(topic)), body)
				if err != nil {
					got = "# dead letter malformed: " + err.Error() + "\n"
				} else {
					up.Source = "bridge"
					if err := p.Handle(context.Background(), up); err != nil {
						t.Fatal(err)
					}
					got = strings.Join(sink.out, "") + strings.Join(dl.out, "")
				}
				if strings.HasPrefix(rel, "bad") != strings.HasPrefix(got, "# dead letter") {
					t.Fatalf("%s gave:\n%s", rel, got)
				}
				checkGolden(t, filepath.Join(root, "golden", rel, name+".lp"), got)
			})
		}
	}
	if seen < 6 {
		t.Fatalf("only %d gateway stats messages checked", seen)
	}
}

// checkGolden compares got with the golden file, or rewrites the file
// with -update-golden.
func checkGolden(t *testing.T, golden, got string) {
	t.Helper()
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/sensorgate -run Golden -update-golden and review the new file)", err)
	}
	if got != string(want) {
		t.Fatalf("line protocol differs from %s (review, then -update-golden):\n--- got\n%s--- want\n%s", golden, got, want)
	}
}

type goldenSink struct{ out []string }

func (s *goldenSink) Write(_ context.Context, pts []gateway.Point) error {
	for _, p := range pts {
		b, err := influx.AppendPoint(nil, p)
		if err != nil {
			return errors.Join(gateway.ErrRejected, err)
		}
		s.out = append(s.out, string(b))
	}
	return nil
}

type goldenDL struct{ out []string }

func (d *goldenDL) Put(_ context.Context, dl gateway.DeadLetter) error {
	d.out = append(d.out, "# dead letter "+string(dl.Reason)+": "+dl.Detail+"\n")
	return nil
}
