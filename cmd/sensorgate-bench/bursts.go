package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// The bursts mode measures the machine, not sensorgate: what a fixed
// piece of CPU work costs in CPU time when it comes in short bursts with
// idle time between them, as a paced stream's work does (1,000 uplinks/s:
// a burst of about 150 µs every millisecond). A guest whose CPUs idle
// between bursts can be charged more CPU for the same work than one kept
// busy by other processes (the CPU's caches and state are lost to the
// host while it idles); comparing a quiet machine with a busy one tells
// how much of a change in the soak's CPU per uplink is the machine's.
// Usage:
//
//	sensorgate-bench bursts [-every 1ms] [-rounds 40] [-duration 60s]

// burstResult is one bursts run.
type burstResult struct {
	Bursts      int
	CPUPerBurst time.Duration // process CPU (user + system) per burst
	WallMedian  time.Duration // wall time of the median burst
	OthersCores float64       // the rest of the machine, cores busy
}

func burstsCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sensorgate-bench bursts", flag.ContinueOnError)
	fs.SetOutput(stderr)
	every := fs.Duration("every", time.Millisecond, "one burst this often")
	rounds := fs.Int("rounds", 40, "SHA-256 rounds over 4 KiB per burst (40: about 100 µs)")
	dur := fs.Duration("duration", time.Minute, "how long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *every <= 0 || *rounds <= 0 || *dur <= 0 {
		return fmt.Errorf("-every, -rounds and -duration must be positive")
	}
	r, err := runBursts(ctx, *every, *rounds, *dur)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d bursts of %d rounds every %s: %.1f µs CPU per burst, median wall %.1f µs; rest of the machine %.2f cores busy\n",
		time.Now().UTC().Format("15:04:05"), r.Bursts, *rounds, *every, float64(r.CPUPerBurst)/1e3, float64(r.WallMedian)/1e3, r.OthersCores)
	return nil
}

// runBursts does the work once per every until dur has passed.
func runBursts(ctx context.Context, every time.Duration, rounds int, dur time.Duration) (burstResult, error) {
	buf := make([]byte, 4096)
	cpu0, err := cpuSeconds(os.Getpid())
	if err != nil {
		return burstResult{}, err
	}
	busy0, err := machineBusySeconds()
	if err != nil {
		return burstResult{}, err
	}
	var walls []time.Duration
	tick := time.NewTicker(every)
	defer tick.Stop()
	start := time.Now()
	for time.Since(start) < dur {
		select {
		case <-ctx.Done():
			return burstResult{}, ctx.Err()
		case <-tick.C:
		}
		t := time.Now()
		for i := range rounds {
			sum := sha256.Sum256(buf)
			buf[i%len(buf)] ^= sum[0] // each round depends on the last
		}
		walls = append(walls, time.Since(t))
	}
	elapsed := time.Since(start).Seconds()
	cpu, err := cpuSeconds(os.Getpid())
	if err != nil {
		return burstResult{}, err
	}
	busy, err := machineBusySeconds()
	if err != nil {
		return burstResult{}, err
	}
	slices.Sort(walls)
	r := burstResult{Bursts: len(walls)}
	if len(walls) > 0 { // CPU time comes in 10 ms ticks: runs of seconds say more
		r.WallMedian = walls[len(walls)/2]
		r.CPUPerBurst = time.Duration((cpu - cpu0) / float64(len(walls)) * 1e9)
	}
	r.OthersCores = max(0, (busy-busy0)-(cpu-cpu0)) / elapsed
	return r, nil
}
