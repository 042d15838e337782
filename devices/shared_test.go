package devices

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/internal/testserver"
)

// propagation is the acceptance bound: a change through one instance is
// in effect on every other within it.
const propagation = 2 * time.Second

// await polls cond until it holds or propagation has passed.
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(propagation)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, propagation)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// syncBuffer is a log sink the listener goroutine writes to while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// twoInstances opens two stores on one new PostgreSQL database, as two
// daemons sharing a registry; both log to the returned buffer.
func twoInstances(t *testing.T) (a, b *Store, logs *syncBuffer, db storeDB) {
	t.Helper()
	db = newStoreDB(t, DriverPostgres)
	logs = &syncBuffer{}
	db.opts.Log = zerolog.New(logs)
	return db.open(t, nil), db.open(t, nil), logs, db
}

var sharedKeys = [...]Key{
	{0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0},
	{0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0},
}

func TestSharedRegistryChangesReachTheOtherInstance(t *testing.T) {
	ctx := context.Background()
	a, b, _, _ := twoInstances(t)
	e1, e2 := EUI{0x70, 1}, EUI{0x70, 2}
	abp := Device{EUI: e1, Name: "abp", Model: "cayenne-lpp", Tags: map[string]string{"site": "n"},
		Session: &Session{DevAddr: DevAddr{0x26, 1, 2, 3}, NwkSKey: sharedKeys[0], AppSKey: sharedKeys[1]}}

	// B sees the device of e2 as unknown until A adopts it.
	unknownOnB := NewUnknowns()
	unknownOnB.Observe(UnknownObservation{EUI: e2, Time: time.Unix(100, 0), Source: "cs", Name: "ns-name"})
	b.OnRemoteChange(func(euis []EUI) {
		for _, e := range euis {
			if _, ok := b.Registry().Lookup(e); ok {
				unknownOnB.Remove(e)
			}
		}
	})

	steps := []struct {
		name   string
		change func() error
		onB    func() bool
	}{
		{"create", func() error { return a.Create(ctx, abp) }, func() bool {
			d, ok := b.Registry().Lookup(e1)
			got, _ := b.Device(e1)
			return ok && SameDevice(*d, abp) && SameDevice(got, abp) && len(b.Registry().LookupDevAddr(abp.Session.DevAddr)) == 1
		}},
		{"update", func() error { return a.Update(ctx, Device{EUI: e1, Name: "abp-renamed", Model: "m2"}) }, func() bool {
			d, ok := b.Registry().LookupName("abp-renamed")
			_, old := b.Registry().LookupName("abp")
			return ok && d.Model == "m2" && !old && len(b.Registry().LookupDevAddr(abp.Session.DevAddr)) == 0
		}},
		{"adopt", func() error { return a.Adopt(ctx, Device{EUI: e2, Name: "adopted", Model: "m3"}, nil) }, func() bool {
			d, ok := b.Registry().Lookup(e2)
			_, unknown := unknownOnB.Get(e2)
			return ok && d.Model == "m3" && !unknown
		}},
		{"delete", func() error { return a.Delete(ctx, e1) }, func() bool {
			_, ok := b.Registry().Lookup(e1)
			return !ok && b.Len() == 1
		}},
		{"change on B reaches A", func() error { return b.Update(ctx, Device{EUI: e2, Name: "adopted", Model: "m4"}) }, func() bool {
			d, ok := a.Registry().Lookup(e2)
			return ok && d.Model == "m4"
		}},
		// More devices than one notification names: B re-reads them all.
		{"import", func() error {
			var devs []Device
			for i := range notifyMaxEUIs + 50 {
				devs = append(devs, Device{EUI: EUI{0x71, byte(i >> 8), byte(i)}, Name: fmt.Sprint("bulk-", i)})
			}
			_, _, err := a.Upsert(ctx, devs)
			return err
		}, func() bool {
			_, ok := b.Registry().LookupName(fmt.Sprint("bulk-", notifyMaxEUIs+49))
			return ok && b.Registry().Len() == notifyMaxEUIs+50+1
		}},
	}
	for _, st := range steps {
		if err := st.change(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		await(t, st.name, st.onB)
	}
}

func TestSharedRegistryChecksAgainstEveryInstance(t *testing.T) {
	ctx := context.Background()
	a, b, _, _ := twoInstances(t)
	if err := a.Create(ctx, Device{EUI: EUI{1}, Name: "x"}); err != nil {
		t.Fatal(err)
	}
	// Straight away, before B need have heard of it: B's change is
	// checked against the table, not against B's copy.
	for name, err := range map[string]error{
		"same EUI":  b.Create(ctx, Device{EUI: EUI{1}, Name: "other"}),
		"same name": b.Create(ctx, Device{EUI: EUI{2}, Name: "x"}),
	} {
		if !errors.Is(err, ErrConflict) {
			t.Errorf("%s on the other instance: err = %v, want ErrConflict", name, err)
		}
	}
	if d, _ := b.Device(EUI{1}); d.Name != "x" {
		t.Errorf("device on B: %+v", d)
	}
}

func TestSharedRegistryCatchesUpAfterLostListen(t *testing.T) {
	ctx := context.Background()
	a, b, logs, _ := twoInstances(t)
	admin, err := sql.Open("pgx", testserver.PostgresAdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	pid := b.shared.listenPID.Load()
	var ended bool
	if err := admin.QueryRowContext(ctx, "SELECT pg_terminate_backend($1)", int(pid)).Scan(&ended); err != nil || !ended {
		t.Fatalf("terminate B's listening connection %d: %v %v", pid, ended, err)
	}
	// Changed while B may not be listening: its notification can be lost,
	// the full re-read after the reconnect must bring it.
	if err := a.Create(ctx, Device{EUI: EUI{3}, Name: "while-down"}); err != nil {
		t.Fatal(err)
	}
	await(t, "B reconnected and caught up", func() bool {
		_, ok := b.Registry().Lookup(EUI{3})
		return ok && b.shared.reconnects.Load() >= 1 && b.shared.listenPID.Load() != pid
	})
	// And it listens again.
	if err := a.Create(ctx, Device{EUI: EUI{4}, Name: "after"}); err != nil {
		t.Fatal(err)
	}
	await(t, "B follows changes after the reconnect", func() bool {
		_, ok := b.Registry().Lookup(EUI{4})
		return ok
	})
	if !strings.Contains(logs.String(), "lost the connection") {
		t.Errorf("the lost connection was not logged:\n%s", logs.String())
	}
}

func TestSharedRegistryConcurrentMigrations(t *testing.T) {
	ctx := context.Background()
	db := newStoreDB(t, DriverPostgres)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	stores := make([]*Store, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = db.openErr(ctx, nil)
		}()
	}
	wg.Wait()
	for _, s := range stores {
		if s != nil {
			t.Cleanup(func() { s.Close() })
		}
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d of %d starting together: %v", i, n, err)
		}
	}
	rows, err := stores[0].db.QueryContext(ctx, "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	var want []int
	for v := 1; v <= schemaVersion; v++ {
		want = append(want, v)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("schema_migrations holds %v, want each version once: %v", got, want)
	}
	// Every instance works on the one schema.
	for i, s := range stores {
		if err := s.Create(ctx, Device{EUI: EUI{0x80, byte(i)}, Name: fmt.Sprint("m", i)}); err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
	await(t, "all instances see all devices", func() bool {
		for _, s := range stores {
			if s.Registry().Len() != n {
				return false
			}
		}
		return true
	})
}

func TestSharedRegistryNeverShowsKeysOrPassword(t *testing.T) {
	ctx := context.Background()
	a, b, logs, _ := twoInstances(t)
	d := Device{EUI: EUI{9}, Name: "k", Session: &Session{DevAddr: DevAddr{0x26, 9, 9, 9}, NwkSKey: sharedKeys[0], AppSKey: sharedKeys[1]}}
	var errs []error
	errs = append(errs, a.Create(ctx, d))
	errs = append(errs, b.Create(ctx, d))                                                   // conflict
	errs = append(errs, b.Create(ctx, Device{EUI: EUI{10}, Name: "k", Session: d.Session})) // conflict on the name
	bad := d
	bad.EUI, bad.Name, bad.Session = EUI{11}, "bad", &Session{DevAddr: DevAddr{1}, NwkSKey: sharedKeys[0]}
	errs = append(errs, a.Create(ctx, bad)) // invalid session
	await(t, "B has the device", func() bool { _, ok := b.Registry().Lookup(EUI{9}); return ok })
	got, _ := b.Device(EUI{9})
	if got.Session == nil || got.Session.NwkSKey != sharedKeys[0] || got.Session.AppSKey != sharedKeys[1] {
		t.Fatalf("keys did not come back as raw bytes on B: %v", got.Session)
	}
	// A wrong password must not show in the error either.
	_, err := Open(ctx, StoreOptions{Driver: DriverPostgres, DSN: "postgres://sg:s3cr3t-pw@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"}, nil)
	if err == nil {
		t.Fatal("opened a registry on a closed port")
	}
	errs = append(errs, err)
	var text strings.Builder
	text.WriteString(logs.String())
	for _, err := range errs {
		if err != nil {
			text.WriteString(err.Error() + "\n")
		}
	}
	text.WriteString(fmt.Sprintf("%v %+v %s", got, got, got.Session))
	all := strings.ToLower(text.String())
	for _, k := range sharedKeys {
		if h := fmt.Sprintf("%x", k[:]); strings.Contains(all, h) || strings.Contains(all, h[:8]) {
			t.Errorf("key %s... shows in logs or errors:\n%s", h[:4], all)
		}
	}
	if strings.Contains(all, "s3cr3t-pw") {
		t.Errorf("the DSN's password shows in an error:\n%s", all)
	}
}

// FuzzParseNotification: a NOTIFY payload comes from whoever can write to
// the database; anything but a list of EUIs asks for a full re-read.
func FuzzParseNotification(f *testing.F) {
	for _, s := range []string{"*", "", "0101010101010101", "0101010101010101,0202020202020202", "zz", strings.Repeat("0101010101010101,", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		euis, all := parseNotification(p)
		if all && euis != nil {
			t.Fatal("a full re-read with a list")
		}
		if !all && (len(euis) == 0 || len(euis) > notifyMaxEUIs) {
			t.Fatalf("%d EUIs from %q", len(euis), p)
		}
	})
}
