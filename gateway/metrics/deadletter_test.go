package metrics

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/deadletter"
)

// TestDeadLetterStoreConsistent: with a real store past its max_bytes,
// a letter too large for it and a write queue of one, every letter
// dead_letters_total counts is on disk, dropped or lost, and the ones
// the full queue refused are counted apart.
func TestDeadLetterStoreConsistent(t *testing.T) {
	ctx := context.Background()
	store, err := deadletter.Open(filepath.Join(t.TempDir(), deadletter.FileName),
		deadletter.Options{Config: deadletter.Config{MaxBytes: deadletter.MinMaxBytes}, QueueLetters: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	m := New(Options{Sources: []Source{{Name: "udp"}}, DeadLetterStore: store.Stats})
	dl := m.DeadLetters(store)
	letter := gateway.DeadLetter{Time: time.Unix(1_800_000_000, 0), Source: "udp", Reason: gateway.ReasonMalformed, Raw: make([]byte, 16<<10)}
	// Each letter is offered until the store takes it, waiting for the
	// queue to drain after a refusal, so that all 200 reach the disk
	// however fast the writer is; how many refusals that takes depends on
	// the machine, and each must be counted.
	refused := 0
	for range 200 { // about 4.4 MB into 1 MiB
		for {
			err := dl.Put(ctx, letter)
			if errors.Is(err, deadletter.ErrQueueFull) {
				refused++
				if err := store.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	huge := letter
	huge.Raw = make([]byte, deadletter.MinMaxBytes/4)
	if err := dl.Put(ctx, huge); err != nil {
		t.Fatal(err)
	}
	if err := store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := gather(t, m)
	taken := got["sensorgate_dead_letters_total{reason=malformed,source=udp}"]
	onDisk := got["sensorgate_dead_letter_store_letters{}"]
	dropped := got["sensorgate_dead_letters_dropped_total{}"]
	lost := got["sensorgate_dead_letters_lost_total{}"]
	if taken != onDisk+dropped+lost || taken != 201 {
		t.Fatalf("dead_letters_total %v, on disk %v + dropped %v + lost %v; %d refused", taken, onDisk, dropped, lost, refused)
	}
	if dropped == 0 || lost != 1 || got["sensorgate_dead_letters_queue_full_total{}"] != float64(refused) {
		t.Fatalf("dropped %v, lost %v, queue full %v (refused %d)", dropped, lost, got["sensorgate_dead_letters_queue_full_total{}"], refused)
	}
	if b := got["sensorgate_dead_letter_store_bytes{}"]; b <= 0 || b > deadletter.MinMaxBytes {
		t.Fatalf("store bytes %v", b)
	}
	if _, ok := got["sensorgate_dead_letters_corrupt_records_total{}"]; !ok {
		t.Fatal("no corrupt records counter")
	}
}
