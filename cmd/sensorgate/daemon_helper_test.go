package main

import (
	"context"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/config"
)

// startDaemon builds a daemon from cfg, logging at level to the test log,
// and runs it until the test ends; then it stops it as SIGTERM would and
// fails the test if Run returned an error.
func startDaemon(t *testing.T, cfg *config.Config, level zerolog.Level) *Daemon {
	t.Helper()
	return startDaemonWith(t, cfg, level, nil)
}

// startDaemonWith is startDaemon with tune applied to the daemon before
// it runs (a shorter probe interval, say).
func startDaemonWith(t *testing.T, cfg *config.Config, level zerolog.Level, tune func(*Daemon)) *Daemon {
	t.Helper()
	d, err := NewDaemon(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(level))
	if err != nil {
		t.Fatal(err)
	}
	if tune != nil {
		tune(d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Errorf("Run: %v", err)
		}
		d.Close()
	})
	return d
}
