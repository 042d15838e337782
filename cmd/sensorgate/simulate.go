package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sensorgate/sensorgate/internal/simulate"
)

func simulateCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("simulate", stderr)
	broker := fs.String("broker", "tcp://127.0.0.1:1883", "MQTT broker to publish to")
	format := fs.String("format", simulate.ChirpStackV4, "feed format: chirpstack-v4, tts-v3 or semtech-udp (raw encrypted frames of ABP devices, sent as gateways' packet forwarders do)")
	addr := fs.String("addr", "127.0.0.1:1700", "semtech-udp: the UDP address of sensorgate's semtech-udp source")
	gateways := fs.Int("gateways", 3, "semtech-udp: gateways in range; each uplink is heard by 1 to this many")
	macVersion := fs.String("mac-version", "1.0", "semtech-udp: the devices' LoRaWAN version, 1.0 or 1.1")
	devs := fs.Int("devices", 10, "number of simulated devices")
	count := fs.Int("count", 100, "number of uplinks to publish")
	rate := fs.Float64("rate", 10, "uplinks per second (0: as fast as the broker takes them)")
	seed := fs.Uint64("seed", 1, "random seed: the same seed publishes the same messages")
	start := fs.String("start", "", "time of the first uplink, RFC 3339 (default: now)")
	interval := fs.Duration("interval", time.Second, "uplink time step between consecutive messages")
	qos := fs.Int("qos", 1, "MQTT QoS (0, 1 or 2)")
	clientID := fs.String("client-id", "sensorgate-simulate", "MQTT client id")
	devicesOut := fs.String("write-devices", "", "write the simulated fleet as a devices file (YAML; CSV with the session keys for semtech-udp), and publish nothing unless -count is set too")
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
	if *format == simulate.SemtechUDP {
		return simulateSemtech(ctx, fs, opt, semtechFlags{addr: *addr, gateways: *gateways, macVersion: *macVersion,
			devicesOut: *devicesOut, count: *count, rate: *rate}, stdout)
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

// semtechFlags are the simulate flags the semtech-udp format uses.
type semtechFlags struct {
	addr, macVersion, devicesOut string
	gateways, count              int
	rate                         float64
}

// simulateSemtech sends encrypted frames of a simulated ABP fleet to a
// semtech-udp source, as the fleet's gateways would. The devices file it
// writes must be CSV: YAML of devices masks session keys, and a registry
// without the keys cannot check or decrypt a single frame.
func simulateSemtech(ctx context.Context, fs *flag.FlagSet, opt simulate.Options, sf semtechFlags, stdout io.Writer) error {
	fleet, err := simulate.NewSemtechFleet(simulate.SemtechOptions{Devices: opt.Devices, Gateways: sf.gateways, Seed: opt.Seed,
		Start: opt.Start, Interval: opt.Interval, MACVersion: sf.macVersion})
	if err != nil {
		return err
	}
	if sf.devicesOut != "" {
		if ext := strings.ToLower(filepath.Ext(sf.devicesOut)); ext != ".csv" {
			return fmt.Errorf("simulate: -write-devices %s: for semtech-udp the devices file is CSV, the one form that keeps the session keys: name it .csv", sf.devicesOut)
		}
		if err := writeDevicesCSV(sf.devicesOut, fleet); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %d devices with their ABP sessions to %s\n", opt.Devices, sf.devicesOut)
		if !flagSet(fs.Visit, "count") {
			return nil
		}
	}
	began := time.Now()
	n := 0
	err = simulate.SendSemtech(ctx, fleet, simulate.SemtechSendOptions{Addr: sf.addr, Rate: sf.rate, Count: sf.count,
		OnSent: func(simulate.SemtechMessage) { n++ }})
	el := time.Since(began)
	fmt.Fprintf(stdout, "sent %d semtech-udp uplinks from %d devices via %d gateways to %s in %s (%.0f uplinks/s)\n",
		n, opt.Devices, sf.gateways, sf.addr, el.Round(time.Millisecond), float64(n)/el.Seconds())
	return err
}

// writeDevicesCSV writes the fleet with its keys, and reports a failed
// close: the file is what the daemon imports.
func writeDevicesCSV(path string, fleet *simulate.SemtechFleet) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("simulate: write devices file: %w", err)
	}
	if err := fleet.WriteDevicesCSV(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("simulate: write devices file: %w", err)
	}
	return nil
}
