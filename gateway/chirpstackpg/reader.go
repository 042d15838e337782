package chirpstackpg

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultMaxRowBytes bounds one row's variable-length columns, as
// webhook.DefaultMaxBodyBytes bounds a posted event: a ChirpStack row is
// a few kilobytes (a LoRaWAN payload is at most 242 bytes).
const DefaultMaxRowBytes = 1 << 20

// columns are event_up's columns in ChirpStack v4's PostgreSQL
// integration (its migration 00000000000000_initial); Check wants them
// all.
var columns = []string{
	"deduplication_id", "time", "tenant_id", "tenant_name", "application_id", "application_name",
	"device_profile_id", "device_profile_name", "device_name", "dev_eui", "tags", "dev_addr",
	"adr", "dr", "f_cnt", "f_port", "confirmed", "data", "object", "rx_info", "tx_info",
}

// Reader reads one ChirpStack integration database. It holds one
// connection and is not safe for concurrent use.
type Reader struct {
	conn   *pgx.Conn
	target string // user, host and database, for messages
	// MaxRowBytes bounds a row's variable-length columns (data, the JSON
	// and the names); a larger row is streamed as TooLarge, without its
	// content. 0 means DefaultMaxRowBytes.
	MaxRowBytes int64
}

// Connect opens the database at dsn (a postgres:// URL or key=value
// words, as libpq takes them; PGPASSWORD and ~/.pgpass apply). Errors say
// what to fix and never hold the password.
func Connect(ctx context.Context, dsn string) (*Reader, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx redacts the password; the text is still checked, since a
		// DSN that does not parse may not be redacted where expected.
		return nil, fmt.Errorf("the ChirpStack PostgreSQL DSN %s does not parse (want postgres://user@host:5432/database?sslmode=… or host=… dbname=… words): %s", RedactDSN(dsn), redactIn(err.Error(), dsn))
	}
	cfg.RuntimeParams["application_name"] = "sensorgate-backfill"
	target := fmt.Sprintf("database %q on %s:%d as user %q", cfg.Database, cfg.Host, cfg.Port, cfg.User)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, connectError(target, dsn, err)
	}
	return &Reader{conn: conn, target: target}, nil
}

// connectError words a failed connection by its cause.
func connectError(target, dsn string, err error) error {
	msg := redactIn(err.Error(), dsn)
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "28P01", "28000": // invalid_password, invalid_authorization_specification
			return fmt.Errorf("PostgreSQL refused %s: check the DSN's user and password (or PGPASSWORD, ~/.pgpass): %s", target, msg)
		case "3D000": // invalid_catalog_name
			return fmt.Errorf("PostgreSQL has no %s: name ChirpStack's integration database (integration.postgresql.dsn in chirpstack.toml): %s", target, msg)
		case "42501": // insufficient_privilege: CONNECT revoked
			return fmt.Errorf("PostgreSQL does not let the user connect to %s: GRANT CONNECT ON DATABASE to it: %s", target, msg)
		}
	}
	return fmt.Errorf("cannot connect to ChirpStack's PostgreSQL (%s): is it running and reachable from here? %s", target, msg)
}

// Close ends the connection.
func (r *Reader) Close(ctx context.Context) error { return r.conn.Close(ctx) }

// Target names the database, server and user (no password), for logs.
func (r *Reader) Target() string { return r.target }

// Check makes sure the database holds ChirpStack's event_up table, with
// its columns, and that the user may read it.
func (r *Reader) Check(ctx context.Context) error {
	var exists, readable bool
	err := r.conn.QueryRow(ctx, `SELECT to_regclass('event_up') IS NOT NULL,
		coalesce(has_table_privilege(to_regclass('event_up'), 'SELECT'), false)`).Scan(&exists, &readable)
	if err != nil {
		return r.queryError("check for table event_up", err)
	}
	if !exists {
		return fmt.Errorf("no table event_up in %s: is this ChirpStack's PostgreSQL integration database? (chirpstack.toml: integration.postgresql.dsn; ChirpStack creates the table when the integration is enabled)", r.target)
	}
	if !readable {
		return fmt.Errorf("%s may not read table event_up: GRANT SELECT ON event_up TO that user, or use the integration's own user", r.target)
	}
	rows, err := r.conn.Query(ctx, `SELECT attname FROM pg_attribute
		WHERE attrelid = to_regclass('event_up') AND attnum > 0 AND NOT attisdropped`)
	if err != nil {
		return r.queryError("read the columns of event_up", err)
	}
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return r.queryError("read the columns of event_up", err)
		}
		have[name] = true
	}
	if err := rows.Err(); err != nil {
		return r.queryError("read the columns of event_up", err)
	}
	var missing []string
	for _, c := range columns {
		if !have[c] {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("table event_up in %s lacks column(s) %s: it is not ChirpStack v4's PostgreSQL integration table", r.target, strings.Join(missing, ", "))
	}
	return nil
}

// Filter selects the rows to read: Since ≤ time < Until (a zero Until:
// no end), and one application when ApplicationID is set.
type Filter struct {
	Since, Until  time.Time
	ApplicationID string
}

// Position is how far a stream got: the rows handed over and the last
// one's key, so an interrupted backfill can say where to start again.
type Position struct {
	Rows     int64
	LastTime time.Time
	LastID   string
}

// Stream calls fn with each row of the filter, in (time,
// deduplication_id) order, and returns how far it got. The row is valid
// only during the call. An error of fn stops the stream and is returned
// as it is; ctx ends it too.
//
// The rows come through one cursor of a read-only REPEATABLE READ
// transaction: one snapshot, one scan and sort of the range however many
// rows it holds (ChirpStack's table has no index on time), and the client
// reads one row at a time, so memory is bounded by MaxRowBytes whatever
// the range.
func (r *Reader) Stream(ctx context.Context, f Filter, fn func(*Row) error) (Position, error) {
	var pos Position
	max := r.MaxRowBytes
	if max <= 0 {
		max = DefaultMaxRowBytes
	}
	until := f.Until
	if until.IsZero() {
		until = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	tx, err := r.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return pos, r.streamError(pos, "begin a read-only transaction", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only: nothing to keep
	if _, err := tx.Exec(ctx, "DECLARE sensorgate_backfill NO SCROLL CURSOR FOR "+selectRows, f.Since, until, f.ApplicationID, max); err != nil {
		return pos, r.streamError(pos, "select from event_up", err)
	}
	for {
		rows, err := tx.Query(ctx, "FETCH FORWARD 256 FROM sensorgate_backfill")
		if err != nil {
			return pos, r.streamError(pos, "read event_up", err)
		}
		n := 0
		for rows.Next() {
			n++
			var row Row
			if err := rows.Scan(row.targets()...); err != nil {
				rows.Close()
				return pos, r.streamError(pos, "read event_up", err)
			}
			row.TooLarge = row.Size > max
			if err := fn(&row); err != nil {
				rows.Close()
				return pos, err
			}
			pos.Rows++
			if row.Time != nil {
				pos.LastTime = *row.Time
			}
			pos.LastID = row.ID()
		}
		if err := rows.Err(); err != nil {
			return pos, r.streamError(pos, "read event_up", err)
		}
		if n == 0 {
			return pos, nil
		}
	}
}

// selectRows is the cursor's query: $1 since, $2 until, $3 application
// id or "", $4 the row bound. The size is summed over the variable-length
// columns as text, and their content is fetched only under the bound, so
// a hostile row cannot make the client hold it. Columns are cast to the
// types Row scans, which also reads a table whose types were changed by
// hand (json for jsonb, text for uuid).
const selectRows = `SELECT CASE WHEN size <= $4 THEN deduplication_id_t ELSE left(deduplication_id_t, 64) END, time,
	CASE WHEN size <= $4 THEN tenant_id::text END, CASE WHEN size <= $4 THEN tenant_name::text END,
	CASE WHEN size <= $4 THEN application_id::text END, CASE WHEN size <= $4 THEN application_name::text END,
	CASE WHEN size <= $4 THEN device_profile_id::text END, CASE WHEN size <= $4 THEN device_profile_name::text END,
	CASE WHEN size <= $4 THEN device_name::text END, CASE WHEN size <= $4 THEN dev_eui_t END,
	CASE WHEN size <= $4 THEN tags::text END, CASE WHEN size <= $4 THEN dev_addr::text END,
	adr, dr::bigint, f_cnt::bigint, f_port::bigint, confirmed,
	CASE WHEN size <= $4 THEN data END, CASE WHEN size <= $4 THEN object::text END,
	CASE WHEN size <= $4 THEN rx_info::text END, CASE WHEN size <= $4 THEN tx_info::text END,
	size
FROM (SELECT e.*, e.deduplication_id::text AS deduplication_id_t, e.dev_eui::text AS dev_eui_t,
	coalesce(octet_length(e.deduplication_id::text), 0) + coalesce(octet_length(e.tenant_id::text), 0) +
	coalesce(octet_length(e.tenant_name::text), 0) + coalesce(octet_length(e.application_id::text), 0) +
	coalesce(octet_length(e.application_name::text), 0) +
	coalesce(octet_length(e.device_profile_id::text), 0) + coalesce(octet_length(e.device_profile_name::text), 0) +
	coalesce(octet_length(e.device_name::text), 0) + coalesce(octet_length(e.dev_eui::text), 0) +
	coalesce(octet_length(e.tags::text), 0) + coalesce(octet_length(e.dev_addr::text), 0) +
	coalesce(octet_length(e.data), 0) + coalesce(octet_length(e.object::text), 0) +
	coalesce(octet_length(e.rx_info::text), 0) + coalesce(octet_length(e.tx_info::text), 0) AS size
	FROM event_up e
	WHERE e.time >= $1 AND e.time < $2 AND ($3 = '' OR e.application_id::text = $3)) s
ORDER BY time, deduplication_id_t`

// targets are the scan destinations of selectRows' columns.
func (r *Row) targets() []any {
	return []any{&r.DeduplicationID, &r.Time, &r.TenantID, &r.TenantName, &r.ApplicationID, &r.ApplicationName,
		&r.DeviceProfileID, &r.DeviceProfileName, &r.DeviceName, &r.DevEUI, &r.Tags, &r.DevAddr,
		&r.ADR, &r.DR, &r.FCnt, &r.FPort, &r.Confirmed, &r.Data, &r.Object, &r.RxInfo, &r.TxInfo, &r.Size}
}

// queryError words a failed query of the checks.
func (r *Reader) queryError(what string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42501" {
		return fmt.Errorf("%s may not %s: GRANT SELECT ON event_up TO that user: %w", r.target, what, err)
	}
	return fmt.Errorf("%s in %s: %w", what, r.target, err)
}

// streamError words an error while streaming: with the position, since
// the operator re-runs from there (re-writing rows already done is
// harmless).
func (r *Reader) streamError(pos Position, what string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42501" {
		return fmt.Errorf("%s may not %s: GRANT SELECT ON event_up TO that user: %w", r.target, what, err)
	}
	where := "before the first row"
	if pos.Rows > 0 {
		where = fmt.Sprintf("after %d rows (the last at %s): run the backfill again, --since %s at the latest (rows written twice overwrite themselves)",
			pos.Rows, pos.LastTime.UTC().Format(time.RFC3339Nano), pos.LastTime.UTC().Format(time.RFC3339Nano))
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stopped %s: %w", where, err)
	}
	if r.conn.IsClosed() || pgconn.SafeToRetry(err) || isConnLost(err) {
		return fmt.Errorf("lost the connection to ChirpStack's PostgreSQL (%s) %s: %w", r.target, where, err)
	}
	return fmt.Errorf("%s in %s failed %s: %w", what, r.target, where, err)
}

// isConnLost reports an error of a connection the server ended
// (admin_shutdown, crash_shutdown, cannot_connect_now, or the socket).
func isConnLost(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "57P") || strings.HasPrefix(pe.Code, "08")
	}
	return false
}

// RedactDSN is a DSN fit for a log or a message: the password of a
// postgres:// URL, or of a password= word, is replaced by xxxxx.
func RedactDSN(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			if u.User != nil {
				if _, ok := u.User.Password(); ok {
					u.User = url.UserPassword(u.User.Username(), "xxxxx")
				}
			}
			q := u.Query()
			if q.Has("password") {
				q.Set("password", "xxxxx")
				u.RawQuery = q.Encode()
			}
			return u.String()
		}
		// Unparsable: cut everything between the scheme and the last @.
		at := strings.LastIndexByte(dsn, '@')
		if at < 0 {
			return dsn
		}
		start := strings.Index(dsn, "://") + len("://")
		return dsn[:start] + "xxxxx" + dsn[at:]
	}
	return passwordWord.ReplaceAllString(dsn, "${1}xxxxx")
}

// passwordWord is a password= word of a key=value DSN, quoted or not.
var passwordWord = regexp.MustCompile(`(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)`)

// redactIn removes the DSN's password from a message, wherever a library
// might have put it.
func redactIn(msg, dsn string) string {
	// A password of a few characters would garble the message where it
	// matched by chance; pgx redacts DSNs itself, this is a second net.
	if pw := dsnPassword(dsn); len(pw) >= 4 {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
		if esc := url.QueryEscape(pw); esc != pw {
			msg = strings.ReplaceAll(msg, esc, "xxxxx")
		}
	}
	return msg
}

// dsnPassword is the DSN's password, "" when it has none or does not
// parse.
func dsnPassword(dsn string) string {
	if cfg, err := pgconn.ParseConfig(dsn); err == nil {
		return cfg.Password
	}
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		pw, _ := u.User.Password()
		return pw
	}
	if m := passwordWord.FindStringSubmatch(dsn); m != nil {
		return strings.Trim(m[2], "'")
	}
	return ""
}
