package influx

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/internal/testserver"
)

// TestQueryAndExec against a real InfluxDB 1.8: reads come back with
// nanosecond times and integers apart from floats, through both write
// APIs' settings; deletes take effect; a refused statement wraps
// ErrQuery with InfluxDB's reason; a server that is gone says so.
func TestQueryAndExec(t *testing.T) {
	db := testserver.StartInfluxDB(t)
	ctx := context.Background()
	for _, cfg := range []Config{
		{URL: db.URL(), Bucket: db.Bucket()},
		{Version: V1, URL: db.URL(), Database: db.DB},
	} {
		c, err := New(cfg, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Exec(ctx, `DELETE FROM "m"`); err != nil {
			t.Fatalf("delete from nothing: %v", err)
		}
		writeLines(t, db, "m,dev_eui=a i=3i,f=1.5 1000000000000000001", "m,dev_eui=b i=4i,f=2 1000000000000000002")
		series, err := c.Query(ctx, `SELECT "i", "f" FROM "m" GROUP BY "dev_eui"`)
		if err != nil {
			t.Fatal(err)
		}
		if len(series) != 2 || series[0].Tags["dev_eui"] != "a" || series[0].Values[0][0] != json.Number("1000000000000000001") ||
			series[0].Values[0][1] != json.Number("3") || series[0].Values[0][2] != json.Number("1.5") {
			t.Fatalf("version %d: %+v", cfg.Version, series)
		}
		if err := c.Exec(ctx, `DELETE FROM "m" WHERE "dev_eui" = 'a'; DELETE FROM "m" WHERE time > 1000000000000000001`); err != nil {
			t.Fatal(err)
		}
		if series, err := c.Query(ctx, `SELECT * FROM "m"`); err != nil || len(series) != 0 {
			t.Fatalf("after the deletes: %+v, %v", series, err)
		}
		_, err = c.Query(ctx, `SELECT FROM WHERE`)
		if !errors.Is(err, ErrQuery) || !strings.Contains(err.Error(), "error parsing query") {
			t.Fatalf("a bad statement: %v", err)
		}
	}
	c, err := New(Config{URL: db.URL(), Bucket: "nosuchdb/autogen"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Query(ctx, `SELECT * FROM "m"`); !errors.Is(err, ErrQuery) || !strings.Contains(err.Error(), "database not found") {
		t.Fatalf("a missing database: %v", err)
	}
	db.Stop()
	if _, err := c.Query(ctx, `SHOW MEASUREMENTS`); err == nil || errors.Is(err, ErrQuery) || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("a stopped server: %v", err)
	}
}

// writeLines writes line protocol straight into the test database.
func writeLines(t *testing.T, db *testserver.InfluxDB, lines ...string) {
	t.Helper()
	resp, err := http.Post(db.URL()+"/write?db="+db.DB+"&precision=ns", "text/plain", strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %s", resp.Status)
	}
}

// TestQueryWithAuth: on an InfluxDB with authentication, reads and
// deletes carry the write settings' credentials (a version 2 token
// "user:password", version 1 basic authentication), and wrong ones are
// refused with a hint.
func TestQueryWithAuth(t *testing.T) {
	db := testserver.StartInfluxDB(t, testserver.Auth("admin", "adm-pw"))
	ctx := context.Background()
	for _, cfg := range []Config{
		{URL: db.URL(), Bucket: db.Bucket(), Token: "admin:adm-pw"},
		{Version: V1, URL: db.URL(), Database: db.DB, Username: "admin", Password: "adm-pw"},
	} {
		c, err := New(cfg, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Query(ctx, `SHOW MEASUREMENTS`); err != nil {
			t.Errorf("version %d: %v", cfg.Version, err)
		}
		if err := c.Exec(ctx, `DELETE FROM "m"`); err != nil {
			t.Errorf("version %d: %v", cfg.Version, err)
		}
	}
	c, err := New(Config{URL: db.URL(), Bucket: db.Bucket(), Token: "admin:wrong"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Query(ctx, `SHOW MEASUREMENTS`); !errors.Is(err, ErrQuery) || !strings.Contains(err.Error(), "refuses the credentials") {
		t.Fatalf("wrong credentials: %v", err)
	}
}
