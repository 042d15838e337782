package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sensorgate/sensorgate/gateway/deadletter"
	"github.com/sensorgate/sensorgate/gateway/httpapi"
)

const deadlettersUsage = `Usage:
  sensorgate deadletters list   [-c FILE] [-reason R] [-since T] [-source S] [-dev-eui E] [-replayed true|false] [-limit N] [-json]
  sensorgate deadletters replay [-c FILE] [-reason R] [-since T] [-source S] [-dev-eui E] [-id N ...] [-force]

T is an RFC 3339 time or a duration back from now (24h). Replay runs each
message through the current pipeline (after a decoder or registry fix):
success marks the letter replayed (it is kept, as a record), a message that
still fails stays as it is, with the new reason; letters replayed before
are skipped unless -force. Replaying twice writes the same points.

The same calls as the HTTP API: they go to the config's daemon when it
answers on http.listen, else this process builds the pipeline from the
config (without starting the sources), replays, and delivers the points
to InfluxDB before it exits (what InfluxDB does not take in 30s stays in
the spool for the daemon's next start).
`

// idsFlag collects repeated -id flags.
type idsFlag []uint64

func (f *idsFlag) String() string { return fmt.Sprint(*f) }

func (f *idsFlag) Set(s string) error {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return fmt.Errorf("%q is not a dead-letter id (1, 2, 3, …)", s)
	}
	*f = append(*f, id)
	return nil
}

// deadlettersCommand implements "sensorgate deadletters".
func deadlettersCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, args, fs, path, err := subcommand("deadletters", deadlettersUsage, args, stderr)
	if fs == nil {
		return err
	}
	reason := fs.String("reason", "", "only this reason (decode_error, unknown_model, …)")
	since := fs.String("since", "", "only letters from this time on (RFC 3339, or a duration back from now: 24h)")
	source := fs.String("source", "", "only this source")
	devEUI := fs.String("dev-eui", "", "only this device")
	switch sub {
	case "list":
		replayed := fs.String("replayed", "", "true: only replayed letters; false: only those not replayed")
		limit := fs.Int("limit", 1000, "at most this many letters, 0 for all")
		asJSON := fs.Bool("json", false, "print JSON (with the raw messages) instead of a table")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		q := url.Values{}
		for k, v := range map[string]string{"reason": *reason, "since": *since, "source": *source, "dev_eui": *devEUI, "replayed": *replayed} {
			if v != "" {
				q.Set(k, v)
			}
		}
		q.Set("limit", strconv.Itoa(*limit))
		return withClient(ctx, *path, stderr, func(c *apiClient) error {
			b, err := c.call(ctx, http.MethodGet, "/api/v1/deadletters?"+q.Encode(), "", nil)
			if err != nil {
				return err
			}
			if *asJSON {
				_, err = stdout.Write(b)
				return err
			}
			var resp struct {
				DeadLetters []deadletter.Letter `json:"dead_letters"`
			}
			if err := json.Unmarshal(b, &resp); err != nil {
				return fmt.Errorf("deadletters list: %w", err)
			}
			printLetters(stdout, resp.DeadLetters)
			return nil
		})
	case "replay":
		var ids idsFlag
		fs.Var(&ids, "id", "replay this letter (repeatable)")
		force := fs.Bool("force", false, "replay letters that were replayed before too")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		body, _ := json.Marshal(httpapi.ReplayRequest{IDs: ids, Reason: *reason, Since: *since, Source: *source, DevEUI: *devEUI, Force: *force})
		return withClient(ctx, *path, stderr, func(c *apiClient) error {
			stop := c.deliver(ctx, stderr)
			b, err := c.call(ctx, http.MethodPost, "/api/v1/deadletters/replay", "application/json", body)
			stop()
			if err != nil {
				return err
			}
			var resp httpapi.ReplayResponse
			if err := json.Unmarshal(b, &resp); err != nil {
				return fmt.Errorf("deadletters replay: %w", err)
			}
			for _, r := range resp.Results {
				if r.Status == deadletter.StatusReplayed {
					fmt.Fprintf(stdout, "%d: replayed (%d points)\n", r.ID, r.Points)
				} else {
					fmt.Fprintf(stdout, "%d: %s: %s %s\n", r.ID, r.Status, r.Reason, r.Detail)
				}
			}
			fmt.Fprintf(stdout, "%d replayed, %d failed, %d skipped\n", resp.Replayed, resp.Failed, resp.Skipped)
			if resp.Failed > 0 {
				// A script or an operator must see that the fix did not
				// take: the exit code says so, as decode --batch's does.
				return fmt.Errorf("deadletters replay: %d of %d letters failed again; they stay dead letters", resp.Failed, resp.Replayed+resp.Failed)
			}
			return nil
		})
	}
	fmt.Fprintf(stderr, "sensorgate deadletters: unknown subcommand %q\n\n%s", sub, deadlettersUsage)
	return errUsage
}

// deliver runs the in-process daemon's delivery (spool to InfluxDB) for
// an offline replay; stop is the daemon's shutdown drain, with 30s for
// InfluxDB to take what the replay spooled. Talking to a running daemon,
// it does nothing: that daemon delivers.
func (c *apiClient) deliver(ctx context.Context, stderr io.Writer) (stop func()) {
	if c.offline == nil {
		return func() {}
	}
	return offlineDelivery(ctx, c.offline, stderr)
}

// offlineDelivery starts the delivery of a daemon built in-process by a
// command (an offline replay, a backfill); stop drains the spool into
// InfluxDB for up to 30s and says what it could not deliver.
func offlineDelivery(ctx context.Context, d *Daemon, stderr io.Writer) (stop func()) {
	stopDelivery := d.delivery.Start()
	return func() {
		drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		notDrained, err := stopDelivery(drainCtx)
		for _, err := range []error{notDrained, err} {
			if err != nil {
				fmt.Fprintln(stderr, "sensorgate:", err)
			}
		}
	}
}

func printLetters(w io.Writer, ls []deadletter.Letter) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tSOURCE\tDEV_EUI\tREASON\tREPLAYED\tDETAIL")
	for _, l := range ls {
		replayed := "-"
		if l.ReplayedAt != nil {
			replayed = l.ReplayedAt.UTC().Format(time.RFC3339)
		} else if l.LastError != "" {
			replayed = "failed"
		}
		detail := strings.ReplaceAll(l.Detail, "\n", " ")
		if len(detail) > 100 {
			detail = detail[:100] + "…"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", l.ID, l.Time.UTC().Format(time.RFC3339), l.Source, l.DevEUI, l.Reason, replayed, detail)
	}
	fmt.Fprintf(tw, "%d dead letters\n", len(ls))
	tw.Flush()
}
