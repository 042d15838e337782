package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// backfillSource backfills a tts-v3 source's range from The Things
// Stack's Storage Integration, through POST /api/v1/backfill.
func backfillSource(ctx context.Context, path, source, since, until string, stdout, stderr io.Writer) error {
	if since == "" {
		fmt.Fprint(stderr, "sensorgate backfill: --since is required\n\n"+backfillUsage)
		return errUsage
	}
	body, _ := json.Marshal(BackfillRequest{Source: source, Since: since, Until: until})
	return withClient(ctx, path, stderr, func(c *apiClient) error {
		c.hc.Timeout = 0 // a long range takes as long as it takes; ^C cancels it
		stop := c.deliver(ctx, stderr)
		b, err := c.call(ctx, http.MethodPost, "/api/v1/backfill", "application/json", body)
		stop()
		var resp BackfillResponse
		var ae *apiError
		switch {
		case err == nil:
			if err := json.Unmarshal(b, &resp); err != nil {
				return fmt.Errorf("backfill: %w", err)
			}
		case errors.As(err, &ae) && len(ae.Detail) > 0 && string(ae.Detail) != "null":
			if json.Unmarshal(ae.Detail, &resp) == nil {
				printBackfill(stdout, resp)
				if !resp.DurableUntil.IsZero() {
					fmt.Fprintf(stdout, "everything up to %s is written: run again with --since %s to go on\n",
						resp.DurableUntil.Format(time.RFC3339Nano), resp.DurableUntil.Format(time.RFC3339Nano))
				}
			}
			return errors.New(ae.Message)
		default:
			return err
		}
		printBackfill(stdout, resp)
		return nil
	})
}

func printBackfill(w io.Writer, r BackfillResponse) {
	to := "now"
	if !r.Until.IsZero() {
		to = r.Until.Format(time.RFC3339)
	}
	fmt.Fprintf(w, "%s: %d uplinks from %s to %s (%d dead letters, %d requests, %d lines skipped)\n",
		r.Source, r.Uplinks, r.Since.Format(time.RFC3339), to, r.DeadLetters, r.Requests, r.SkippedLines)
}
