package devices

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Health sharing between instances (PostgreSQL): each instance observes
// its uplinks in memory as on a single instance, and SyncHealth, every
// registry.health_sync_interval, writes what changed and reads what the
// others wrote. Nothing on the per-uplink path touches the database.
//
// Tables (migration 3):
//
//	health_frames  (dev_eui, hour, block) → bits   OR-merged: the union of heard frame counters
//	health_hours   (dev_eui, hour) → no_fcnt, dead_letters   added: each instance writes its own counts once
//	health_devices (dev_eui) → first_seen, last_seen, state  the newest uplink's values win
//
// Each row carries updated_xid, the id of the transaction that wrote it
// last. A sync reads in one snapshot and remembers the snapshot's xmin:
// every transaction below it had ended, so the next sync reads the rows
// with updated_xid from there, which covers the transactions that were
// still running (and commit later) without a time margin. Re-reading a
// row is harmless: sets are ORed again, totals and newest values
// replaced.
const (
	// syncBatch is how many devices one transaction of a sync writes.
	syncBatch = 5000
	// healthKeep is how long the hourly rows are kept (the report's
	// window), and how long a heartbeat or an unregistered device's row
	// without an uplink stays.
	healthKeep = 24 * time.Hour
)

// HealthShareStats are a shared Health's sync figures, for /metrics.
type HealthShareStats struct {
	Syncs, Failures uint64
	// LastSync is the end of the last sync that wrote and read all,
	// zero before the first.
	LastSync time.Time
	// Pending is how many devices wait to be written.
	Pending int
	// Overflow counts frames left out of a device-hour's full set.
	Overflow uint64
}

// shareState is Health's side of the sync; Health.mu guards it.
type shareState struct {
	dirty map[EUI]struct{}
	gone  map[EUI]struct{}
	since int64 // the transaction id the next read starts from; 0 reads all
	// cleaned is the hour the old rows were last deleted in.
	cleaned int64
	stats   HealthShareStats
}

// Share makes h count with the other instances of a shared registry:
// loss and uplinks come from the union of every instance's frame
// counters, last seen and the latest readings from whichever instance
// heard the device last. Call it before the first Observe; Store.SyncHealth
// then exchanges the figures, and SaveHealth/LoadHealth are not used.
func (h *Health) Share() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.share == nil {
		h.share = &shareState{dirty: map[EUI]struct{}{}, gone: map[EUI]struct{}{}}
	}
}

// ShareStats returns the sync figures; ok is false when h is not shared.
func (h *Health) ShareStats() (HealthShareStats, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.share == nil {
		return HealthShareStats{}, false
	}
	st := h.share.stats
	st.Pending = len(h.share.dirty) + len(h.share.gone)
	return st, true
}

func (s *shareState) touched(e EUI, st healthRef) {
	if st.sh == nil {
		st.sh = &sharedHealth{}
	}
	if !st.sh.dirty {
		st.sh.dirty = true
		s.dirty[e] = struct{}{}
	}
}

func (s *shareState) removed(e EUI, st healthRef) {
	delete(s.dirty, e)
	if st.sh != nil && st.sh.saved {
		s.gone[e] = struct{}{}
	}
}

// observe adds one uplink to the device's shared figures; touched ran.
func (s *shareState) observe(o Observation, st healthRef) {
	sh := st.sh
	i := st.slot(o.Time.Unix())
	if i < 0 {
		return
	}
	if o.HasFCnt {
		changed, ok := sh.frames[i].addOne(o.FCnt)
		if !ok {
			s.stats.Overflow++
		}
		if changed {
			sh.dirtySlots |= 1 << i
		}
	} else {
		sh.pending[i].noFCnt++
	}
	if o.DeadLetter != "" {
		sh.pending[i].dead++
	}
	st.rederive()
}

// syncBatchRows is one transaction's writes, column by column.
type syncBatchRows struct {
	devEUIs             []string
	firstSeen, lastSeen []int64
	states              []string

	frameEUIs                       []string
	frameHours, frameIdx, frameBits []int64

	hourEUIs                []string
	hourHours, noFCnt, dead []int64

	deletes []string

	// taken remembers, per device, the slots and counts written, to
	// settle them once the transaction ended.
	taken []syncTaken
}

type syncTaken struct {
	eui     EUI
	slots   uint32
	pending [hours]hourCounts
	hours   [hours]int64 // the slots' hours when taken: a slot may move on meanwhile
}

// takeSync moves up to n changed devices out of h into a batch.
func (h *Health) takeSync(n int) (*syncBatchRows, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.share
	b := &syncBatchRows{}
	for e := range s.gone {
		if len(b.deletes) >= n {
			return b, nil
		}
		b.deletes = append(b.deletes, e.String())
		delete(s.gone, e)
	}
	for e := range s.dirty {
		if len(b.deletes)+len(b.taken) >= n {
			break
		}
		delete(s.dirty, e)
		st, ok := h.lookup(e)
		if !ok || st.sh == nil {
			continue
		}
		sh := st.sh
		sh.dirty, sh.saved = false, true
		latest, err := json.Marshal(st.latest())
		if err != nil {
			return b, err
		}
		key := e.String()
		b.devEUIs, b.states = append(b.devEUIs, key), append(b.states, string(latest))
		b.firstSeen, b.lastSeen = append(b.firstSeen, st.FirstSeen.time().UnixMilli()), append(b.lastSeen, st.LastSeen.time().UnixMilli())
		t := syncTaken{eui: e, slots: sh.dirtySlots, pending: sh.pending}
		for i := range hours {
			hour := st.Hours[i].Hour
			t.hours[i] = hour
			if sh.dirtySlots&(1<<i) != 0 {
				for _, fb := range sh.frames[i].blocks {
					b.frameEUIs, b.frameHours = append(b.frameEUIs, key), append(b.frameHours, hour)
					b.frameIdx, b.frameBits = append(b.frameIdx, int64(fb.idx)), append(b.frameBits, int64(fb.bits))
				}
			}
			if p := sh.pending[i]; p != (hourCounts{}) {
				b.hourEUIs, b.hourHours = append(b.hourEUIs, key), append(b.hourHours, hour)
				b.noFCnt, b.dead = append(b.noFCnt, int64(p.noFCnt)), append(b.dead, int64(p.dead))
			}
		}
		sh.dirtySlots = 0
		b.taken = append(b.taken, t)
	}
	return b, nil
}

// settleSync ends a batch: written counts move from pending to the
// totals; a failed batch's devices are dirty again and its deletions
// stay to do.
func (h *Health) settleSync(b *syncBatchRows, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.share
	if !ok {
		for _, k := range b.deletes {
			if e, err := ParseEUI(k); err == nil {
				s.gone[e] = struct{}{}
			}
		}
	}
	for _, t := range b.taken {
		st, found := h.lookup(t.eui)
		if !found || st.sh == nil {
			continue
		}
		sh := st.sh
		if !ok {
			sh.dirtySlots |= t.slots
			s.touched(t.eui, st)
			continue
		}
		for i := range hours {
			if st.Hours[i].Hour != t.hours[i] {
				continue // recycled for a newer hour: the written counts were of an hour now out of the window
			}
			sh.counts[i].noFCnt += t.pending[i].noFCnt
			sh.counts[i].dead += t.pending[i].dead
			sh.pending[i].noFCnt -= t.pending[i].noFCnt
			sh.pending[i].dead -= t.pending[i].dead
		}
		st.rederive()
	}
}

// SyncHealth writes what changed in a shared h since the last sync and
// reads what every instance wrote since, then deletes rows older than the
// window once an hour. Without a shared registry it does nothing. When
// PostgreSQL cannot be reached, h keeps counting in memory (its figures
// then lack the other instances' uplinks since the last sync), the
// changes stay for the next sync, and the error says so.
func (s *Store) SyncHealth(ctx context.Context, h *Health) error {
	if s.shared == nil || h.share == nil {
		return nil
	}
	err := s.syncHealth(ctx, h)
	h.mu.Lock()
	if err != nil {
		h.share.stats.Failures++
	} else {
		h.share.stats.Syncs++
		h.share.stats.LastSync = s.now()
	}
	h.mu.Unlock()
	if err != nil {
		return fmt.Errorf("devices: shared health via %s: %w (health shows this instance's uplinks since the last sync until PostgreSQL answers again)", s.path, err)
	}
	return nil
}

func (s *Store) syncHealth(ctx context.Context, h *Health) error {
	var rotated uint64
	if j := h.journal; j != nil {
		if err := j.rotate(); err != nil {
			return err
		}
		rotated = j.gen
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := h.takeSync(syncBatch)
		if err != nil {
			h.settleSync(b, false)
			return err
		}
		if len(b.taken)+len(b.deletes) == 0 {
			if j := h.journal; j != nil {
				j.written(rotated)
			}
			break
		}
		err = s.writeHealthBatch(ctx, b)
		h.settleSync(b, err == nil)
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	if err := s.readHealth(ctx, h); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	return s.cleanHealth(ctx, h)
}

// writerXid is the writing transaction's id, as a number.
const writerXid = `pg_current_xact_id()::text::bigint`

// writeHealthBatch writes a batch: its deletes, then its rows. Every
// statement locks its rows in key order and the tables in one order
// (devices, frames, hours): instances write overlapping devices (each
// hears some of every device's frames) and list them in their own table
// order, and transactions locking the same rows in different orders
// deadlock, which PostgreSQL breaks by failing one of them. The deletes
// commit on their own, before the rows: in one transaction, a delete's
// lock on one device ahead of the rows' locks from the first device on
// would be out of key order again. Deleting is idempotent, so a batch
// whose rows fail is simply written again.
func (s *Store) writeHealthBatch(ctx context.Context, b *syncBatchRows) error {
	if len(b.deletes) > 0 {
		if err := s.deleteHealth(ctx, b.deletes); err != nil {
			return err
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if len(b.devEUIs) > 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO health_devices (dev_eui, first_seen, last_seen, state, updated_xid)
			SELECT e, f, l, st, `+writerXid+` FROM unnest(?::text[], ?::bigint[], ?::bigint[], ?::text[]) AS u(e, f, l, st) ORDER BY e
			ON CONFLICT (dev_eui) DO UPDATE SET
				first_seen = LEAST(health_devices.first_seen, EXCLUDED.first_seen),
				last_seen = GREATEST(health_devices.last_seen, EXCLUDED.last_seen),
				state = CASE WHEN EXCLUDED.last_seen >= health_devices.last_seen THEN EXCLUDED.state ELSE health_devices.state END,
				updated_xid = EXCLUDED.updated_xid`,
			b.devEUIs, b.firstSeen, b.lastSeen, b.states); err != nil {
			return err
		}
	}
	if len(b.frameEUIs) > 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO health_frames (dev_eui, hour, block, bits, updated_xid)
			SELECT e, h, k, v, `+writerXid+` FROM unnest(?::text[], ?::bigint[], ?::bigint[], ?::bigint[]) AS u(e, h, k, v) ORDER BY e, h, k
			ON CONFLICT (dev_eui, hour, block) DO UPDATE SET bits = health_frames.bits | EXCLUDED.bits, updated_xid = EXCLUDED.updated_xid
			WHERE health_frames.bits | EXCLUDED.bits <> health_frames.bits`,
			b.frameEUIs, b.frameHours, b.frameIdx, b.frameBits); err != nil {
			return err
		}
	}
	if len(b.hourEUIs) > 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO health_hours (dev_eui, hour, no_fcnt, dead_letters, updated_xid)
			SELECT e, h, n, d, `+writerXid+` FROM unnest(?::text[], ?::bigint[], ?::bigint[], ?::bigint[]) AS u(e, h, n, d) ORDER BY e, h
			ON CONFLICT (dev_eui, hour) DO UPDATE SET no_fcnt = health_hours.no_fcnt + EXCLUDED.no_fcnt,
				dead_letters = health_hours.dead_letters + EXCLUDED.dead_letters, updated_xid = EXCLUDED.updated_xid`,
			b.hourEUIs, b.hourHours, b.noFCnt, b.dead); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// deleteHealth deletes the shared health of devices removed from the
// registry, in one transaction, locking their rows in the order
// writeHealthBatch writes them.
func (s *Store) deleteHealth(ctx context.Context, euis []string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	for _, t := range []struct{ table, key string }{
		{"health_devices", "dev_eui"}, {"health_frames", "dev_eui, hour, block"}, {"health_hours", "dev_eui, hour"},
	} {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+t.table+" WHERE ctid = ANY(ARRAY(SELECT ctid FROM "+t.table+
			" WHERE dev_eui = ANY(?) ORDER BY "+t.key+" FOR UPDATE))", euis); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// applyChunk is how many rows a read applies per hold of Health's lock,
// so that a first read of a large table does not stall the uplinks.
const applyChunk = 1000

// readHealth applies the rows written since the last read.
func (s *Store) readHealth(ctx context.Context, h *Health) error {
	h.mu.Lock()
	since := h.share.since
	h.mu.Unlock()
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // read only
	var xmin, serverNow int64
	if err := tx.QueryRowContext(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint,
		(extract(epoch from clock_timestamp()) * 1000)::bigint`).Scan(&xmin, &serverNow); err != nil {
		return err
	}
	oldest := time.UnixMilli(serverNow).Add(-healthKeep).Unix()/3600 + 1

	// Devices first, so that the hourly rows find their device.
	rows, err := tx.QueryContext(ctx, "SELECT dev_eui, first_seen, last_seen, state FROM health_devices WHERE updated_xid >= ?", since)
	if err != nil {
		return err
	}
	err = applyRows(rows, h, func(scan func(...any) error, apply func(EUI) (healthRef, bool)) error {
		var key, state string
		var first, last int64
		if err := scan(&key, &first, &last, &state); err != nil {
			return err
		}
		e, err := ParseEUI(key)
		if err != nil {
			return nil // not ours to judge: skipped
		}
		st, ok := apply(e)
		if !ok {
			return nil
		}
		if f := stampOf(time.UnixMilli(first)); st.FirstSeen.isZero() || f.before(st.FirstSeen) {
			st.FirstSeen = f
		}
		if l := stampOf(time.UnixMilli(last)); st.LastSeen.before(l) {
			var v deviceLatest
			if json.Unmarshal([]byte(state), &v) != nil {
				return nil
			}
			if v.LastDeadLetter == "" {
				v.LastDeadLetter = st.lastDeadLetter
			}
			st.LastSeen = l
			st.setLatest(&v)
		}
		return nil
	})
	if err != nil {
		return err
	}

	rows, err = tx.QueryContext(ctx, "SELECT dev_eui, hour, block, bits FROM health_frames WHERE updated_xid >= ? AND hour >= ?", since, oldest)
	if err != nil {
		return err
	}
	err = applyRows(rows, h, func(scan func(...any) error, apply func(EUI) (healthRef, bool)) error {
		var key string
		var hour, block, bitsV int64
		if err := scan(&key, &hour, &block, &bitsV); err != nil {
			return err
		}
		e, err := ParseEUI(key)
		if err != nil || block < 0 || block > 1<<26 {
			return nil
		}
		st, ok := apply(e)
		if !ok {
			return nil
		}
		if i := st.slot(hour * 3600); i >= 0 {
			if _, ok := st.sh.frames[i].add(uint32(block), uint64(bitsV)); !ok {
				h.share.stats.Overflow++
			}
			st.rederive()
		}
		return nil
	})
	if err != nil {
		return err
	}

	rows, err = tx.QueryContext(ctx, "SELECT dev_eui, hour, no_fcnt, dead_letters FROM health_hours WHERE updated_xid >= ? AND hour >= ?", since, oldest)
	if err != nil {
		return err
	}
	err = applyRows(rows, h, func(scan func(...any) error, apply func(EUI) (healthRef, bool)) error {
		var key string
		var hour, noFCnt, dead int64
		if err := scan(&key, &hour, &noFCnt, &dead); err != nil {
			return err
		}
		e, err := ParseEUI(key)
		if err != nil {
			return nil
		}
		st, ok := apply(e)
		if !ok {
			return nil
		}
		if i := st.slot(hour * 3600); i >= 0 {
			st.sh.counts[i] = hourCounts{noFCnt: clampU32(noFCnt), dead: clampU32(dead)}
			st.rederive()
		}
		return nil
	})
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.share.since = xmin
	h.mu.Unlock()
	return nil
}

func clampU32(v int64) uint32 { return uint32(min(max(v, 0), 1<<32-1)) }

// rowScanner is the part of *sql.Rows applyRows uses.
type rowScanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// applyRows runs fn for each row with Health's lock held, released every
// applyChunk rows. fn's apply returns the device's state, adding a device
// h does not track yet (nil when it cannot: an unregistered device beyond
// the bound loses to the ones this instance heard more recently).
func applyRows(rows rowScanner, h *Health, fn func(scan func(...any) error, apply func(EUI) (healthRef, bool)) error) error {
	defer rows.Close()
	apply := func(e EUI) (healthRef, bool) {
		if e.IsZero() {
			return healthRef{}, false // names no device (and is no key of h.slots)
		}
		st, ok := h.lookup(e)
		if !ok {
			unregistered := h.registered != nil && !h.registered(e)
			if unregistered && h.unknown.Len() >= h.max {
				return healthRef{}, false
			}
			st = h.add(e)
			if unregistered {
				st.unknown = h.unknown.PushBack(e)
			}
		}
		if st.sh == nil {
			st.sh = &sharedHealth{}
		}
		st.sh.saved = true
		return st, true
	}
	n := 0
	h.mu.Lock()
	defer func() { h.mu.Unlock() }()
	for rows.Next() {
		if err := fn(rows.Scan, apply); err != nil {
			return err
		}
		if n++; n%applyChunk == 0 {
			h.mu.Unlock()
			h.mu.Lock()
		}
	}
	return rows.Err()
}

// cleanHealth deletes hourly rows older than the window, heartbeats that
// stopped a window ago and the rows of unregistered devices not heard for
// as long, once per hour of the server's clock.
func (s *Store) cleanHealth(ctx context.Context, h *Health) error {
	hour := s.now().Unix() / 3600
	h.mu.Lock()
	due := h.share.cleaned != hour
	h.mu.Unlock()
	if !due {
		return nil
	}
	cutoff := s.now().Add(-healthKeep)
	for _, q := range []struct {
		sql string
		arg int64
	}{
		{"DELETE FROM health_frames WHERE hour < ?", cutoff.Unix() / 3600},
		{"DELETE FROM health_hours WHERE hour < ?", cutoff.Unix() / 3600},
		{"DELETE FROM health_devices WHERE last_seen < ? AND NOT EXISTS (SELECT 1 FROM devices WHERE devices.dev_eui = health_devices.dev_eui)", cutoff.UnixMilli()},
		{"DELETE FROM instances WHERE heartbeat_at < ?", cutoff.UnixMilli()},
	} {
		if _, err := s.db.ExecContext(ctx, q.sql, q.arg); err != nil {
			return fmt.Errorf("delete old rows: %w", err)
		}
	}
	h.mu.Lock()
	h.share.cleaned = hour
	h.mu.Unlock()
	return nil
}

// CloseJournal closes h's journal file, if any; its frames are replayed by
// the next JournalHealth on the same directory.
func (h *Health) CloseJournal() {
	if h.journal != nil {
		h.journal.close()
	}
}

// ShareHealth makes h shared when the registry is (PostgreSQL), with
// registered telling which devices count towards h's bound of
// unregistered ones, and reads the shared figures once. It reports
// whether h is shared; an error leaves h shared and empty until the next
// SyncHealth reaches PostgreSQL.
func (s *Store) ShareHealth(ctx context.Context, h *Health) (bool, error) {
	if s.shared == nil {
		return false, nil
	}
	h.Share()
	h.mu.Lock()
	h.registered = func(e EUI) bool { _, ok := s.reg.Lookup(e); return ok }
	h.mu.Unlock()
	err := s.SyncHealth(ctx, h)
	return true, err
}
