package devices

import (
	"bytes"
	"context"
	"fmt"
	"slices"
)

// UpdateCounters implements the raw-LoRaWAN frame handler's counter store
// (gateway/lorawan.CounterStore) on the frame_counters table: update gets
// each EUI's stored state (nil when none) and returns the new one (nil to
// keep it), all in one transaction. With PostgreSQL the rows are locked
// (a missing row is inserted empty first, so that it can be), so
// instances updating one device take turns; with SQLite the transaction
// holds the write lock from its start. It returns after the commit, which
// with SQLite is synced to disk.
func (s *Store) UpdateCounters(ctx context.Context, euis []EUI, update func(eui EUI, state []byte) []byte) error {
	// One order for every instance: two batches locking the same devices
	// in opposite orders would deadlock.
	euis = slices.Clone(euis)
	slices.SortFunc(euis, func(a, b EUI) int { return bytes.Compare(a[:], b[:]) })
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("devices: registry %s: frame counters: %w", s.path, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	ins, err := tx.PrepareContext(ctx, "INSERT INTO frame_counters (dev_eui, state) VALUES (?, ?) ON CONFLICT (dev_eui) DO NOTHING")
	if err != nil {
		return fmt.Errorf("devices: registry %s: frame counters: %w", s.path, err)
	}
	defer ins.Close()
	sel := "SELECT state FROM frame_counters WHERE dev_eui = ?"
	if s.db.d.pg {
		sel += " FOR UPDATE"
	}
	get, err := tx.PrepareContext(ctx, sel)
	if err != nil {
		return fmt.Errorf("devices: registry %s: frame counters: %w", s.path, err)
	}
	defer get.Close()
	put, err := tx.PrepareContext(ctx, "UPDATE frame_counters SET state = ? WHERE dev_eui = ?")
	if err != nil {
		return fmt.Errorf("devices: registry %s: frame counters: %w", s.path, err)
	}
	defer put.Close()
	for _, e := range euis {
		key := e.String()
		if _, err := ins.ExecContext(ctx, key, []byte{}); err != nil {
			return fmt.Errorf("devices: registry %s: frame counter of %s: %w", s.path, e, err)
		}
		var state []byte
		if err := get.QueryRowContext(ctx, key).Scan(&state); err != nil {
			return fmt.Errorf("devices: registry %s: frame counter of %s: %w", s.path, e, err)
		}
		if len(state) == 0 {
			state = nil
		}
		next := update(e, state)
		if next == nil {
			continue
		}
		if _, err := put.ExecContext(ctx, next, key); err != nil {
			return fmt.Errorf("devices: registry %s: frame counter of %s: %w", s.path, e, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("devices: registry %s: frame counters: %w", s.path, err)
	}
	return nil
}
