package main

import (
	"context"
	"time"
)

// every calls f once per period until ctx ends: the daemon's periodic
// work (counter logs, device_health points, state saves). A period of
// zero or less never calls f, so a feature turned off by an interval of 0
// needs no check of its own.
func every(ctx context.Context, period time.Duration, f func()) {
	if period <= 0 {
		return
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}
