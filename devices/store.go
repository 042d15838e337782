package devices

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // pure-Go SQLite driver: the daemon stays one static binary
)

// StoreFileName is the registry database's name under the state directory.
const StoreFileName = "registry.db"

// Sentinel errors of Store changes; the HTTP API maps them to 404 and 409.
var (
	ErrNotFound = errors.New("devices: no such device")
	ErrConflict = errors.New("devices: conflicts with a registered device")
)

// schemaVersion is the newest migration (migrations in migrate.go): PRAGMA
// user_version with SQLite, the highest row of schema_migrations with
// PostgreSQL.
const schemaVersion = 3

// schema creates the tables. Session keys are columns of their own, raw
// bytes, because every text form of a Key is masked; the file is created
// 0600 for that reason.
const schema = `
CREATE TABLE IF NOT EXISTS devices (
	dev_eui         TEXT PRIMARY KEY,
	name            TEXT NOT NULL UNIQUE,
	model           TEXT NOT NULL DEFAULT '',
	tags            TEXT NOT NULL DEFAULT '{}',
	variables       TEXT NOT NULL DEFAULT '{}',
	dev_addr        TEXT,
	mac_version     TEXT,
	nwk_s_key       BLOB,
	s_nwk_s_int_key BLOB,
	f_nwk_s_int_key BLOB,
	nwk_s_enc_key   BLOB,
	app_s_key       BLOB,
	updated_at      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS health (dev_eui TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS unknown_devices (dev_eui TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS unknown_series (source TEXT NOT NULL, dev_eui TEXT NOT NULL, PRIMARY KEY (source, dev_eui));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`

// Store persists the device registry in an embedded SQLite database and
// keeps a Registry in step with it: every change is written in one
// transaction and only then swapped into the Registry, so a change is
// applied whole or not at all, on disk and in memory alike. The Registry
// stays the hot-path lookup; the Store is never read per uplink.
//
// With SQLite only one process may change a store at a time (the daemon,
// or the CLI while the daemon is stopped): the in-memory copy is not
// re-read. With PostgreSQL any number may: see shared (pgstore.go).
type Store struct {
	db   *sqlDB
	path string // where the database is, for errors: a file, or the DSN without its password
	reg  *Registry
	// shared is set with PostgreSQL: other instances change the registry
	// too, and their changes come in as notifications.
	shared *shared

	mu   sync.Mutex // serializes changes, so the Registry follows commit order
	devs map[EUI]Device
	now  func() time.Time
	// view is what listings read without s.mu, so a page is not held up
	// by a change being written; see publish.
	view atomic.Pointer[deviceView]
}

// OpenStore opens (creating if needed) the database at path and loads
// every stored device into reg, replacing its contents.
func OpenStore(ctx context.Context, path string, reg *Registry) (*Store, error) {
	if reg == nil {
		reg = &Registry{}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("devices: create the registry's directory: %w", err)
	}
	// Created here rather than by SQLite so that its mode is ours: the
	// file holds session keys.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("devices: open registry %s: %w (check state_dir is writable)", path, err)
	}
	f.Close()
	// FULL sync: a device the API said it stored survives a power cut.
	// busy_timeout covers a CLI reading while the daemon writes.
	dsn := "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("devices: open registry %s: %w", path, err)
	}
	// One connection: writes are serialized anyway, and reads are served
	// from memory; a single connection also sidesteps SQLITE_BUSY between
	// our own connections.
	db.SetMaxOpenConns(1)
	s := &Store{db: &sqlDB{DB: db, d: &dialect{}}, path: path, reg: reg, now: time.Now}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.load(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// deviceColumns are the columns scanDevice reads, in its order.
const deviceColumns = `dev_eui, name, model, tags, variables, dev_addr, mac_version,
		nwk_s_key, s_nwk_s_int_key, f_nwk_s_int_key, nwk_s_enc_key, app_s_key`

// querier is a database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// readDevices reads the devices the query (SELECT deviceColumns ...)
// returns.
func (s *Store) readDevices(ctx context.Context, q querier, query string, args ...any) (map[EUI]Device, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("devices: read registry %s: %w", s.path, err)
	}
	defer rows.Close()
	devs := map[EUI]Device{}
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("devices: registry %s: %w", s.path, err)
		}
		devs[d.EUI] = d
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("devices: read registry %s: %w", s.path, err)
	}
	return devs, nil
}

func (s *Store) load(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadLocked(ctx, s.db)
}

// loadLocked replaces the in-memory devices with the table's; s.mu is held.
func (s *Store) loadLocked(ctx context.Context, q querier) error {
	devs, err := s.readDevices(ctx, q, "SELECT "+deviceColumns+" FROM devices")
	if err != nil {
		return err
	}
	next, err := NewRegistry(sortedDevices(devs))
	if err != nil {
		return fmt.Errorf("devices: registry %s: %w", s.path, err)
	}
	s.devs = devs
	s.reg.swapFrom(next)
	s.publish(next)
	return nil
}

func scanDevice(rows *sql.Rows) (Device, error) {
	var (
		d               Device
		eui, tags, vars string
		addr, mac       sql.NullString
		keys            [5][]byte
	)
	if err := rows.Scan(&eui, &d.Name, &d.Model, &tags, &vars, &addr, &mac, &keys[0], &keys[1], &keys[2], &keys[3], &keys[4]); err != nil {
		return d, err
	}
	var err error
	if d.EUI, err = ParseEUI(eui); err != nil {
		return d, err
	}
	if err := json.Unmarshal([]byte(tags), &d.Tags); err != nil {
		return d, fmt.Errorf("device %s: tags: %w", eui, err)
	}
	if err := json.Unmarshal([]byte(vars), &d.Variables); err != nil {
		return d, fmt.Errorf("device %s: variables: %w", eui, err)
	}
	d = normalized(d)
	if !addr.Valid {
		return d, nil
	}
	ss := &Session{MACVersion: mac.String}
	if ss.DevAddr, err = ParseDevAddr(addr.String); err != nil {
		return d, fmt.Errorf("device %s: %w", eui, err)
	}
	for i, k := range []*Key{&ss.NwkSKey, &ss.SNwkSIntKey, &ss.FNwkSIntKey, &ss.NwkSEncKey, &ss.AppSKey} {
		if len(keys[i]) != 0 && len(keys[i]) != len(k) {
			return d, fmt.Errorf("device %s: session key of %d bytes", eui, len(keys[i]))
		}
		copy(k[:], keys[i])
	}
	d.Session = ss
	return d, nil
}

// Close stops following other instances' changes and closes the database.
func (s *Store) Close() error {
	s.shared.stop()
	return s.db.Close()
}

// Ping reports whether the registry's database still answers (closed,
// a PostgreSQL server gone, a SQLite file lost).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("registry database: %w", err)
	}
	return nil
}

// Registry is the in-memory registry the store keeps in step.
func (s *Store) Registry() *Registry { return s.reg }

// Devices returns every device, sorted by name.
func (s *Store) Devices() []Device {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedDevices(s.devs)
}

// Device returns the device with the EUI.
func (s *Store) Device(eui EUI) (Device, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devs[eui]
	return d, ok
}

// Len returns the number of stored devices.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.devs)
}

// Create adds a device; ErrConflict if its EUI or name is taken.
func (s *Store) Create(ctx context.Context, d Device) error {
	d = normalized(d)
	return s.change(ctx, func(next map[EUI]Device, tx *sqlTx) ([]EUI, error) {
		if prev, ok := next[d.EUI]; ok {
			return nil, fmt.Errorf("%w: dev_eui %s is registered as %q: update it instead", ErrConflict, d.EUI, prev.Name)
		}
		next[d.EUI] = d
		return []EUI{d.EUI}, nil
	})
}

// Update replaces the device with d.EUI; ErrNotFound if there is none,
// ErrConflict if the new name belongs to another device.
func (s *Store) Update(ctx context.Context, d Device) error {
	d = normalized(d)
	return s.change(ctx, func(next map[EUI]Device, tx *sqlTx) ([]EUI, error) {
		if _, ok := next[d.EUI]; !ok {
			return nil, fmt.Errorf("%w: dev_eui %s: create it first", ErrNotFound, d.EUI)
		}
		next[d.EUI] = d
		return []EUI{d.EUI}, nil
	})
}

// Delete removes the device; ErrNotFound if there is none.
func (s *Store) Delete(ctx context.Context, eui EUI) error {
	return s.change(ctx, func(next map[EUI]Device, tx *sqlTx) ([]EUI, error) {
		if _, ok := next[eui]; !ok {
			return nil, fmt.Errorf("%w: dev_eui %s", ErrNotFound, eui)
		}
		delete(next, eui)
		return []EUI{eui}, nil
	})
}

// Adopt registers d and drops it from the unknown devices, in one
// transaction, then from u (which may be nil).
func (s *Store) Adopt(ctx context.Context, d Device, u *Unknowns) error {
	d = normalized(d)
	err := s.change(ctx, func(next map[EUI]Device, tx *sqlTx) ([]EUI, error) {
		if prev, ok := next[d.EUI]; ok {
			return nil, fmt.Errorf("%w: dev_eui %s is already registered as %q", ErrConflict, d.EUI, prev.Name)
		}
		next[d.EUI] = d
		if _, err := tx.ExecContext(ctx, "DELETE FROM unknown_devices WHERE dev_eui = ?", d.EUI.String()); err != nil {
			return nil, err
		}
		return []EUI{d.EUI}, nil
	})
	if err == nil && u != nil {
		u.Remove(d.EUI)
	}
	return err
}

// Upsert creates or replaces every device in devs, all or nothing, and
// returns how many were created and updated (an identical device counts
// as neither).
func (s *Store) Upsert(ctx context.Context, devs []Device) (created, updated int, err error) {
	err = s.change(ctx, func(next map[EUI]Device, tx *sqlTx) ([]EUI, error) {
		var changed []EUI
		for _, d := range devs {
			d = normalized(d)
			prev, ok := next[d.EUI]
			switch {
			case !ok:
				created++
			case SameDevice(prev, d):
				continue
			default:
				updated++
			}
			next[d.EUI] = d
			changed = append(changed, d.EUI)
		}
		return changed, nil
	})
	if err != nil {
		return 0, 0, err
	}
	return created, updated, nil
}

// ImportFile upserts the devices of the devices file at path (the
// config's devices.import) unless the file is byte for byte the one
// imported last time. So the file wins when it changes, and changes made
// through the API since then survive a restart; a device deleted through
// the API stays deleted until the file is edited. imported is false when
// the file was unchanged.
func (s *Store) ImportFile(ctx context.Context, path string) (imported bool, created, updated int, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, 0, 0, fmt.Errorf("devices: read devices file: %w", err)
	}
	sum := sha256.Sum256(b)
	key := "import_sha256:" + path
	var last string
	switch err := s.db.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = ?", key).Scan(&last); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return false, 0, 0, fmt.Errorf("devices: registry %s: %w", s.path, err)
	}
	if last == hex.EncodeToString(sum[:]) {
		return false, 0, 0, nil
	}
	devs, err := parseFile(path, b)
	if err != nil {
		return false, 0, 0, err
	}
	created, updated, err = s.Upsert(ctx, devs)
	if err != nil {
		return false, 0, 0, fmt.Errorf("import %s: %w", path, err)
	}
	if _, err := s.db.ExecContext(ctx, "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
		key, hex.EncodeToString(sum[:])); err != nil {
		return true, created, updated, fmt.Errorf("devices: registry %s: remember the import: %w", s.path, err)
	}
	return true, created, updated, nil
}

// change runs one all-or-nothing change: fn edits a copy of the device set
// (and may write other tables through tx) and returns the EUIs it touched;
// the whole resulting set is validated as a Registry, written, committed,
// and only then made visible.
func (s *Store) change(ctx context.Context, fn func(next map[EUI]Device, tx *sqlTx) ([]EUI, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("devices: registry %s: begin: %w", s.path, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if err := s.shared.lock(ctx, s, tx); err != nil {
		return err
	}
	next := maps.Clone(s.devs)
	if next == nil {
		next = map[EUI]Device{}
	}
	changed, err := fn(next, tx)
	if err != nil {
		return err
	}
	reg, err := NewRegistry(sortedDevices(next))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	if err := s.write(ctx, tx, next, changed); err != nil {
		return fmt.Errorf("devices: registry %s: %w", s.path, err)
	}
	if err := s.shared.notify(ctx, tx, changed); err != nil {
		return fmt.Errorf("devices: registry %s: %w", s.path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("devices: registry %s: commit: %w", s.path, err)
	}
	s.devs = next
	s.reg.swapFrom(reg)
	s.publish(reg)
	return nil
}

// write deletes every changed row first and inserts the survivors after,
// so that two devices swapping names do not trip the UNIQUE constraint
// half way.
func (s *Store) write(ctx context.Context, tx *sqlTx, next map[EUI]Device, changed []EUI) error {
	if s.db.d.pg {
		return s.writePG(ctx, tx, next, changed) // pgstore.go
	}
	del, err := tx.PrepareContext(ctx, "DELETE FROM devices WHERE dev_eui = ?")
	if err != nil {
		return err
	}
	defer del.Close()
	for _, e := range changed {
		if _, err := del.ExecContext(ctx, e.String()); err != nil {
			return fmt.Errorf("delete %s: %w", e, err)
		}
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO devices (dev_eui, name, model, tags, variables, dev_addr, mac_version,
		nwk_s_key, s_nwk_s_int_key, f_nwk_s_int_key, nwk_s_enc_key, app_s_key, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	now := s.now().UnixMilli()
	for _, e := range changed {
		d, ok := next[e]
		if !ok {
			continue // deleted
		}
		tags, _ := json.Marshal(orEmpty(d.Tags))
		vars, _ := json.Marshal(orEmpty(d.Variables))
		var addr, mac any
		keys := make([]any, 5)
		if ss := d.Session; ss != nil {
			addr, mac = ss.DevAddr.String(), ss.MACVersion
			for i, k := range []Key{ss.NwkSKey, ss.SNwkSIntKey, ss.FNwkSIntKey, ss.NwkSEncKey, ss.AppSKey} {
				if !k.IsZero() {
					keys[i] = k[:]
				}
			}
		}
		if _, err := ins.ExecContext(ctx, e.String(), d.Name, d.Model, string(tags), string(vars), addr, mac,
			keys[0], keys[1], keys[2], keys[3], keys[4], now); err != nil {
			return fmt.Errorf("write %s: %w", e, err)
		}
	}
	return nil
}

// loadStates reads a state table.
func (s *Store) loadStates(ctx context.Context, table string) (map[EUI][]byte, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT dev_eui, state FROM "+table)
	if err != nil {
		return nil, fmt.Errorf("devices: registry %s: read %s: %w", s.path, table, err)
	}
	defer rows.Close()
	out := map[EUI][]byte{}
	for rows.Next() {
		var eui, st string
		if err := rows.Scan(&eui, &st); err != nil {
			return nil, fmt.Errorf("devices: registry %s: read %s: %w", s.path, table, err)
		}
		e, err := ParseEUI(eui)
		if err != nil {
			continue // not ours to repair; the next save drops it
		}
		out[e] = []byte(st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("devices: registry %s: read %s: %w", s.path, table, err)
	}
	return out, nil
}

// normalized is d as the store keeps it: a name (the EUI when none is
// given, as the Registry does) and no empty maps, so that an unchanged
// re-import compares equal.
func normalized(d Device) Device {
	d.Name = strings.TrimSpace(d.Name)
	if d.Name == "" {
		d.Name = d.EUI.String()
	}
	if len(d.Tags) == 0 {
		d.Tags = nil
	}
	if len(d.Variables) == 0 {
		d.Variables = nil
	}
	if d.Session != nil {
		ss := *d.Session
		d.Session = &ss
	}
	return d
}

// SameDevice reports whether a and b describe the device identically.
func SameDevice(a, b Device) bool {
	a, b = normalized(a), normalized(b)
	if a.EUI != b.EUI || a.Name != b.Name || a.Model != b.Model ||
		!maps.Equal(a.Tags, b.Tags) || !maps.Equal(a.Variables, b.Variables) {
		return false
	}
	if (a.Session == nil) != (b.Session == nil) {
		return false
	}
	return a.Session == nil || *a.Session == *b.Session
}

func sortedDevices(m map[EUI]Device) []Device {
	out := slices.Collect(maps.Values(m))
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
