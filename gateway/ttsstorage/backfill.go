package ttsstorage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
)

// Batching of a backfill: uplinks are handed to the pipeline by this many
// workers at once, so the spool's group commit takes many per fsync (one
// at a time, a backfill would cost an fsync per uplink); a device's
// uplinks stay in order on one worker. Progress is reported per batch,
// once all of it is durable.
const (
	fillWorkers = 16
	fillBatch   = 512
)

// Backfill runs stored uplinks through the pipeline as the source's live
// messages are: parsed by the source's parser, handed to its handler, or
// kept as dead letters when they cannot be parsed.
type Backfill struct {
	Client      *Client
	Parser      *mqtt.Parser // the source's: same format, same source name
	Handler     gateway.Handler
	DeadLetters gateway.DeadLetters
	Log         zerolog.Logger
}

// Result is what a backfill did.
type Result struct {
	Stats
	Uplinks     int // handed to the handler and taken
	DeadLetters int // could not be parsed; kept as dead letters
	// Durable is the received_at up to which every fetched uplink is
	// durable (taken or a dead letter); zero if none is.
	Durable time.Time
}

// Topic is the topic a stored message's dead letter is kept under.
func (b *Backfill) Topic() string { return "storage/" + b.Client.cfg.ApplicationID }

// Run fetches the range and runs every uplink through the pipeline.
// progress, if set, is called with Result.Durable each time it moves. An
// error leaves everything after Durable to a later run; uplinks the run
// took before it are durable and harmless to take again.
func (b *Backfill) Run(ctx context.Context, r Range, progress func(time.Time)) (Result, error) {
	var res Result
	var batch []gateway.Uplink
	var batchLast time.Time
	topic := b.Topic()
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := b.handle(ctx, batch); err != nil {
			return err
		}
		res.Uplinks += len(batch)
		batch = batch[:0]
		if batchLast.After(res.Durable) {
			res.Durable = batchLast
			if progress != nil {
				progress(res.Durable)
			}
		}
		return nil
	}
	st, err := b.Client.Fetch(ctx, r, func(ctx context.Context, m Message) error {
		raw := bytes.Clone(m.Up) // m.Up is the line buffer; the uplink and its dead letter keep theirs
		up, err := b.Parser.Parse(topic, raw)
		if err != nil {
			dl := mqtt.DeadLetterOf(b.Client.source, topic, raw, err)
			if perr := b.DeadLetters.Put(ctx, dl); perr != nil {
				return fmt.Errorf("a stored message could not be parsed (%v), nor kept as a dead letter: %w", err, perr)
			}
			res.DeadLetters++
			b.Log.Warn().Str("reason", string(dl.Reason)).Str("dev_eui", dl.DevEUI).Str("problem", err.Error()).Msg("stored message kept as a dead letter")
		} else {
			batch = append(batch, up)
		}
		if m.ReceivedAt.After(batchLast) {
			batchLast = m.ReceivedAt
		}
		if len(batch) >= fillBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	res.Stats = st
	return res, err
}

// handle hands a batch to the handler on fillWorkers workers, each
// device's uplinks on one worker in order, and returns the first error
// once every worker stopped.
func (b *Backfill) handle(ctx context.Context, ups []gateway.Uplink) error {
	var lanes [fillWorkers][]gateway.Uplink
	for _, up := range ups {
		h := fnv.New32a()
		if up.DevEUI.IsZero() {
			h.Write([]byte(up.DeviceName))
		} else {
			h.Write(up.DevEUI[:])
		}
		k := h.Sum32() % fillWorkers
		lanes[k] = append(lanes[k], up)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, lane := range lanes {
		if len(lane) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, up := range lane {
				if err := b.Handler(ctx, up); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("the pipeline did not take a stored uplink of %s: %w", up.DevEUI, err))
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	return ctx.Err()
}

// IsAuth reports whether err is the Storage Integration refusing the API key.
func IsAuth(err error) bool {
	var ae *AuthError
	return errors.As(err, &ae)
}
