package main

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/lorawan"
)

type uplinkRecorder struct {
	mu  sync.Mutex
	ups []gateway.Uplink
}

func (r *uplinkRecorder) handle(_ context.Context, up gateway.Uplink) error {
	r.mu.Lock()
	r.ups = append(r.ups, up)
	r.mu.Unlock()
	return nil
}

func (r *uplinkRecorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ups)
}

type discardDL struct{ n int }

func (d *discardDL) Put(context.Context, gateway.DeadLetter) error { d.n++; return nil }

// TestSimulateSemtechUDP: the devices CSV that simulate writes is what a
// semtech-udp source needs to take every frame simulate then sends; a
// YAML devices file is refused, since it would hold masked keys.
func TestSimulateSemtechUDP(t *testing.T) {
	dir := t.TempDir()
	code, _, errs := runMain(t, "simulate", "-format", "semtech-udp", "-devices", "3", "-write-devices", filepath.Join(dir, "devices.yaml"))
	if code != 1 || !strings.Contains(errs, "name it .csv") {
		t.Fatalf("-write-devices .yaml: code %d, %q", code, errs)
	}
	csvPath := filepath.Join(dir, "devices.csv")
	code, out, errs := runMain(t, "simulate", "-format", "semtech-udp", "-devices", "3", "-seed", "7", "-write-devices", csvPath)
	if code != 0 || !strings.Contains(out, "wrote 3 devices") {
		t.Fatalf("-write-devices .csv: code %d, %q %q", code, out, errs)
	}
	devs, err := devices.LoadFile(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := devices.NewRegistry(devs)
	if err != nil {
		t.Fatal(err)
	}
	counters := &gateway.Counters{}
	dl := &discardDL{}
	src, err := lorawan.New(lorawan.Config{Name: "sim", Listen: "127.0.0.1:0", DrainTimeout: 5 * time.Second}, reg, dl, counters, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	var rec uplinkRecorder
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, rec.handle) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	<-src.Ready()

	code, out, errs = runMain(t, "simulate", "-format", "semtech-udp", "-addr", src.Addr().String(), "-devices", "3", "-seed", "7",
		"-count", "8", "-rate", "0", "-gateways", "2", "-start", "2026-03-01T00:00:00Z")
	if code != 0 || !strings.Contains(out, "sent 8 semtech-udp uplinks from 3 devices via 2 gateways") {
		t.Fatalf("simulate: code %d, %q %q", code, out, errs)
	}
	deadline := time.Now().Add(10 * time.Second)
	for rec.len() < 8 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 8 uplinks taken; counters %v", rec.len(), counters.Snapshot())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := counters.Get("lorawan.bad_mic"); n != 0 || dl.n != 0 {
		t.Fatalf("%d frames with a bad MIC, %d dead letters: the CSV keys are not the ones simulate sends with", n, dl.n)
	}
}
