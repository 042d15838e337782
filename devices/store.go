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
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

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

	// mu serializes changes, so the Registry follows commit order. The
	// devices themselves live only in the Registry's current set, which
	// reads and listings use without mu, so they are never held up by a
	// change being written.
	mu  sync.Mutex
	now func() time.Time
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
// returns, for re-reading a few rows.
func (s *Store) readDevices(ctx context.Context, q querier, query string, args ...any) (map[EUI]Device, error) {
	devs := map[EUI]Device{}
	err := s.scanDevices(ctx, q, func(d Device) { devs[d.EUI] = d }, query, args...)
	return devs, err
}

// scanDevices calls fn with each device the query (SELECT deviceColumns
// ...) returns, so the whole table is never held twice while loading.
func (s *Store) scanDevices(ctx context.Context, q querier, fn func(Device), query string, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("devices: read registry %s: %w", s.path, err)
	}
	defer rows.Close()
	var sc deviceScanner
	for rows.Next() {
		d, err := sc.scan(rows)
		if err != nil {
			return fmt.Errorf("devices: registry %s: %w", s.path, err)
		}
		fn(d)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("devices: read registry %s: %w", s.path, err)
	}
	return nil
}

func (s *Store) load(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadLocked(ctx, s.db)
}

// loadLocked replaces the registry's devices with the table's; s.mu is
// held.
func (s *Store) loadLocked(ctx context.Context, q querier) error {
	next := &deviceSet{}
	var in interner
	err := s.scanDevices(ctx, q, func(d Device) { next.add(in.device(d)) }, "SELECT "+deviceColumns+" FROM devices")
	if err != nil {
		return err
	}
	if err := next.index(); err != nil {
		return fmt.Errorf("devices: registry %s: %w", s.path, err)
	}
	s.reg.swap(next)
	return nil
}

// deviceScanner reads device rows. Tags and variables are stored as JSON
// text and most devices of a fleet share theirs: the same text is decoded
// once.
type deviceScanner struct {
	tags, vars       map[string]map[string]string
	tagText, varText sql.RawBytes
}

func (sc *deviceScanner) scan(rows *sql.Rows) (Device, error) {
	var (
		d         Device
		eui       string
		addr, mac sql.NullString
		keys      [5][]byte
	)
	if err := rows.Scan(&eui, &d.Name, &d.Model, &sc.tagText, &sc.varText, &addr, &mac, &keys[0], &keys[1], &keys[2], &keys[3], &keys[4]); err != nil {
		return d, err
	}
	var err error
	if d.EUI, err = ParseEUI(eui); err != nil {
		return d, err
	}
	if d.Tags, err = sc.jsonMap(&sc.tags, sc.tagText); err != nil {
		return d, fmt.Errorf("device %s: tags: %w", eui, err)
	}
	if d.Variables, err = sc.jsonMap(&sc.vars, sc.varText); err != nil {
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

// jsonMap decodes a JSON object of strings, reusing the map decoded from
// the same text before (the interner shares it between devices anyway;
// this saves decoding it again). The cache is bounded: past 4096
// distinct texts it starts over.
func (sc *deviceScanner) jsonMap(cache *map[string]map[string]string, text []byte) (map[string]string, error) {
	if len(text) == 0 || string(text) == "{}" {
		return nil, nil
	}
	if m, ok := (*cache)[string(text)]; ok {
		return m, nil
	}
	var m map[string]string
	if err := json.Unmarshal(text, &m); err != nil {
		return nil, err
	}
	if *cache == nil || len(*cache) >= 4096 {
		*cache = map[string]map[string]string{}
	}
	(*cache)[string(text)] = m
	return m, nil
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

// Devices returns every device, sorted by name. It copies the registry:
// listings of a large one use EachByName or Page.
func (s *Store) Devices() []Device {
	set := s.reg.set()
	out := make([]Device, 0, set.len())
	for _, i := range set.byNameOrder() {
		out = append(out, *set.at(i))
	}
	return out
}

// EachByName calls fn with every device in name order until it returns
// false, without copying them. fn must not modify or keep the device.
func (s *Store) EachByName(fn func(*Device) bool) {
	set := s.reg.set()
	for _, i := range set.byNameOrder() {
		if !fn(set.at(i)) {
			return
		}
	}
}

// Device returns the device with the EUI.
func (s *Store) Device(eui EUI) (Device, bool) {
	d, ok := s.reg.set().lookup(eui)
	if !ok {
		return Device{}, false
	}
	return *d, true
}

// Len returns the number of stored devices.
func (s *Store) Len() int { return s.reg.Len() }

// Create adds a device; ErrConflict if its EUI or name is taken.
func (s *Store) Create(ctx context.Context, d Device) error {
	d = normalized(d)
	return s.change(ctx, func(p *pending, tx *sqlTx) error {
		if prev, ok := p.get(d.EUI); ok {
			return fmt.Errorf("%w: dev_eui %s is registered as %q: update it instead", ErrConflict, d.EUI, prev.Name)
		}
		p.set(d)
		return nil
	})
}

// Update replaces the device with d.EUI; ErrNotFound if there is none,
// ErrConflict if the new name belongs to another device.
func (s *Store) Update(ctx context.Context, d Device) error {
	d = normalized(d)
	return s.change(ctx, func(p *pending, tx *sqlTx) error {
		if _, ok := p.get(d.EUI); !ok {
			return fmt.Errorf("%w: dev_eui %s: create it first", ErrNotFound, d.EUI)
		}
		p.set(d)
		return nil
	})
}

// Delete removes the device; ErrNotFound if there is none.
func (s *Store) Delete(ctx context.Context, eui EUI) error {
	return s.change(ctx, func(p *pending, tx *sqlTx) error {
		if _, ok := p.get(eui); !ok {
			return fmt.Errorf("%w: dev_eui %s", ErrNotFound, eui)
		}
		p.del(eui)
		return nil
	})
}

// Adopt registers d and drops it from the unknown devices, in one
// transaction, then from u (which may be nil).
func (s *Store) Adopt(ctx context.Context, d Device, u *Unknowns) error {
	d = normalized(d)
	err := s.change(ctx, func(p *pending, tx *sqlTx) error {
		if prev, ok := p.get(d.EUI); ok {
			return fmt.Errorf("%w: dev_eui %s is already registered as %q", ErrConflict, d.EUI, prev.Name)
		}
		p.set(d)
		_, err := tx.ExecContext(ctx, "DELETE FROM unknown_devices WHERE dev_eui = ?", d.EUI.String())
		return err
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
	err = s.change(ctx, func(p *pending, tx *sqlTx) error {
		for _, d := range devs {
			d = normalized(d)
			prev, ok := p.get(d.EUI)
			switch {
			case !ok:
				created++
			case SameDevice(prev, d):
				continue
			default:
				updated++
			}
			p.set(d)
		}
		return nil
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

// change runs one all-or-nothing change: fn records edits on top of the
// current devices (and may write other tables through tx); the whole
// resulting set is validated as a registry, the edits written and
// committed, and only then is the set made visible.
func (s *Store) change(ctx context.Context, fn func(p *pending, tx *sqlTx) error) error {
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
	p := &pending{base: s.reg.set(), put: map[EUI]*Device{}}
	if err := fn(p, tx); err != nil {
		return err
	}
	next, err := p.build()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return s.commit(ctx, tx, next, p)
}

// commit writes p's edits in tx, announces them, commits and makes next
// the registry's set.
func (s *Store) commit(ctx context.Context, tx *sqlTx, next *deviceSet, p edits) error {
	if err := s.write(ctx, tx, p); err != nil {
		return fmt.Errorf("devices: registry %s: %w", s.path, err)
	}
	if err := s.shared.notify(ctx, tx, p.changedEUIs()); err != nil {
		return fmt.Errorf("devices: registry %s: %w", s.path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("devices: registry %s: commit: %w", s.path, err)
	}
	s.reg.swap(next)
	return nil
}

// edits is what a change writes: the EUIs it touched, and per EUI the
// device it now holds (nil: deleted).
type edits interface {
	changedEUIs() []EUI
	each(fn func(e EUI, d *Device) error) error
}

// pending is a change being made: edits over a base set.
type pending struct {
	base    *deviceSet
	put     map[EUI]*Device // nil: deleted
	changed []EUI
}

func (p *pending) get(e EUI) (Device, bool) {
	if d, ok := p.put[e]; ok {
		if d == nil {
			return Device{}, false
		}
		return *d, true
	}
	if d, ok := p.base.lookup(e); ok {
		return *d, true
	}
	return Device{}, false
}

func (p *pending) touch(e EUI) {
	if _, ok := p.put[e]; !ok {
		p.changed = append(p.changed, e)
	}
}

func (p *pending) set(d Device) {
	p.touch(d.EUI)
	p.put[d.EUI] = &d
}

func (p *pending) del(e EUI) {
	p.touch(e)
	p.put[e] = nil
}

func (p *pending) changedEUIs() []EUI { return p.changed }

func (p *pending) each(fn func(e EUI, d *Device) error) error {
	for _, e := range p.changed {
		if err := fn(e, p.put[e]); err != nil {
			return err
		}
	}
	return nil
}

// build returns the base set with the edits applied, validated.
func (p *pending) build() (*deviceSet, error) {
	next := &deviceSet{}
	p.base.all(func(d *Device) bool {
		if _, edited := p.put[d.EUI]; !edited {
			next.add(*d)
		}
		return true
	})
	var in interner
	for _, e := range p.changed {
		if d := p.put[e]; d != nil {
			next.add(in.device(*d))
		}
	}
	if err := next.index(); err != nil {
		return nil, err
	}
	return next, nil
}

// write deletes every changed row first and inserts the survivors after,
// so that two devices swapping names do not trip the UNIQUE constraint
// half way.
func (s *Store) write(ctx context.Context, tx *sqlTx, p edits) error {
	if s.db.d.pg {
		return s.writePG(ctx, tx, p) // pgstore.go
	}
	// Only rows that exist are deleted: the registry is the table (this
	// process is SQLite's one writer), and a created device has none.
	base := s.reg.set()
	del, err := tx.PrepareContext(ctx, "DELETE FROM devices WHERE dev_eui = ?")
	if err != nil {
		return err
	}
	defer del.Close()
	for _, e := range p.changedEUIs() {
		if _, ok := base.lookup(e); !ok {
			continue
		}
		if _, err := del.ExecContext(ctx, e.String()); err != nil {
			return fmt.Errorf("delete %s: %w", e, err)
		}
	}
	// Rows go in sqliteBatch to a statement: a statement's execution
	// costs more than a row's.
	one := "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	insert := `INSERT INTO devices (dev_eui, name, model, tags, variables, dev_addr, mac_version,
		nwk_s_key, s_nwk_s_int_key, f_nwk_s_int_key, nwk_s_enc_key, app_s_key, updated_at) VALUES `
	batch, err := tx.PrepareContext(ctx, insert+strings.Repeat(one+",", sqliteBatch-1)+one)
	if err != nil {
		return err
	}
	defer batch.Close()
	single, err := tx.PrepareContext(ctx, insert+one)
	if err != nil {
		return err
	}
	defer single.Close()
	now := s.now().UnixMilli()
	var enc rowEncoder
	args := make([]any, 0, 13*sqliteBatch)
	err = p.each(func(e EUI, d *Device) error {
		if d == nil {
			return nil // deleted
		}
		args = enc.append(args, e, d, now)
		if len(args) == cap(args) {
			if _, err := batch.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			args = args[:0]
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := 0; i < len(args); i += 13 {
		if _, err := single.ExecContext(ctx, args[i:i+13]...); err != nil {
			return fmt.Errorf("write %s: %w", args[i], err)
		}
	}
	return nil
}

// sqliteBatch is the number of rows per INSERT with SQLite (13
// parameters each, far below its limit of 32766).
const sqliteBatch = 64

// rowEncoder turns devices into the devices table's columns. Devices
// share their tag and variable maps (interner), so the JSON of a map is
// kept for the next device with the same one: a fleet's few dozen
// combinations of tags come in any order, and encoding each row's maps
// anew was a quarter of a 100,000-row import's CPU.
type rowEncoder struct {
	// texts is the JSON of each map seen, by the map's identity. The maps
	// are the devices' being written, alive for the encoder's life, so an
	// address is never reused for another map meanwhile.
	texts map[unsafe.Pointer]string
}

// maxEncodedMaps bounds rowEncoder.texts: devices whose maps are all
// different (a variable per device) are encoded one by one, as before.
const maxEncodedMaps = 4096

func (re *rowEncoder) json(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	k := reflect.ValueOf(m).UnsafePointer()
	if t, ok := re.texts[k]; ok {
		return t
	}
	b, _ := json.Marshal(m)
	if re.texts == nil || len(re.texts) >= maxEncodedMaps {
		re.texts = make(map[unsafe.Pointer]string)
	}
	re.texts[k] = string(b)
	return re.texts[k]
}

// append adds d's 13 columns in the order of the INSERTs.
func (re *rowEncoder) append(args []any, e EUI, d *Device, now int64) []any {
	var addr, mac any
	var keys [5]any
	if ss := d.Session; ss != nil {
		addr, mac = ss.DevAddr.String(), ss.MACVersion
		for i, k := range []Key{ss.NwkSKey, ss.SNwkSIntKey, ss.FNwkSIntKey, ss.NwkSEncKey, ss.AppSKey} {
			if !k.IsZero() {
				keys[i] = slices.Clone(k[:])
			}
		}
	}
	return append(args, e.String(), d.Name, d.Model, re.json(d.Tags), re.json(d.Variables),
		addr, mac, keys[0], keys[1], keys[2], keys[3], keys[4], now)
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
