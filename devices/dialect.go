package devices

import (
	"context"
	"database/sql"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Registry drivers (the config's registry.driver).
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// dialect is what differs between the two SQL databases the store runs
// on. Statements are written once, in SQLite's spelling, and rewritten for
// PostgreSQL here, so the store's logic has one copy.
type dialect struct {
	pg bool
	// cache holds rewritten statements: the store issues a handful of
	// distinct ones, so it stays small.
	cache sync.Map
}

// primaryKeys names the conflict target of INSERT OR REPLACE per state
// table: PostgreSQL's ON CONFLICT needs it spelled out.
var primaryKeys = map[string][]string{
	"health":          {"dev_eui"},
	"unknown_devices": {"dev_eui"},
	"unknown_series":  {"source", "dev_eui"},
	"meta":            {"key"},
	"frame_counters":  {"dev_eui"},
	"instances":       {"id"},
}

var (
	insertOrReplace = regexp.MustCompile(`^\s*INSERT OR REPLACE INTO (\w+)\s*\(([^)]*)\)([\s\S]*)$`)
	insertOrIgnore  = regexp.MustCompile(`^\s*INSERT OR IGNORE INTO ([\s\S]*)$`)
)

// q returns query in this dialect's spelling: $n placeholders, BYTEA for
// BLOB, BIGINT for INTEGER (millisecond times do not fit PostgreSQL's
// 32-bit INTEGER), INSERT OR REPLACE as an upsert on the table's key and
// INSERT OR IGNORE as ON CONFLICT DO NOTHING.
func (d *dialect) q(query string) string {
	if !d.pg {
		return query
	}
	if v, ok := d.cache.Load(query); ok {
		return v.(string)
	}
	out := query
	if m := insertOrReplace.FindStringSubmatch(out); m != nil {
		out = "INSERT INTO " + m[1] + " (" + m[2] + ")" + m[3] + onConflict(m[1], m[2])
	} else if m := insertOrIgnore.FindStringSubmatch(out); m != nil {
		out = "INSERT INTO " + m[1] + " ON CONFLICT DO NOTHING"
	}
	out = strings.NewReplacer(" BLOB", " BYTEA", " INTEGER", " BIGINT").Replace(out)
	out = placeholders(out)
	d.cache.Store(query, out)
	return out
}

// onConflict is the upsert clause for INSERT OR REPLACE into table with
// the listed columns. An unknown table gets none, so the statement fails
// loudly on a duplicate instead of silently keeping the old row.
func onConflict(table, cols string) string {
	keys, ok := primaryKeys[table]
	if !ok {
		return ""
	}
	var set []string
	for _, c := range strings.Split(cols, ",") {
		c = strings.TrimSpace(c)
		isKey := false
		for _, k := range keys {
			isKey = isKey || k == c
		}
		if !isKey {
			set = append(set, c+" = EXCLUDED."+c)
		}
	}
	clause := " ON CONFLICT (" + strings.Join(keys, ", ") + ") DO "
	if len(set) == 0 {
		return clause + "NOTHING"
	}
	return clause + "UPDATE SET " + strings.Join(set, ", ")
}

// placeholders numbers the ? placeholders of query ($1, $2, ...), leaving
// string literals alone.
func placeholders(query string) string {
	var b strings.Builder
	n, quoted := 0, false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// sqlDB is a *sql.DB whose statements are rewritten for its dialect.
type sqlDB struct {
	*sql.DB
	d *dialect
}

func (db *sqlDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return db.DB.ExecContext(ctx, db.d.q(query), args...)
}

func (db *sqlDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.DB.QueryContext(ctx, db.d.q(query), args...)
}

func (db *sqlDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return db.DB.QueryRowContext(ctx, db.d.q(query), args...)
}

func (db *sqlDB) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sqlTx, error) {
	tx, err := db.DB.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &sqlTx{Tx: tx, d: db.d}, nil
}

// sqlTx is a *sql.Tx whose statements are rewritten for its dialect.
type sqlTx struct {
	*sql.Tx
	d *dialect
}

func (tx *sqlTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return tx.Tx.ExecContext(ctx, tx.d.q(query), args...)
}

func (tx *sqlTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.Tx.QueryContext(ctx, tx.d.q(query), args...)
}

func (tx *sqlTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return tx.Tx.QueryRowContext(ctx, tx.d.q(query), args...)
}

func (tx *sqlTx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return tx.Tx.PrepareContext(ctx, tx.d.q(query))
}
