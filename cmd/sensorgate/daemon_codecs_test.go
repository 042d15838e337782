package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/decoders/sandbox"
	"github.com/sensorgate/sensorgate/decoders/script"
)

// TestCodecsReadiness: /readyz's codecs entry fails (not ready) while
// codec workers cannot start; codec_limits is advisory and says ok while
// nothing went wrong.
func TestCodecsReadiness(t *testing.T) {
	pool := sandbox.New(sandbox.Config{Workers: 1, Command: func() *exec.Cmd {
		return exec.Command(filepath.Join(t.TempDir(), "missing"))
	}})
	defer pool.Close()
	d := &Daemon{codecs: pool}
	checks := map[string]func(context.Context) error{}
	for _, c := range d.codecsCheck() {
		checks[c.Name] = c.Check
		if c.Advisory != (c.Name == "codec_limits") {
			t.Errorf("check %s advisory %v", c.Name, c.Advisory)
		}
	}
	ctx := context.Background()
	if err := checks["codecs"](ctx); err != nil {
		t.Fatalf("before any start: %v", err)
	}
	c, err := pool.Load("x.js", []byte("function decodeUplink(i){return {data:{}}}"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decode(decoders.Input{}); err == nil {
		t.Fatal("decoded without a worker")
	}
	if err := checks["codecs"](ctx); err == nil || !strings.Contains(err.Error(), "do not start") {
		t.Errorf("codecs check %v, want the start error", err)
	}
	if err := checks["codec_limits"](ctx); err != nil {
		t.Errorf("codec_limits %v, want ok (nothing killed)", err)
	}
	if (&Daemon{}).codecsCheck() != nil {
		t.Error("checks without a pool")
	}
}

// TestCodecPoolInProcess: decoders.sandbox: in-process runs no workers,
// so the Watcher compiles codecs in the daemon as before.
func TestCodecPoolInProcess(t *testing.T) {
	var cfg config.Config
	cfg.Decoders.Sandbox = config.SandboxInProcess
	cfg.SetDefaults()
	if pool := newCodecPool(&cfg, script.NewWatcher(t.TempDir(), decoders.NewRegistry(), script.Options{}), zerolog.Nop()); pool != nil {
		pool.Close()
		t.Fatal("a worker pool with sandbox: in-process")
	}
}

// TestDaemonCodecWorkers: with a scripts folder and the default sandbox
// the daemon registers codecs that run in workers (a decode through the
// registry works, and no JavaScript runs in the daemon), leaves the
// garbage collector's target alone, and stops its workers on Close.
func TestDaemonCodecWorkers(t *testing.T) {
	if os.Getenv("GOGC") != "" {
		t.Skip("GOGC is set: the daemon would not tune the collector either way")
	}
	dir := t.TempDir()
	scripts := filepath.Join(dir, "codecs")
	if err := os.MkdirAll(scripts, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join("..", "..", "testdata", "codecs", "elsys-ers-co2.js"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(scripts, "elsys-ers-co2.js"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{StateDir: filepath.Join(dir, "state")}
	cfg.Influx.URL = "http://127.0.0.1:1"
	cfg.Influx.Bucket = "sensors"
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Decoders.Scripts = scripts
	cfg.SetDefaults()
	before := debug.SetGCPercent(100)
	debug.SetGCPercent(before)
	d, err := NewDaemon(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if d.codecs == nil {
		t.Fatal("no codec workers with the default sandbox")
	}
	if now := debug.SetGCPercent(before); now != before {
		t.Errorf("GOGC %d after NewDaemon, want it left at %d", now, before)
	}
	dec, ok := d.pipeline.Decoders.Lookup("elsys-ers-co2")
	if !ok {
		t.Fatal("elsys-ers-co2 not registered")
	}
	if _, isWorker := dec.(*sandbox.Codec); !isWorker {
		t.Fatalf("registered %T, want a *sandbox.Codec", dec)
	}
	res, err := dec.Decode(decoders.Input{FPort: 1, Bytes: []byte{0x01, 0x00, 0xe2, 0x02, 0x29}})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := res.Record.Lookup("temperature"); v.Num != 22.6 {
		t.Errorf("temperature %v", v)
	}
	// sensorgate_codec_worker_codecs: the codec compiled at load and in
	// the worker that decoded, run in one, one series per worker and state.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(codecCollector{d.codecs})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "sensorgate_codec_worker_codecs" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "state" {
					held[l.GetValue()] += m.GetGauge().GetValue()
				}
			}
		}
	}
	if held["run"] != 1 || held["compiled"] < 1 || held["compiled"] > 2 {
		t.Errorf("sensorgate_codec_worker_codecs summed over workers: %v; want run 1, compiled 1 or 2", held)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if live := d.codecs.Stats().Live; live != 0 {
		t.Errorf("%d codec workers running after Close", live)
	}
}

// TestDaemonDecodedAll: decoders.decoded_all reaches the pipeline, which
// keeps every value of those models in decoded_<model>.
func TestDaemonDecodedAll(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{StateDir: filepath.Join(dir, "state")}
	cfg.Influx.URL = "http://127.0.0.1:1"
	cfg.Influx.Bucket = "sensors"
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Decoders.DecodedAll = []string{"cayenne-lpp", " dragino-lht65 "}
	cfg.SetDefaults()
	d, err := NewDaemon(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if want := map[string]bool{"cayenne-lpp": true, "dragino-lht65": true}; !reflect.DeepEqual(d.pipeline.DecodedAll, want) {
		t.Fatalf("pipeline DecodedAll %v, want %v", d.pipeline.DecodedAll, want)
	}
}
