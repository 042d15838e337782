package chirpstackpg_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/chirpstackpg"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// liveSamples are the ChirpStack v4 uplink events of the shared feed
// corpus that ChirpStack ≥ 4.1 publishes as they are: with a time and
// every top-level field. The PostgreSQL integration cannot tell an
// omitted default from a zero (docs-example predates ChirpStack emitting
// fCnt 0) and keeps no joinServerContext (encrypted-join-server).
var liveSamples = []string{"field-realistic", "multi-gateway-object-upper", "cayenne-unix-time"}

func readSample(t *testing.T, name string) (topic string, body []byte) {
	t.Helper()
	base := filepath.Join("..", "..", "testdata", "feeds", "chirpstack-v4", name)
	body, err := os.ReadFile(base + ".json")
	if err != nil {
		t.Fatal(err)
	}
	tp, err := os.ReadFile(base + ".topic")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(tp)), body
}

func newParser(t testing.TB) *mqtt.Parser {
	t.Helper()
	p, err := mqtt.NewParser(mqtt.Config{Name: "cs", Format: mqtt.FormatChirpStackV4}, func() time.Time { return time.Unix(1e9, 0) })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// withoutRaw is an uplink as the pipeline uses it: Raw and Topic are
// the message's bytes and topic, which differ by construction.
func withoutRaw(up gateway.Uplink) gateway.Uplink {
	up.Raw, up.Topic = nil, ""
	return up
}

// TestStreamRebuildsTheLiveEvents stores uplink events in a real
// event_up table as ChirpStack's integration does, streams them back,
// and parses each rebuilt event with the chirpstack-v4 feed's parser:
// every uplink equals the live message's, field for field; the rows come
// in time order, the range's end is exclusive and the application
// filter holds.
func TestStreamRebuildsTheLiveEvents(t *testing.T) {
	dsn := testserver.ChirpStackIntegrationDB(t)
	p := newParser(t)
	live := map[string]gateway.Uplink{} // by deduplication id
	var events [][]byte
	add := func(topic string, body []byte) {
		up, err := p.Parse(topic, body)
		if err != nil {
			t.Fatalf("live message: %v", err)
		}
		live[up.ID] = withoutRaw(up)
		events = append(events, body)
	}
	for _, name := range liveSamples {
		add(readSample(t, name))
	}
	fleet, err := simulate.NewFleet(simulate.Options{Devices: 5, Seed: 3, Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	for range 600 { // more than one FETCH
		m := fleet.Next()
		add(m.Topic, m.Payload)
		last = m.Time
	}
	testserver.InsertChirpStackUplinks(t, dsn, events...)

	ctx := context.Background()
	r, err := chirpstackpg.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	if err := r.Check(ctx); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		filter chirpstackpg.Filter
		want   int
	}{
		{"everything", chirpstackpg.Filter{}, len(events)},
		{"until the last, exclusive", chirpstackpg.Filter{Until: last.Truncate(time.Microsecond)}, len(events) - 1},
		{"since the last", chirpstackpg.Filter{Since: last.Truncate(time.Microsecond)}, 1},
		{"one application", chirpstackpg.Filter{ApplicationID: "17c82e96-be03-4f38-aef3-f83d48582d97"}, 2}, // multi-gateway, cayenne-unix-time
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prev time.Time
			var buf []byte
			pos, err := r.Stream(ctx, tt.filter, func(row *chirpstackpg.Row) error {
				if row.Time.Before(prev) {
					t.Errorf("row %s at %s after one at %s", row.ID(), row.Time, prev)
				}
				prev = *row.Time
				ev, err := row.Event(buf[:0])
				if err != nil {
					return err
				}
				buf = ev
				up, err := p.ParseEvent("up", row.Topic(), ev)
				if err != nil {
					return fmt.Errorf("rebuilt event %s: %w\n%s", row.ID(), err, ev)
				}
				want, ok := live[up.ID]
				if !ok {
					return fmt.Errorf("row %s: no such live uplink", up.ID)
				}
				if got := withoutRaw(up); !reflect.DeepEqual(got, want) {
					t.Errorf("row %s parses as\n%+v\nthe live message as\n%+v\nevent %s", up.ID, got, want, ev)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if pos.Rows != int64(tt.want) {
				t.Fatalf("%d rows, want %d", pos.Rows, tt.want)
			}
		})
	}
}

// TestCheckSaysWhatIsWrong: each way of pointing the backfill at the
// wrong database gets an error that says what to fix, and no error ever
// holds the DSN's password.
func TestCheckSaysWhatIsWrong(t *testing.T) {
	const secret = "s3cret-Pw0rd"
	empty := testserver.PostgresDB(t)
	noColumns := testserver.PostgresDB(t)
	testserver.PostgresExec(t, noColumns, "CREATE TABLE event_up (deduplication_id uuid, time timestamptz)")
	locked := testserver.ChirpStackIntegrationDB(t)
	role := fmt.Sprintf("sg_noread_%d", time.Now().UnixNano()%1e9)
	testserver.PostgresAdminExec(t, "CREATE ROLE "+role+" LOGIN")
	t.Cleanup(func() { testserver.PostgresAdminExec(t, "DROP ROLE IF EXISTS "+role) })
	withUser := func(dsn, user string) string { return strings.Replace(dsn, "postgres@", user+":"+secret+"@", 1) }

	tests := []struct {
		name, dsn, want string
		connects        bool
	}{
		{"not a DSN", "postgres://u:" + secret + "@host:notaport/db", "does not parse", false},
		{"bad sslmode", "postgres://u:" + secret + "@127.0.0.1/db?sslmode=sometimes", "does not parse", false},
		{"key=value with password", "host=127.0.0.1 port=notaport password=" + secret, "does not parse", false},
		{"nothing listens", fmt.Sprintf("postgres://u:%s@127.0.0.1:%d/db?sslmode=disable", secret, testserver.FreePort(t)), "is it running and reachable", false},
		{"no such database", withUser(strings.Replace(empty, "/sg_test_", "/sg_none_", 1), "postgres"), "name ChirpStack's integration database", false},
		{"no such user", withUser(empty, "sg_nobody"), "check the DSN's user and password", false},
		{"no event_up", withUser(empty, "postgres"), "is this ChirpStack's PostgreSQL integration database?", true},
		{"not ChirpStack's columns", withUser(noColumns, "postgres"), "lacks column(s) tenant_id", true},
		{"may not read", withUser(locked, role), "GRANT SELECT ON event_up", true},
		{"may read", withUser(locked, role), "", true}, // after the GRANT below
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.want == "" {
				// SELECT on event_up is all the backfill needs.
				testserver.PostgresExec(t, locked, "GRANT SELECT ON event_up TO "+role)
				t.Cleanup(func() { testserver.PostgresExec(t, locked, "REVOKE SELECT ON event_up FROM "+role) })
			}
			r, err := chirpstackpg.Connect(ctx, tt.dsn)
			if err == nil {
				defer r.Close(ctx)
				if !tt.connects {
					t.Fatal("connected")
				}
				err = r.Check(ctx)
			} else if tt.connects {
				t.Fatalf("connect: %v", err)
			}
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := r.Stream(ctx, chirpstackpg.Filter{}, func(*chirpstackpg.Row) error { return nil }); err != nil {
					t.Fatalf("stream with SELECT granted: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

// hostileRows are rows no ChirpStack writes, in a table whose
// constraints and JSON types were loosened by hand: each is handed over
// with what is wrong with it, and the stream goes on to the good row
// after them.
func TestStreamHostileRows(t *testing.T) {
	dsn := testserver.ChirpStackIntegrationDB(t)
	var loosen []string
	for _, c := range []string{"time", "dev_eui", "data", "object", "rx_info", "tx_info", "tags", "device_name", "f_cnt", "f_port"} {
		loosen = append(loosen, "ALTER TABLE event_up ALTER COLUMN "+c+" DROP NOT NULL")
	}
	loosen = append(loosen, "ALTER TABLE event_up ALTER COLUMN object TYPE text", "ALTER TABLE event_up ALTER COLUMN rx_info TYPE text")
	testserver.PostgresExec(t, dsn, strings.Join(loosen, ";\n"))
	_, good := readSample(t, "field-realistic")
	testserver.InsertChirpStackUplinks(t, dsn, good)
	base := `INSERT INTO event_up SELECT %s::uuid, time - interval '%d second', tenant_id, tenant_name, application_id, application_name,
		device_profile_id, device_profile_name, device_name, dev_eui, tags, dev_addr, adr, dr, f_cnt, f_port, confirmed, data, object,
		rx_info, tx_info FROM event_up WHERE deduplication_id = '57433366-50a6-4dc2-8145-2df1bbc70d9e'`
	hostile := []struct {
		id, set, column, problem string
	}{
		{"10000000-0000-4000-8000-000000000001", "dev_eui = NULL", "dev_eui", "is NULL"},
		{"10000000-0000-4000-8000-000000000002", "data = NULL", "data", "is NULL"},
		{"10000000-0000-4000-8000-000000000003", `object = '{"temperature": 21.5,'`, "object", "holds no valid JSON"},
		{"10000000-0000-4000-8000-000000000004", `rx_info = '[{"gatewayId": "0016c001f153a14c", "rssi": -3'`, "rx_info", "holds no valid JSON"},
		{"10000000-0000-4000-8000-000000000005", "data = decode(repeat('ab', 300000), 'hex')", "", "over the bound"},
		{"10000000-0000-4000-8000-000000000006", "device_name = repeat('x', 200000)", "", "over the bound"},
	}
	var stmts []string
	for i, h := range hostile {
		stmts = append(stmts, fmt.Sprintf(base, "'"+h.id+"'", len(hostile)-i),
			fmt.Sprintf("UPDATE event_up SET %s WHERE deduplication_id = '%s'", h.set, h.id))
	}
	// NULLs where an event may leave the field out: still an event.
	stmts = append(stmts, fmt.Sprintf(base, "'10000000-0000-4000-8000-000000000007'", 0),
		"UPDATE event_up SET object = NULL, tx_info = NULL, tags = NULL, device_name = NULL, f_cnt = NULL, f_port = NULL WHERE deduplication_id = '10000000-0000-4000-8000-000000000007'")
	// A NULL time is in no range: never read (docs/backfill.md).
	stmts = append(stmts, fmt.Sprintf(base, "'10000000-0000-4000-8000-000000000008'", 0),
		"UPDATE event_up SET time = NULL WHERE deduplication_id = '10000000-0000-4000-8000-000000000008'")
	testserver.PostgresExec(t, dsn, strings.Join(stmts, ";\n"))

	ctx := context.Background()
	r, err := chirpstackpg.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	r.MaxRowBytes = 64 << 10
	p := newParser(t)
	got := map[string]string{}
	_, err = r.Stream(ctx, chirpstackpg.Filter{}, func(row *chirpstackpg.Row) error {
		if row.TooLarge && (row.Data != nil || row.DeviceName != nil) {
			t.Errorf("row %s over the bound was fetched", row.ID())
		}
		ev, err := row.Event(nil)
		var re *chirpstackpg.RowError
		switch {
		case errors.As(err, &re):
			got[row.ID()] = re.Column + ": " + re.Problem
			if !row.TooLarge && !jsonValid(ev) {
				t.Errorf("row %s: the dead letter's event is not JSON: %s", row.ID(), ev)
			}
		case err != nil:
			return err
		default:
			if _, err := p.ParseEvent("up", row.Topic(), ev); err != nil {
				got[row.ID()] = "parse: " + err.Error()
			} else {
				got[row.ID()] = "ok"
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hostile {
		if g := got[h.id]; !strings.HasPrefix(g, h.column+": ") || !strings.Contains(g, h.problem) {
			t.Errorf("row %s (%s): %q, want column %q %q", h.id, h.set, g, h.column, h.problem)
		}
	}
	if g := got["10000000-0000-4000-8000-000000000007"]; g != "ok" {
		t.Errorf("row with optional columns NULL: %s", g)
	}
	if g := got["57433366-50a6-4dc2-8145-2df1bbc70d9e"]; g != "ok" {
		t.Errorf("the good row: %s", g)
	}
	if len(got) != len(hostile)+2 {
		t.Errorf("%d rows streamed, want %d: %v", len(got), len(hostile)+2, got)
	}
}

// TestStreamConnectionLost: PostgreSQL ends the connection in the middle
// of a stream (the server's administrator, a restart, a failover): the
// error says so and where to start again, and a new stream reads every
// row.
func TestStreamConnectionLost(t *testing.T) {
	dsn := testserver.ChirpStackIntegrationDB(t)
	fleet, err := simulate.NewFleet(simulate.Options{Devices: 3, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1500
	var events [][]byte
	for range n {
		events = append(events, fleet.Next().Payload)
	}
	testserver.InsertChirpStackUplinks(t, dsn, events...)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	ctx := context.Background()
	r, err := chirpstackpg.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	handed := 0
	pos, err := r.Stream(ctx, chirpstackpg.Filter{}, func(*chirpstackpg.Row) error {
		if handed++; handed == 300 {
			testserver.PostgresAdminExec(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sensorgate-backfill' AND datname = '"+db+"'")
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "lost the connection") || !strings.Contains(err.Error(), "run the backfill again, --since") {
		t.Fatalf("stream after the server ended the connection: %v", err)
	}
	if pos.Rows < 300 || pos.Rows >= n {
		t.Fatalf("stopped after %d rows", pos.Rows)
	}
	r2, err := chirpstackpg.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close(ctx)
	pos, err = r2.Stream(ctx, chirpstackpg.Filter{}, func(*chirpstackpg.Row) error { return nil })
	if err != nil || pos.Rows != n {
		t.Fatalf("re-run: %d rows, %v; want %d", pos.Rows, err, n)
	}
}

// TestStreamCancelled: a cancelled context ends the stream with its
// error.
func TestStreamCancelled(t *testing.T) {
	dsn := testserver.ChirpStackIntegrationDB(t)
	fleet, err := simulate.NewFleet(simulate.Options{Devices: 3, Seed: 6})
	if err != nil {
		t.Fatal(err)
	}
	var events [][]byte
	for range 600 {
		events = append(events, fleet.Next().Payload)
	}
	testserver.InsertChirpStackUplinks(t, dsn, events...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := chirpstackpg.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	n := 0
	_, err = r.Stream(ctx, chirpstackpg.Filter{}, func(*chirpstackpg.Row) error {
		if n++; n == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "run the backfill again, --since") {
		t.Fatalf("stream with a cancelled context: %v", err)
	}
	if n >= 600 {
		t.Fatalf("read all %d rows after the cancel", n)
	}
}

func TestRedactDSN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://chirpstack:hunter22@db:5432/chirpstack_integration?sslmode=disable", "postgres://chirpstack:xxxxx@db:5432/chirpstack_integration?sslmode=disable"},
		{"postgresql://cs@db/int", "postgresql://cs@db/int"},
		{"postgres://db/int?password=hunter22&sslmode=require", "postgres://db/int?password=xxxxx&sslmode=require"},
		{"postgres://u:hun%zzter@db/x", "postgres://xxxxx@db/x"},
		{"host=db user=cs password=hunter22 dbname=int", "host=db user=cs password=xxxxx dbname=int"},
		{"host=db password='hunter 22' dbname=int", "host=db password=xxxxx dbname=int"},
		{"host=db dbname=int", "host=db dbname=int"},
	}
	for _, tt := range tests {
		if got := chirpstackpg.RedactDSN(tt.in); got != tt.want {
			t.Errorf("RedactDSN(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func jsonValid(b []byte) bool { return json.Valid(b) }

// TestEventCannotTellOmittedDefaults: the table keeps 0 where an event of
// ChirpStack before 4.1 left fCnt out, so the rebuilt event carries
// fCnt 0 (docs/backfill.md, Limits).
func TestEventCannotTellOmittedDefaults(t *testing.T) {
	id, eui, at, zero, data := "3ac7e3c4-4401-4b8d-9386-a5c902f9202d", "0101010101010101", time.Unix(1658136855, 775023000).UTC(), int64(0), []byte{0xaa}
	row := chirpstackpg.Row{DeduplicationID: &id, DevEUI: &eui, Time: &at, FCnt: &zero, Data: &data}
	ev, err := row.Event(nil)
	if err != nil {
		t.Fatal(err)
	}
	up, err := newParser(t).ParseEvent("up", row.Topic(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if !up.HasFCnt || up.FCnt != 0 {
		t.Fatalf("fCnt %d (present %v), want 0, present", up.FCnt, up.HasFCnt)
	}
}
