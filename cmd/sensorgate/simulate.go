package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sensorgate/sensorgate/internal/simulate"
)

func simulateCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("simulate", stderr)
	broker := fs.String("broker", "tcp://127.0.0.1:1883", "MQTT broker to publish to")
	format := fs.String("format", simulate.ChirpStackV4, "feed format: chirpstack-v4 or tts-v3")
	devs := fs.Int("devices", 10, "number of simulated devices")
	count := fs.Int("count", 100, "number of uplinks to publish")
	rate := fs.Float64("rate", 10, "uplinks per second (0: as fast as the broker takes them)")
	seed := fs.Uint64("seed", 1, "random seed: the same seed publishes the same messages")
	start := fs.String("start", "", "time of the first uplink, RFC 3339 (default: now)")
	interval := fs.Duration("interval", time.Second, "uplink time step between consecutive messages")
	qos := fs.Int("qos", 1, "MQTT QoS (0, 1 or 2)")
	clientID := fs.String("client-id", "sensorgate-simulate", "MQTT client id")
	devicesOut := fs.String("write-devices", "", "write the simulated fleet as a devices YAML file, and publish nothing unless -count is set too")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	opt := simulate.Options{Format: *format, Devices: *devs, Seed: *seed, Interval: *interval, Start: time.Now().UTC().Truncate(time.Millisecond)}
	if *start != "" {
		t, err := time.Parse(time.RFC3339Nano, *start)
		if err != nil {
			return fmt.Errorf("simulate: -start %q: %w", *start, err)
		}
		opt.Start = t
	}
	fleet, err := simulate.NewFleet(opt)
	if err != nil {
		return err
	}
	if *devicesOut != "" {
		b, err := yaml.Marshal(map[string]any{"devices": fleet.Devices()})
		if err != nil {
			return err
		}
		if err := os.WriteFile(*devicesOut, b, 0o644); err != nil {
			return fmt.Errorf("simulate: write devices file: %w", err)
		}
		fmt.Fprintf(stdout, "wrote %d devices to %s\n", *devs, *devicesOut)
		if !flagSet(fs.Visit, "count") {
			return nil
		}
	}
	if *qos < 0 || *qos > 2 {
		return fmt.Errorf("simulate: -qos %d: use 0, 1 or 2", *qos)
	}
	began := time.Now()
	n := 0
	err = simulate.Publish(ctx, fleet, simulate.PublishOptions{
		Broker: *broker, ClientID: *clientID, QoS: byte(*qos), Rate: *rate, Count: *count,
		OnPublished: func(simulate.Message) { n++ },
	})
	el := time.Since(began)
	fmt.Fprintf(stdout, "published %d %s uplinks from %d devices in %s (%.0f msgs/s)\n", n, *format, *devs, el.Round(time.Millisecond), float64(n)/el.Seconds())
	return err
}

func flagSet(visit func(func(*flag.Flag)), name string) bool {
	found := false
	visit(func(f *flag.Flag) {
		if f.Name == name {
			found = true
		}
	})
	return found
}
