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
	if s.db.d.pg {
		if err := s.updateCountersPG(ctx, tx, euis, update); err != nil {
			return fmt.Errorf("devices: registry %s: frame counters: %w", s.path, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("devices: registry %s: frame counters: %w", s.path, err)
		}
		return nil
	}
	ins, err := tx.PrepareContext(ctx, "INSERT INTO frame_counters (dev_eui, state) VALUES (?, ?) ON CONFLICT (dev_eui) DO NOTHING")
	if err != nil {
		return fmt.Errorf("devices: registry %s: frame counters: %w", s.path, err)
	}
	defer ins.Close()
	get, err := tx.PrepareContext(ctx, "SELECT state FROM frame_counters WHERE dev_eui = ?")
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

// updateCountersPG is UpdateCounters in three statements whatever the
// batch's size, since each is a network round trip: create the missing
// rows, lock and read them all (in EUI order), write the changed ones.
func (s *Store) updateCountersPG(ctx context.Context, tx *sqlTx, euis []EUI, update func(eui EUI, state []byte) []byte) error {
	keys := make([]string, len(euis))
	for i, e := range euis {
		keys[i] = e.String()
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO frame_counters (dev_eui, state)
		SELECT k, '\x'::bytea FROM unnest(?::text[]) AS k ORDER BY k ON CONFLICT (dev_eui) DO NOTHING`, keys); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, "SELECT dev_eui, state FROM frame_counters WHERE dev_eui = ANY(?) ORDER BY dev_eui FOR UPDATE", keys)
	if err != nil {
		return err
	}
	stored := make(map[string][]byte, len(keys))
	for rows.Next() {
		var k string
		var st []byte
		if err := rows.Scan(&k, &st); err != nil {
			rows.Close()
			return err
		}
		stored[k] = st
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var putKeys []string
	var putStates [][]byte
	for i, e := range euis {
		st := stored[keys[i]]
		if len(st) == 0 {
			st = nil
		}
		if next := update(e, st); next != nil {
			putKeys, putStates = append(putKeys, keys[i]), append(putStates, next)
		}
	}
	if len(putKeys) == 0 {
		return nil
	}
	_, err = tx.ExecContext(ctx, `UPDATE frame_counters AS f SET state = v.state
		FROM unnest(?::text[], ?::bytea[]) AS v(dev_eui, state) WHERE f.dev_eui = v.dev_eui`, putKeys, putStates)
	return err
}
