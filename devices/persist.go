package devices

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
)

// saveBatch is how many rows one transaction of an incremental save
// writes: small enough that a save stops soon after its deadline, large
// enough that the commits (each an fsync) are not what costs the time.
const saveBatch = 500

// persisted is the save state of one entry of a tracker.
type persisted struct {
	dirty bool // changed since it was last saved
	saved bool // a row of it is on disk
}

// changeLog records which entries of a tracker (health, unknown devices)
// changed since the last save and which saved ones were dropped, so that
// a save writes only those. Both sets are bounded by the tracker's size:
// an entry is in dirty at most once, and only an entry with a row on disk
// enters gone. The tracker's lock guards it.
type changeLog struct {
	dirty map[EUI]struct{}
	gone  map[EUI]struct{}
}

func newChangeLog() changeLog {
	return changeLog{dirty: map[EUI]struct{}{}, gone: map[EUI]struct{}{}}
}

// touched marks an entry changed.
func (c *changeLog) touched(e EUI, p *persisted) {
	if !p.dirty {
		p.dirty = true
		c.dirty[e] = struct{}{}
	}
}

// removed notes that an entry left the tracker (evicted, forgotten).
func (c *changeLog) removed(e EUI, p *persisted) {
	delete(c.dirty, e)
	if p.saved {
		c.gone[e] = struct{}{}
	}
}

// pending is how many rows a save would write or delete.
func (c *changeLog) pending() int { return len(c.dirty) + len(c.gone) }

// stateRow is one row of a state table.
type stateRow struct {
	eui   EUI
	state []byte
}

// batch is one transaction's worth of changes, taken from a changeLog.
type batch struct {
	rows    []stateRow
	deletes []EUI
}

// take moves up to n changes out of c: the deletions first, then the
// changed entries, each encoded by encode (which returns the entry's save
// state and its row; ok false for an entry no longer there).
func (c *changeLog) take(n int, encode func(EUI) (p *persisted, state []byte, ok bool, err error)) (batch, error) {
	var b batch
	for e := range c.gone {
		if len(b.deletes) >= n {
			return b, nil
		}
		b.deletes = append(b.deletes, e)
		delete(c.gone, e)
	}
	for e := range c.dirty {
		if len(b.deletes)+len(b.rows) >= n {
			break
		}
		delete(c.dirty, e)
		p, st, ok, err := encode(e)
		if err != nil {
			return b, err
		}
		if !ok {
			continue
		}
		// Marked saved now, not once committed: an entry evicted while its
		// row is being written must have the row deleted by the next save.
		// A failed write leaves the mark; deleting a row that is not there
		// is harmless.
		p.dirty, p.saved = false, true
		b.rows = append(b.rows, stateRow{e, st})
	}
	return b, nil
}

// giveBack returns a batch that was not written: its deletions stay to
// do, and its rows are dirty again if their entries are still there.
func (c *changeLog) giveBack(b batch, lookup func(EUI) (*persisted, bool)) {
	for _, e := range b.deletes {
		c.gone[e] = struct{}{}
	}
	for _, r := range b.rows {
		if p, ok := lookup(r.eui); ok {
			c.touched(r.eui, p)
		}
	}
}

// entryOf gives a tracker's entry's save state and the value written as
// its row (JSON).
type entryOf[V any] func(V) (p *persisted, row any)

// tracked is what health and the unknown devices share as trackers of the
// incremental save: their entries by EUI and the change log, both under
// mu (which guards the rest of the tracker too), and how an entry is
// written.
type tracked[V any] struct {
	mu      sync.Mutex
	m       map[EUI]V
	changes changeLog
	row     entryOf[V]
}

func newTracked[V any](row entryOf[V]) tracked[V] {
	return tracked[V]{m: map[EUI]V{}, changes: newChangeLog(), row: row}
}

// takeChanges returns the next n changes, their rows encoded.
func (t *tracked[V]) takeChanges(n int) (batch, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changes.take(n, func(e EUI) (*persisted, []byte, bool, error) {
		v, ok := t.m[e]
		if !ok {
			return nil, nil, false, nil
		}
		p, row := t.row(v)
		b, err := json.Marshal(row)
		return p, b, true, err
	})
}

// settle gives a batch that was not written back, for the entries still
// there.
func (t *tracked[V]) settle(b batch, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ok {
		return
	}
	t.changes.giveBack(b, func(e EUI) (*persisted, bool) {
		v, found := t.m[e]
		if !found {
			return nil, false
		}
		p, _ := t.row(v)
		return p, true
	})
}

// PendingChanges is how many rows the next save would write or delete.
func (t *tracked[V]) PendingChanges() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changes.pending()
}

// tracker is what saveChanges needs of health or the unknown devices:
// take a batch of changes, and settle it once written or failed.
type tracker interface {
	takeChanges(n int) (batch, error)
	settle(b batch, ok bool)
}

// saveChanges writes a tracker's changes in transactions of saveBatch
// rows until none are left or ctx ends. What is not written stays marked
// for the next save: a save cut short by the shutdown deadline loses only
// what changed since the previous one.
func (s *Store) saveChanges(ctx context.Context, table string, t tracker) error {
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("devices: save %s: %w", table, err)
		}
		b, err := t.takeChanges(saveBatch)
		if err != nil {
			t.settle(b, false)
			return fmt.Errorf("devices: encode %s: %w", table, err)
		}
		if len(b.rows)+len(b.deletes) == 0 {
			return nil
		}
		err = s.writeStates(ctx, table, b)
		t.settle(b, err == nil)
		if err != nil {
			return err
		}
	}
}

// writeStates applies one batch to a state table in one transaction.
func (s *Store) writeStates(ctx context.Context, table string, b batch) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("devices: registry %s: save %s: %w", s.path, table, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	err = execEach(ctx, tx, "DELETE FROM "+table+" WHERE dev_eui = ?", len(b.deletes), func(i int) []any {
		return []any{b.deletes[i].String()}
	})
	if err == nil {
		err = execEach(ctx, tx, "INSERT OR REPLACE INTO "+table+" (dev_eui, state) VALUES (?, ?)", len(b.rows), func(i int) []any {
			return []any{b.rows[i].eui.String(), string(b.rows[i].state)}
		})
	}
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		return fmt.Errorf("devices: registry %s: save %s: %w", s.path, table, err)
	}
	return nil
}

// execEach runs query, prepared once, with the arguments of each of n
// rows; none, it prepares nothing.
func execEach(ctx context.Context, tx *sqlTx, query string, n int, args func(i int) []any) error {
	if n == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return err
	}
	defer st.Close()
	for i := range n {
		if _, err := st.ExecContext(ctx, args(i)...); err != nil {
			return err
		}
	}
	return nil
}
