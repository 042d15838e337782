package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
	if _, err := pool.Load("x.js", []byte("function decodeUplink(i){return {data:{}}}")); err == nil {
		t.Fatal("loaded without a worker")
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
