package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sensorgate/sensorgate/gateway/httpapi"
)

const backfillUsage = `Usage:
  sensorgate backfill [-c FILE] --source S --since T [--until T]
  sensorgate backfill [-c FILE] --chirpstack-pg DSN --since T [--until T] [--application ID] [--source NAME]

Writes the uplinks a network server kept while sensorgate did not receive
them, through the same pipeline and with the same points as the live feed
(an uplink received live and backfilled is one point: backfilling twice,
or over a range partly received, doubles nothing). T is an RFC 3339 time
or a duration back from now (24h); --until is exclusive, default now.

--source S alone fetches from The Things Stack's Storage Integration: S
is a tts-v3 source with a storage key. It goes through the config's
daemon when it answers on http.listen; else this process builds the
pipeline from the config (without starting the sources), writes, and
delivers the points to InfluxDB before it exits. The daemon also refills
by itself on every reconnection.

--chirpstack-pg DSN reads ChirpStack v4's PostgreSQL integration (its
event_up table): DSN is a postgres:// URL or key=value words, as in
ChirpStack's integration.postgresql.dsn, or env:NAME to read it from the
environment variable NAME; a password may also come from PGPASSWORD or
~/.pgpass. --application keeps one ChirpStack application (its UUID);
--source names the config's chirpstack-v4 source whose points these are
(default: the only one). This pipeline runs in this process, on the
config's state_dir: stop the daemon first, or give backfill a copy of the
config with another state_dir (and spool.dir, if set).

Either way, what InfluxDB does not take in 30s stays in the spool for the
daemon's next start.
`

// backfillCommand implements "sensorgate backfill": the flags, then one
// function per kind of network-server store, each in a file of its own
// (backfill_tts.go, backfill_chirpstack.go).
func backfillCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backfill", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, backfillUsage) }
	path := fs.String("c", "/etc/sensorgate/sensorgate.yaml", "config file")
	since := fs.String("since", "", "from this time on (RFC 3339, or a duration back from now: 24h)")
	until := fs.String("until", "", "up to this time, exclusive (default now)")
	source := fs.String("source", "", "a tts-v3 source with a storage key; with --chirpstack-pg, the chirpstack-v4 source the uplinks belong to")
	csDSN := fs.String("chirpstack-pg", "", "ChirpStack's PostgreSQL integration database: DSN, or env:NAME")
	csApp := fs.String("application", "", "only this ChirpStack application (UUID)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *csDSN != "":
	case *csApp != "":
		fmt.Fprintln(stderr, "sensorgate backfill: --application goes with --chirpstack-pg")
		return errUsage
	case *source != "":
		return backfillSource(ctx, *path, *source, *since, *until, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "sensorgate backfill: say where the uplinks are kept: --source S (The Things Stack) or --chirpstack-pg DSN\n\n%s", backfillUsage)
		return errUsage
	}
	now := time.Now()
	from, err := httpapi.ParseSince(*since, now)
	if err == nil && *since == "" {
		err = fmt.Errorf("give --since: the start of the range to backfill")
	}
	if err != nil {
		fmt.Fprintf(stderr, "sensorgate backfill: --since: %v\n", err)
		return errUsage
	}
	to := now
	if *until != "" {
		if to, err = httpapi.ParseSince(*until, now); err != nil {
			fmt.Fprintf(stderr, "sensorgate backfill: --until: %v\n", err)
			return errUsage
		}
	}
	if !to.After(from) {
		fmt.Fprintf(stderr, "sensorgate backfill: --until %s is not after --since %s\n", to.Format(time.RFC3339), from.Format(time.RFC3339))
		return errUsage
	}
	r := backfillRange{config: *path, source: *source, since: from, until: to}
	return backfillChirpStack(ctx, r, *csDSN, *csApp, stdout, stderr)
}

// backfillRange is what the ChirpStack mode is given.
type backfillRange struct {
	config       string // the config file
	source       string // --source, "" when not given
	since, until time.Time
}
