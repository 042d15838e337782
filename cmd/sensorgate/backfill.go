package main

import (
	"context"
	"fmt"
	"io"
)

const backfillUsage = `Usage:
  sensorgate backfill [-c FILE] --source S --since T [--until T]

Fetches the uplinks a network server kept and writes them as the live feed
would have: the same points, so what was received already is overwritten,
never doubled.

  --source S   a tts-v3 source with a storage key: its application's
               uplinks stored by The Things Stack's Storage Integration
  --since T    from this time on (RFC 3339, or a duration back from now: 24h)
  --until T    up to this time (default: now)

Through the config's daemon when it answers on http.listen, else this
process builds the pipeline from the config (without starting the
sources), writes, and delivers the points to InfluxDB before it exits
(what InfluxDB does not take in 30s stays in the spool for the daemon's
next start). The daemon also refills by itself on every reconnection.
`

// backfillCommand implements "sensorgate backfill": the flags, then one
// function per kind of network-server store, each in a file of its own
// (backfill_tts.go).
func backfillCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backfill", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, backfillUsage) }
	path := fs.String("c", "/etc/sensorgate/sensorgate.yaml", "config file")
	source := fs.String("source", "", "a tts-v3 source with a storage key")
	since := fs.String("since", "", "from this time on (RFC 3339, or a duration back from now: 24h)")
	until := fs.String("until", "", "up to this time (default: now)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *source != "":
		return backfillSource(ctx, *path, *source, *since, *until, stdout, stderr)
	}
	fmt.Fprint(stderr, "sensorgate backfill: say what to fetch from (--source S)\n\n"+backfillUsage)
	return errUsage
}
