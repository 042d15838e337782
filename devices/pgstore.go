package devices

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/rs/zerolog"
)

// StoreOptions says which database holds the registry.
type StoreOptions struct {
	// Driver is DriverSQLite (default: a file under StateDir) or
	// DriverPostgres (DSN: a database several instances share).
	Driver   string
	DSN      string
	StateDir string
	// Log receives the shared registry's connection problems.
	Log zerolog.Logger
}

// Open opens the registry the options name and loads it into reg. With
// PostgreSQL the Store also follows the changes other instances make (see
// shared).
func Open(ctx context.Context, o StoreOptions, reg *Registry) (*Store, error) {
	switch o.Driver {
	case "", DriverSQLite:
		return OpenStore(ctx, filepath.Join(o.StateDir, StoreFileName), reg)
	case DriverPostgres:
		return openPostgres(ctx, o, reg)
	}
	return nil, fmt.Errorf("devices: registry driver %q: use %s or %s", o.Driver, DriverSQLite, DriverPostgres)
}

// notifyChannel is the NOTIFY channel registry changes are announced on;
// the payload is the changed DevEUIs, comma-separated, or "*" for more
// than notifyMaxEUIs (a NOTIFY payload is limited to 8000 bytes).
const (
	notifyChannel = "sensorgate_registry"
	notifyMaxEUIs = 200
	// registryLock is the pg_advisory_xact_lock key every change takes,
	// so changes from all instances apply one after another.
	registryLock = 0x5e450002
	// listenAppName marks the listening connection in pg_stat_activity.
	listenAppName = "sensorgate-registry-listen"
)

func openPostgres(ctx context.Context, o StoreOptions, reg *Registry) (*Store, error) {
	if reg == nil {
		reg = &Registry{}
	}
	cfg, err := pgx.ParseConfig(o.DSN)
	if err != nil {
		// pgconn's error shows the DSN with its password redacted.
		return nil, fmt.Errorf("devices: registry.dsn: %w (write postgres://user:password@host:5432/database)", err)
	}
	where := fmt.Sprintf("postgres://%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	listenCfg := cfg.Copy()
	listenCfg.RuntimeParams["application_name"] = listenAppName
	db := stdlib.OpenDB(*cfg)
	s := &Store{db: &sqlDB{DB: db, d: &dialect{pg: true}}, path: where, reg: reg, now: time.Now}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("devices: registry %s: connect: %w (check registry.dsn and that PostgreSQL is running)", where, err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	sh := &shared{cfg: listenCfg, log: o.Log.With().Str("registry", where).Logger(), done: make(chan struct{})}
	// LISTEN before the first load: a change committed in between is
	// then both in the load and in a notification, never in neither.
	conn, err := sh.connect(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("devices: registry %s: listen for changes: %w", where, err)
	}
	if err := s.load(ctx); err != nil {
		conn.Close(context.Background())
		db.Close()
		return nil, err
	}
	var runCtx context.Context
	runCtx, sh.cancel = context.WithCancel(context.Background())
	s.shared = sh
	go sh.run(runCtx, s, conn)
	return s, nil
}

// shared follows a registry other instances change too. Each change takes
// a transaction-scoped advisory lock, re-reads the table inside it (so it
// is checked against every instance's devices, not a stale copy), and
// NOTIFYs the changed EUIs at commit. A dedicated connection LISTENs and
// re-reads only those rows. When that connection is lost it reconnects
// and re-reads everything once, since notifications sent meanwhile are
// gone. A nil *shared (SQLite) does none of this.
type shared struct {
	cfg    *pgx.ConnConfig
	log    zerolog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	hookMu   sync.Mutex
	onChange func(euis []EUI)

	reconnects atomic.Int64
	listenPID  atomic.Uint32
}

// OnRemoteChange sets fn to be called with the EUIs of devices whose rows
// were re-read after a notification (or every device after a reconnect).
// It is how an instance drops from its unknown devices one that another
// instance adopted. fn must not call back into the Store. No-op with
// SQLite.
func (s *Store) OnRemoteChange(fn func(euis []EUI)) {
	if s.shared == nil {
		return
	}
	s.shared.hookMu.Lock()
	s.shared.onChange = fn
	s.shared.hookMu.Unlock()
}

// Shared reports whether other instances share the registry.
func (s *Store) Shared() bool { return s.shared != nil }

func (sh *shared) stop() {
	if sh == nil {
		return
	}
	sh.cancel()
	<-sh.done
}

// lock serializes changes across instances and brings the registry up to
// date within tx; s.mu is held.
func (sh *shared) lock(ctx context.Context, s *Store, tx *sqlTx) error {
	if sh == nil {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", registryLock); err != nil {
		return fmt.Errorf("devices: registry %s: lock: %w", s.path, err)
	}
	return s.loadLocked(ctx, tx)
}

// notify announces changed at tx's commit.
func (sh *shared) notify(ctx context.Context, tx *sqlTx, changed []EUI) error {
	if sh == nil || len(changed) == 0 {
		return nil
	}
	payload := "*"
	if len(changed) <= notifyMaxEUIs {
		parts := make([]string, len(changed))
		for i, e := range changed {
			parts[i] = e.String()
		}
		payload = strings.Join(parts, ",")
	}
	if _, err := tx.ExecContext(ctx, "SELECT pg_notify(?, ?)", notifyChannel, payload); err != nil {
		return fmt.Errorf("notify the other instances: %w", err)
	}
	return nil
}

func (sh *shared) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, sh.cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	sh.listenPID.Store(conn.PgConn().PID())
	return conn, nil
}

// run applies notifications until ctx ends; conn is listening.
func (sh *shared) run(ctx context.Context, s *Store, conn *pgx.Conn) {
	defer close(sh.done)
	backoff := 100 * time.Millisecond
	for {
		if conn == nil {
			var err error
			if conn, err = sh.connect(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				sh.log.Warn().Err(err).Stringer("retry_in", backoff).Msg("shared registry: cannot listen for other instances' changes; retrying")
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
			backoff = 100 * time.Millisecond
			sh.reconnects.Add(1)
			// Notifications sent while disconnected are lost: read all.
			if err := sh.apply(ctx, s, nil); err != nil {
				sh.log.Warn().Err(err).Msg("shared registry: re-reading after reconnect failed; retrying")
				conn.Close(context.Background())
				conn = nil
				continue
			}
			sh.log.Info().Msg("shared registry: listening again; registry re-read")
		}
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			conn.Close(context.Background())
			conn = nil
			if ctx.Err() != nil {
				return
			}
			sh.log.Warn().Err(err).Msg("shared registry: lost the connection listening for other instances' changes; reconnecting")
			continue
		}
		euis, all := parseNotification(n.Payload)
		if all {
			euis = nil
		}
		if err := sh.apply(ctx, s, euis); err != nil && ctx.Err() == nil {
			// The rows stay as they were; drop the connection so the
			// reconnect re-reads everything.
			sh.log.Warn().Err(err).Msg("shared registry: applying a change failed; re-reading the registry")
			conn.Close(context.Background())
			conn = nil
		}
	}
}

// parseNotification reads a payload; anything unexpected asks for a full
// re-read rather than trusting part of it.
func parseNotification(p string) (euis []EUI, all bool) {
	if p == "*" || p == "" {
		return nil, true
	}
	parts := strings.Split(p, ",")
	if len(parts) > notifyMaxEUIs {
		return nil, true
	}
	for _, part := range parts {
		e, err := ParseEUI(part)
		if err != nil {
			return nil, true
		}
		euis = append(euis, e)
	}
	return euis, false
}

// apply re-reads the rows of euis (every row when euis is nil) and tells
// the hook.
func (sh *shared) apply(ctx context.Context, s *Store, euis []EUI) error {
	changed, err := s.reread(ctx, euis)
	if err != nil {
		return err
	}
	sh.hookMu.Lock()
	fn := sh.onChange
	sh.hookMu.Unlock()
	if fn != nil && len(changed) > 0 {
		fn(changed)
	}
	return nil
}

// reread replaces the in-memory rows of euis by the table's (all of them
// when euis is nil) and returns the EUIs it looked at.
func (s *Store) reread(ctx context.Context, euis []EUI) ([]EUI, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if euis == nil {
		if err := s.loadLocked(ctx, s.db); err != nil {
			return nil, err
		}
		return s.allEUIs(), nil
	}
	keys := make([]string, len(euis))
	for i, e := range euis {
		keys[i] = e.String()
	}
	got, err := s.readDevices(ctx, s.db, "SELECT "+deviceColumns+" FROM devices WHERE dev_eui = ANY(?)", keys)
	if err != nil {
		return nil, err
	}
	p := &pending{base: s.reg.set(), put: map[EUI]*Device{}}
	for _, e := range euis {
		if d, ok := got[e]; ok {
			p.set(d)
		} else {
			p.del(e)
		}
	}
	next, err := p.build()
	if err != nil {
		// Rows of a later change than the notification (a rename that
		// another one made room for) can clash with older rows here: the
		// whole table is consistent.
		if err := s.loadLocked(ctx, s.db); err != nil {
			return nil, err
		}
		return s.allEUIs(), nil
	}
	s.reg.swap(next)
	return euis, nil
}

func (s *Store) allEUIs() []EUI {
	set := s.reg.set()
	out := make([]EUI, 0, set.len())
	set.all(func(d *Device) bool {
		out = append(out, d.EUI)
		return true
	})
	return out
}

// writePG is write in a few statements, whatever the number of
// devices: a statement is a network round trip, and a 10,000-device
// import would otherwise make 20,000 of them. Batches of pgBatch rows
// bound what one statement holds; every delete still comes before every
// insert.
func (s *Store) writePG(ctx context.Context, tx *sqlTx, p edits) error {
	changed := p.changedEUIs()
	for start := 0; start < len(changed); start += pgBatch {
		part := changed[start:min(start+pgBatch, len(changed))]
		keys := make([]string, len(part))
		for i, e := range part {
			keys[i] = e.String()
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM devices WHERE dev_eui = ANY(?)", keys); err != nil {
			return fmt.Errorf("delete: %w", err)
		}
	}
	var b pgRows
	now := s.now().UnixMilli()
	err := p.each(func(e EUI, d *Device) error {
		if d == nil {
			return nil // deleted
		}
		b.add(e, d, now)
		if len(b.euis) >= pgBatch {
			return b.flush(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return b.flush(ctx, tx)
}

// pgBatch is the number of rows per statement of writePG.
const pgBatch = 10000

// pgRows are the columns of rows to insert with unnest.
type pgRows struct {
	euis, names, models, tags, vars []string
	addrs, macs                     []*string
	keyCols                         [5][][]byte
	times                           []int64
	enc                             rowEncoder
}

func (b *pgRows) add(e EUI, d *Device, now int64) {
	b.euis, b.names, b.models = append(b.euis, e.String()), append(b.names, d.Name), append(b.models, d.Model)
	b.tags, b.vars, b.times = append(b.tags, b.enc.json(d.Tags)), append(b.vars, b.enc.json(d.Variables)), append(b.times, now)
	var addr, mac *string
	var ks [5][]byte
	if ss := d.Session; ss != nil {
		a, m := ss.DevAddr.String(), ss.MACVersion
		addr, mac = &a, &m
		for i, k := range []Key{ss.NwkSKey, ss.SNwkSIntKey, ss.FNwkSIntKey, ss.NwkSEncKey, ss.AppSKey} {
			if !k.IsZero() {
				ks[i] = slices.Clone(k[:])
			}
		}
	}
	b.addrs, b.macs = append(b.addrs, addr), append(b.macs, mac)
	for i := range ks {
		b.keyCols[i] = append(b.keyCols[i], ks[i])
	}
}

func (b *pgRows) flush(ctx context.Context, tx *sqlTx) error {
	if len(b.euis) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO devices (dev_eui, name, model, tags, variables, dev_addr, mac_version,
		nwk_s_key, s_nwk_s_int_key, f_nwk_s_int_key, nwk_s_enc_key, app_s_key, updated_at)
		SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[],
			?::bytea[], ?::bytea[], ?::bytea[], ?::bytea[], ?::bytea[], ?::bigint[])`,
		b.euis, b.names, b.models, b.tags, b.vars, b.addrs, b.macs, b.keyCols[0], b.keyCols[1], b.keyCols[2], b.keyCols[3], b.keyCols[4], b.times)
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	*b = pgRows{enc: b.enc}
	return nil
}
