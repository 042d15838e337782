package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// Two daemons' registries on one PostgreSQL: a device adopted through one
// leaves the other's unknown devices, as its status page lists them; once
// deleted through one, it leaves the other's health.
func TestSharedRegistryAdoptionLeavesOtherInstancesUnknowns(t *testing.T) {
	ctx := context.Background()
	cfg := &config.Config{StateDir: t.TempDir(), Registry: config.RegistryConfig{Driver: devices.DriverPostgres, DSN: testserver.PostgresDB(t)}}
	open := func() (*devices.Store, *devices.Unknowns, *devices.Health) {
		u, h := devices.NewUnknowns(), devices.NewHealth(0)
		s, err := openRegistry(ctx, cfg, &devices.Registry{}, u, h, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, u, h
	}
	a, ua, _ := open()
	b, ub, hb := open()
	e := devices.EUI{0x70, 0xb3, 1}
	for _, u := range []*devices.Unknowns{ua, ub} {
		u.Observe(devices.UnknownObservation{EUI: e, Time: time.Now(), Source: "cs", Name: "ns-name"})
	}
	if err := a.Adopt(ctx, devices.Device{EUI: e, Name: "adopted", Model: "cayenne-lpp"}, ua); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, unknown := ub.Get(e)
		d, registered := b.Registry().Lookup(e)
		if !unknown && registered && d.Model == "cayenne-lpp" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("2 s after the adoption on A, B lists it as unknown %v, registered %v", unknown, registered)
		}
		time.Sleep(5 * time.Millisecond)
	}
	hb.Observe(devices.Observation{EUI: e, Time: time.Now(), FCnt: 1, HasFCnt: true})
	if err := a.Delete(ctx, e); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(2 * time.Second)
	for {
		if _, tracked := hb.Get(e, time.Now()); !tracked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("2 s after the deletion on A, B still has the device's health")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLoRaWANReplayRefusedAfterRestart: a daemon takes raw frames through
// its semtech-udp source and stops; the next daemon on the same registry
// (SQLite under state_dir, or a PostgreSQL shared by instances) refuses a
// recorded frame sent again, and takes the device's next frame.
func TestLoRaWANReplayRefusedAfterRestart(t *testing.T) {
	db := testserver.StartInfluxDB(t)
	for _, driver := range []string{devices.DriverSQLite, devices.DriverPostgres} {
		t.Run(driver, func(t *testing.T) {
			dir := t.TempDir()
			fleet, err := simulate.NewSemtechFleet(simulate.SemtechOptions{Devices: 1, Gateways: 1, Seed: 5})
			if err != nil {
				t.Fatal(err)
			}
			var csv bytes.Buffer
			if err := fleet.WriteDevicesCSV(&csv); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "devices.csv"), csv.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			registry := ""
			if driver == devices.DriverPostgres {
				registry = fmt.Sprintf("registry: {driver: postgres, dsn: %q}", testserver.PostgresDB(t))
			}
			udpAddr := freeUDPAddr(t)
			cfgPath := filepath.Join(dir, "sensorgate.yaml")
			cfgText := fmt.Sprintf(`
log: {level: warn, format: json}
state_dir: %[1]s/state
%[6]s
http: {listen: "127.0.0.1:%[5]d"}
sources:
  - {name: udp-gw, type: semtech-udp, listen: %[2]q, dedup_window: 50ms}
influx: {url: %[3]q, bucket: %[4]q, flush_interval: 20ms}
devices: {import: %[1]s/devices.csv}
`, dir, udpAddr, db.URL(), db.Bucket(), testserver.FreePort(t), registry)
			if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				t.Fatal(err)
			}
			devs := fleet.Devices()
			gw := devices.EUI{0xb8, 0x27, 0xeb, 0xff, 0xfe, 0, 0, 1}
			frame := func(fcnt uint32) []byte {
				phy, err := simulate.EncodeUplink(devs[0].Session, fcnt, 2, []byte{1, 0x67, 0, byte(fcnt)})
				if err != nil {
					t.Fatal(err)
				}
				return phy
			}

			first := runDaemon(t, cfg)
			waitUDPListening(t, udpAddr)
			for fcnt := uint32(1); fcnt <= 3; fcnt++ {
				pushRaw(t, udpAddr, gw, frame(fcnt))
			}
			awaitCounter(t, first.d, "lorawan.uplinks", 3)
			first.stop()

			second := runDaemon(t, cfg)
			waitUDPListening(t, udpAddr)
			c := second.d.Counters
			refused := func() uint64 { return c.Get("lorawan.replays") + c.Get("lorawan.duplicates_other_instance") }
			pushRaw(t, udpAddr, gw, frame(2)) // recorded, sent again
			// Its verdict first: frame 4's claim may share frame 2's
			// store transaction, and then either may be counted first.
			waitFor(t, 20*time.Second, "frame 2 refused or taken", func() bool { return refused()+c.Get("lorawan.uplinks") >= 1 },
				func() string { return fmt.Sprint(c.Snapshot()) })
			pushRaw(t, udpAddr, gw, frame(4))
			awaitCounter(t, second.d, "lorawan.uplinks", 1)
			if got := refused(); c.Get("lorawan.uplinks") != 1 || got != 1 {
				t.Fatalf("after the restart: %d uplinks, %d refused, want 1 and 1; counters %v", c.Get("lorawan.uplinks"), got, c.Snapshot())
			}
		})
	}
}

// daemonRun is a daemon a test stops itself, to start another on the same
// state.
type daemonRun struct {
	d    *Daemon
	stop func()
}

func runDaemon(t *testing.T, cfg *config.Config) daemonRun {
	t.Helper()
	d, err := NewDaemon(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- d.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-runErr; err != nil {
				t.Errorf("Run: %v", err)
			}
			d.Close()
		})
	}
	t.Cleanup(stop)
	return daemonRun{d: d, stop: stop}
}
