package devices

import (
	"context"
	"testing"
)

func TestDialectRewrites(t *testing.T) {
	tests := []struct{ in, want string }{
		{"SELECT state FROM health WHERE dev_eui = ?", "SELECT state FROM health WHERE dev_eui = $1"},
		{"INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
			"INSERT INTO meta(key, value) VALUES($1, $2) ON CONFLICT(key) DO UPDATE SET value = excluded.value"},
		{"SELECT '?' || x FROM t WHERE a = ? AND b = 'it''s ?' AND c = ?", "SELECT '?' || x FROM t WHERE a = $1 AND b = 'it''s ?' AND c = $2"},
		{"INSERT OR REPLACE INTO health (dev_eui, state) VALUES (?, ?)",
			"INSERT INTO health (dev_eui, state) VALUES ($1, $2) ON CONFLICT (dev_eui) DO UPDATE SET state = EXCLUDED.state"},
		{"INSERT OR REPLACE INTO unknown_series (source, dev_eui) VALUES (?, ?)",
			"INSERT INTO unknown_series (source, dev_eui) VALUES ($1, $2) ON CONFLICT (source, dev_eui) DO NOTHING"},
		{"INSERT OR IGNORE INTO unknown_series (source, dev_eui) VALUES (?, ?)",
			"INSERT INTO unknown_series (source, dev_eui) VALUES ($1, $2) ON CONFLICT DO NOTHING"},
		{"CREATE TABLE x (k BLOB, t INTEGER NOT NULL)", "CREATE TABLE x (k BYTEA, t BIGINT NOT NULL)"},
	}
	pg := &dialect{pg: true}
	for _, tt := range tests {
		if got := pg.q(tt.in); got != tt.want {
			t.Errorf("q(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
		if got := (&dialect{}).q(tt.in); got != tt.in {
			t.Errorf("SQLite changed %q to %q", tt.in, got)
		}
	}
}

// The state tables' statements, as the health and unknown-device code
// writes them in SQLite's spelling, run on both databases: saved twice,
// the second wins; ignored twice, one row.
func TestDialectStateStatementsRun(t *testing.T) {
	forEachDriver(t, func(t *testing.T, db storeDB) {
		ctx := context.Background()
		s := db.open(t, nil)
		for _, st := range []string{"first", "second"} {
			if _, err := s.db.ExecContext(ctx, "INSERT OR REPLACE INTO health (dev_eui, state) VALUES (?, ?)", "0101010101010101", st); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.loadStates(ctx, "health")
		if err != nil || string(got[EUI{1, 1, 1, 1, 1, 1, 1, 1}]) != "second" || len(got) != 1 {
			t.Fatalf("health after two saves: %q %v", got, err)
		}
		if _, err := s.db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS unknown_series (source TEXT NOT NULL, dev_eui TEXT NOT NULL, PRIMARY KEY (source, dev_eui))"); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := s.db.ExecContext(ctx, "INSERT OR IGNORE INTO unknown_series (source, dev_eui) VALUES (?, ?)", "cs", "0101010101010101"); err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM unknown_series").Scan(&n); err != nil || n != 1 {
			t.Fatalf("unknown_series rows %d %v", n, err)
		}
	})
}
