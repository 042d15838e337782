package devices

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// migrations are the schema changes after the base schema, by version:
// migrations[v] takes a database from version v-1 to v. Only append.
var migrations = map[int]string{
	// 2: raw-LoRaWAN frame counters, so a replayed frame is rejected
	// after a restart and on every instance sharing the registry.
	2: `CREATE TABLE IF NOT EXISTS frame_counters (dev_eui TEXT PRIMARY KEY, state BLOB NOT NULL)`,
	// 3: device health shared by instances (healthsync.go) and their
	// heartbeats (instances.go). Times are milliseconds, hours unix
	// hours; updated_xid is the writing transaction's id.
	3: `CREATE TABLE IF NOT EXISTS health_devices (dev_eui TEXT PRIMARY KEY, first_seen INTEGER NOT NULL,
		last_seen INTEGER NOT NULL, state TEXT NOT NULL, updated_xid INTEGER NOT NULL);
	CREATE INDEX IF NOT EXISTS health_devices_updated ON health_devices (updated_xid);
	CREATE TABLE IF NOT EXISTS health_frames (dev_eui TEXT NOT NULL, hour INTEGER NOT NULL, block INTEGER NOT NULL,
		bits INTEGER NOT NULL, updated_xid INTEGER NOT NULL, PRIMARY KEY (dev_eui, hour, block));
	CREATE INDEX IF NOT EXISTS health_frames_updated ON health_frames (updated_xid);
	CREATE INDEX IF NOT EXISTS health_frames_hour ON health_frames (hour);
	CREATE TABLE IF NOT EXISTS health_hours (dev_eui TEXT NOT NULL, hour INTEGER NOT NULL, no_fcnt INTEGER NOT NULL,
		dead_letters INTEGER NOT NULL, updated_xid INTEGER NOT NULL, PRIMARY KEY (dev_eui, hour));
	CREATE INDEX IF NOT EXISTS health_hours_updated ON health_hours (updated_xid);
	CREATE INDEX IF NOT EXISTS health_hours_hour ON health_hours (hour);
	CREATE TABLE IF NOT EXISTS instances (id TEXT PRIMARY KEY, version TEXT NOT NULL, started_at INTEGER NOT NULL,
		heartbeat_at INTEGER NOT NULL, sources TEXT NOT NULL)`,
}

// migrateLock is the pg_advisory_lock key migrations run under, so that
// instances starting together apply each migration once.
const migrateLock = 0x5e450001

// migrate brings the schema to schemaVersion. The base schema is created
// if missing on every start (it is idempotent), then each migration above
// the recorded version runs in its own transaction with the version.
func (s *Store) migrate(ctx context.Context) error {
	if !s.db.d.pg {
		return s.migrateWith(ctx, s.db, sqliteVersion{})
	}
	// A session lock on one connection: held across the migration
	// transactions, released by the unlock or when the connection ends.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("devices: registry %s: connect: %w (check registry.dsn and that PostgreSQL is running)", s.path, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrateLock); err != nil {
		return fmt.Errorf("devices: registry %s: wait for the migration lock: %w", s.path, err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrateLock) //nolint:errcheck // the lock ends with the connection anyway
	return s.migrateWith(ctx, &connDB{conn: conn, d: s.db.d}, pgVersion{})
}

// execer is what a migration runs on: the database or one connection.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sqlTx, error)
}

// versioner reads and records the schema version, per dialect.
type versioner interface {
	prepare(ctx context.Context, db execer) error
	current(ctx context.Context, db execer) (int, error)
	record(ctx context.Context, tx *sqlTx, v int) error
}

func (s *Store) migrateWith(ctx context.Context, db execer, ver versioner) error {
	if err := ver.prepare(ctx, db); err != nil {
		return fmt.Errorf("devices: registry %s: %w", s.path, err)
	}
	v, err := ver.current(ctx, db)
	if err != nil {
		return fmt.Errorf("devices: registry %s is not a readable registry database: %w", s.path, err)
	}
	if v > schemaVersion {
		return fmt.Errorf("devices: registry %s has schema version %d, newer than this sensorgate (%d): upgrade sensorgate", s.path, v, schemaVersion)
	}
	for _, stmt := range strings.Split(schema, ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("devices: create registry tables in %s: %w", s.path, err)
		}
	}
	for next := max(v+1, 1); next <= schemaVersion; next++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("devices: registry %s: migrate to version %d: %w", s.path, next, err)
		}
		for _, stmt := range strings.Split(migrations[next], ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				tx.Rollback() //nolint:errcheck // the error above is the one to report
				return fmt.Errorf("devices: registry %s: migrate to version %d: %w", s.path, next, err)
			}
		}
		if err := ver.record(ctx, tx, next); err != nil {
			tx.Rollback() //nolint:errcheck // the error above is the one to report
			return fmt.Errorf("devices: registry %s: record version %d: %w", s.path, next, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("devices: registry %s: migrate to version %d: %w", s.path, next, err)
		}
	}
	return nil
}

type sqliteVersion struct{}

func (sqliteVersion) prepare(context.Context, execer) error { return nil }

func (sqliteVersion) current(ctx context.Context, db execer) (int, error) {
	var v int
	err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

func (sqliteVersion) record(ctx context.Context, tx *sqlTx, v int) error {
	_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v))
	return err
}

type pgVersion struct{}

func (pgVersion) prepare(ctx context.Context, db execer) error {
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`)
	return err
}

func (pgVersion) current(ctx context.Context, db execer) (int, error) {
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT max(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, err
	}
	return int(v.Int64), nil
}

func (pgVersion) record(ctx context.Context, tx *sqlTx, v int) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version) VALUES (?)", v)
	return err
}

// connDB runs a migration's statements on one connection, the one that
// holds the migration lock.
type connDB struct {
	conn *sql.Conn
	d    *dialect
}

func (c *connDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.conn.ExecContext(ctx, c.d.q(query), args...)
}

func (c *connDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return c.conn.QueryRowContext(ctx, c.d.q(query), args...)
}

func (c *connDB) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sqlTx, error) {
	tx, err := c.conn.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &sqlTx{Tx: tx, d: c.d}, nil
}
