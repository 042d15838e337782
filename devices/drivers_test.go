package devices

import (
	"context"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/internal/testserver"
)

// storeDB is one empty registry database of a driver; open and openErr
// open it (again) as the daemon would.
type storeDB struct {
	driver string
	opts   StoreOptions
}

var drivers = []string{DriverSQLite, DriverPostgres}

// forEachDriver runs fn as a subtest per driver, each on a new database:
// the store behaves the same on SQLite and PostgreSQL.
func forEachDriver(t *testing.T, fn func(t *testing.T, db storeDB)) {
	for _, drv := range drivers {
		t.Run(drv, func(t *testing.T) { fn(t, newStoreDB(t, drv)) })
	}
}

func newStoreDB(t testing.TB, driver string) storeDB {
	t.Helper()
	o := StoreOptions{Driver: driver, StateDir: t.TempDir(), Log: zerolog.New(zerolog.NewTestWriter(t))}
	if driver == DriverPostgres {
		o.DSN = testserver.PostgresDB(t)
	}
	return storeDB{driver: driver, opts: o}
}

func (db storeDB) openErr(ctx context.Context, reg *Registry) (*Store, error) {
	return Open(ctx, db.opts, reg)
}

func (db storeDB) open(t testing.TB, reg *Registry) *Store {
	t.Helper()
	s, err := db.openErr(context.Background(), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
