package devices

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func openTestStore(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), StoreFileName)
	s, err := OpenStore(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// reopenTestStore closes s, as a stopping daemon does, and opens its file
// again, for tests of what a restart finds.
func reopenTestStore(t *testing.T, s *Store, path string) *Store {
	t.Helper()
	s.Close()
	s2, err := OpenStore(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	return s2
}

func TestStoreCRUDPersistsAndFollowsRegistry(t *testing.T) {
	forEachDriver(t, func(t *testing.T, db storeDB) {
		ctx := context.Background()
		s := db.open(t, nil)
		a, b := mustParse(t, "0101010101010101"), mustParse(t, "0202020202020202")
		abp := Device{EUI: b, Name: "abp", Model: "cayenne-lpp", Tags: map[string]string{"site": "north"},
			Variables: map[string]string{"k": "v"},
			Session:   &Session{DevAddr: DevAddr{0x26, 1, 2, 3}, NwkSKey: Key{1, 2, 3}, AppSKey: Key{4, 5, 6}}}
		if err := s.Create(ctx, Device{EUI: a}); err != nil {
			t.Fatal(err)
		}
		if err := s.Create(ctx, abp); err != nil {
			t.Fatal(err)
		}
		if d, ok := s.Registry().Lookup(a); !ok || d.Name != a.String() {
			t.Fatalf("registry after Create: %+v %v (a device without a name is named by its EUI)", d, ok)
		}
		for name, err := range map[string]error{
			"create existing EUI":  s.Create(ctx, Device{EUI: a, Name: "other"}),
			"create taken name":    s.Create(ctx, Device{EUI: EUI{9}, Name: "abp"}),
			"update to taken name": s.Update(ctx, Device{EUI: a, Name: "abp"}),
		} {
			if !errors.Is(err, ErrConflict) {
				t.Errorf("%s: err = %v, want ErrConflict", name, err)
			}
		}
		if err := s.Update(ctx, Device{EUI: EUI{7}, Name: "x"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("update missing: %v", err)
		}
		if err := s.Delete(ctx, EUI{7}); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete missing: %v", err)
		}
		if err := s.Update(ctx, Device{EUI: a, Name: "renamed", Model: "m"}); err != nil {
			t.Fatal(err)
		}
		if _, ok := s.Registry().LookupName(a.String()); ok {
			t.Error("old name still in the registry")
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		// Reopen: the devices, including raw session keys, come back.
		reg := &Registry{}
		s2, err := db.openErr(ctx, reg)
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		if reg.Len() != 2 {
			t.Fatalf("reopened registry has %d devices", reg.Len())
		}
		got, _ := s2.Device(b)
		if !SameDevice(got, abp) {
			t.Fatalf("reopened %+v, want %+v", got, abp)
		}
		if d, _ := reg.LookupName("renamed"); d == nil || d.Model != "m" {
			t.Fatalf("renamed device: %+v", d)
		}
		if err := s2.Delete(ctx, a); err != nil {
			t.Fatal(err)
		}
		if _, ok := reg.Lookup(a); ok {
			t.Error("deleted device still in the registry")
		}
		if db.driver == DriverSQLite {
			path := filepath.Join(db.opts.StateDir, StoreFileName)
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("registry file mode %v (%v): it holds session keys, want 0600", fi.Mode(), err)
			}
		}
	})
}

func TestStoreInvalidSessionChangesNothing(t *testing.T) {
	forEachDriver(t, func(t *testing.T, db storeDB) {
		s := db.open(t, nil)
		bad := Device{EUI: EUI{1}, Name: "x", Session: &Session{DevAddr: DevAddr{1}, NwkSKey: Key{1}}}
		if err := s.Create(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "app_s_key is missing") {
			t.Fatalf("err = %v", err)
		}
		if s.Len() != 0 || s.Registry().Len() != 0 {
			t.Fatal("a refused change left a device behind")
		}
	})
}

func TestStoreSwapNames(t *testing.T) {
	forEachDriver(t, func(t *testing.T, db storeDB) {
		ctx := context.Background()
		s := db.open(t, nil)
		a, b := EUI{1}, EUI{2}
		if _, _, err := s.Upsert(ctx, []Device{{EUI: a, Name: "x"}, {EUI: b, Name: "y"}}); err != nil {
			t.Fatal(err)
		}
		// Two devices trading names in one import must not trip the unique
		// index half way.
		created, updated, err := s.Upsert(ctx, []Device{{EUI: a, Name: "y"}, {EUI: b, Name: "x"}})
		if err != nil || created != 0 || updated != 2 {
			t.Fatalf("swap: created %d updated %d err %v", created, updated, err)
		}
		if d, _ := s.Registry().LookupName("x"); d.EUI != b {
			t.Fatalf("x is %v", d.EUI)
		}
	})
}

func TestStoreImportFileOnlyWhenChanged(t *testing.T) {
	forEachDriver(t, func(t *testing.T, db storeDB) {
		ctx := context.Background()
		s := db.open(t, nil)
		file := filepath.Join(t.TempDir(), "devices.csv")
		write := func(body string) {
			if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write("dev_eui,name\n0101010101010101,a\n0202020202020202,b\n")
		imported, created, _, err := s.ImportFile(ctx, file)
		if err != nil || !imported || created != 2 {
			t.Fatalf("first import: %v %d %v", imported, created, err)
		}
		// An API edit survives a restart while the file is unchanged.
		if err := s.Update(ctx, Device{EUI: mustParse(t, "0101010101010101"), Name: "a-edited"}); err != nil {
			t.Fatal(err)
		}
		if imported, _, _, err := s.ImportFile(ctx, file); err != nil || imported {
			t.Fatalf("unchanged file imported again: %v %v", imported, err)
		}
		if _, ok := s.Registry().LookupName("a-edited"); !ok {
			t.Fatal("the API edit was lost")
		}
		// An edited file wins for the devices it lists.
		write("dev_eui,name\n0101010101010101,a\n0202020202020202,b\n0303030303030303,c\n")
		imported, created, updated, err := s.ImportFile(ctx, file)
		if err != nil || !imported || created != 1 || updated != 1 {
			t.Fatalf("changed file: imported %v created %d updated %d err %v", imported, created, updated, err)
		}
	})
}

func TestStoreAdopt(t *testing.T) {
	forEachDriver(t, func(t *testing.T, db storeDB) {
		ctx := context.Background()
		s := db.open(t, nil)
		u := NewUnknowns()
		e := EUI{5}
		u.Observe(UnknownObservation{EUI: e, Time: time.Unix(100, 0), Source: "cs", Name: "ns-name", Payload: []byte{1, 2}})
		if err := s.SaveUnknowns(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := s.Adopt(ctx, Device{EUI: e, Name: "adopted"}, u); err != nil {
			t.Fatal(err)
		}
		if _, ok := u.Get(e); ok {
			t.Fatal("adopted device still listed as unknown")
		}
		if err := s.Adopt(ctx, Device{EUI: e, Name: "again"}, u); !errors.Is(err, ErrConflict) {
			t.Fatalf("adopting twice: %v", err)
		}
		s.Close()
		s2, err := db.openErr(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		u2 := NewUnknowns()
		if err := s2.LoadUnknowns(ctx, u2); err != nil || len(u2.List()) != 0 {
			t.Fatalf("after adoption the unknown list holds %v (%v)", u2.List(), err)
		}
	})
}

// bulkCSV builds an n-device CSV in The Things Stack's dialect.
func bulkCSV(n int) string {
	var b strings.Builder
	b.WriteString("id;dev_eui;join_eui;name;brand_id;model_id;app_key;tags\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "dev-%05d;%016x;70b3d57ed0000000;Sensor %d;milesight;em310-udl;%032x;site=s%d|district=d%d\n", i, 0x0004a30b00000000+i+1, i, i+1, i%50, i%7)
	}
	return b.String()
}

func knownModels(m string) bool { return m == "milesight-em310-udl" || m == "cayenne-lpp" }

func TestImport10000(t *testing.T) {
	forEachDriver(t, func(t *testing.T, db storeDB) {
		ctx := context.Background()
		s := db.open(t, nil)
		start := time.Now()
		rep, err := s.Import(ctx, strings.NewReader(bulkCSV(10000)), BulkCSV, knownModels, false)
		elapsed := time.Since(start)
		if err != nil || !rep.Applied || rep.Created != 10000 || rep.Invalid != 0 {
			t.Fatalf("import: %v applied %v created %d invalid %d", err, rep.Applied, rep.Created, rep.Invalid)
		}
		t.Logf("import of 10,000 devices into %s: %v", db.driver, elapsed)
		if d, ok := s.Registry().LookupName("Sensor 42"); !ok || d.Model != "milesight-em310-udl" || d.Tags["site"] != "s42" {
			t.Fatalf("Sensor 42: %+v", d)
		}

		// Again, unchanged: nothing to write.
		start = time.Now()
		rep, err = s.Import(ctx, strings.NewReader(bulkCSV(10000)), BulkCSV, knownModels, false)
		if err != nil || rep.Unchanged != 10000 {
			t.Fatalf("re-import: %v, unchanged %d", err, rep.Unchanged)
		}
		t.Logf("re-import of 10,000 unchanged devices: %v", time.Since(start))
	})
}

func TestImportAllOrNothing(t *testing.T) {
	forEachDriver(t, func(t *testing.T, db storeDB) {
		ctx := context.Background()
		s := db.open(t, nil)
		if _, _, err := s.Upsert(ctx, []Device{{EUI: EUI{0xee, 1}, Name: "existing"}}); err != nil {
			t.Fatal(err)
		}
		text := bulkCSV(10000)
		// One bad row in the middle: an EUI with a typo.
		lines := strings.Split(text, "\n")
		lines[5000] = strings.Replace(lines[5000], ";0004a30b", ";0004a30x", 1)
		rep, err := s.Import(ctx, strings.NewReader(strings.Join(lines, "\n")), BulkCSV, knownModels, false)
		if err != nil {
			t.Fatal(err)
		}
		// Every row warns of its app_key; the one with a problem is
		// listed first, warnings fill the rest of the bounded list.
		bad := slices.IndexFunc(rep.Rows, func(r Row) bool { return len(r.Problems) > 0 })
		if rep.Applied || rep.Invalid != 1 || rep.Warned != 10000 || len(rep.Rows) != MaxReportRows || rep.RowsOmitted != 10000-MaxReportRows ||
			bad < 0 || rep.Rows[bad].Line != 5001 || len(rep.Rows[bad].Problems) != 1 {
			t.Fatalf("applied %v invalid %d warned %d listed %d omitted %d, bad row %d", rep.Applied, rep.Invalid, rep.Warned, len(rep.Rows), rep.RowsOmitted, bad)
		}
		if s.Len() != 1 || s.Registry().Len() != 1 {
			t.Fatalf("a refused import left %d devices (registry %d)", s.Len(), s.Registry().Len())
		}
		s.Close()
		s2, err := db.openErr(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		if s2.Len() != 1 {
			t.Fatalf("on disk: %d devices after a refused import", s2.Len())
		}
	})
}

func TestImportReport(t *testing.T) {
	forEachDriver(t, func(t *testing.T, db storeDB) {
		ctx := context.Background()
		s := db.open(t, nil)
		if _, _, err := s.Upsert(ctx, []Device{{EUI: EUI{0xee, 1}, Name: "taken"}, {EUI: EUI{0xee, 2}, Name: "same"}}); err != nil {
			t.Fatal(err)
		}
		csv := "dev_eui,name,model,dev_addr,nwk_s_key,app_s_key,app_key\n" +
			"0101010101010101,ok,cayenne-lpp,,,,\n" +
			"zz01010101010101,bad-eui,,,,,\n" +
			"0101010101010101,dup-eui,,,,,\n" +
			"0202020202020202,ok,,,,,\n" +
			"0303030303030303,no-model,acme-nothing,,,,\n" +
			"0404040404040404,short-key,,26011bda,0102,100f0e0d0c0b0a090807060504030201,\n" +
			"0505050505050505,taken,,,,,\n" +
			"ee02000000000000,same,,,,,\n" +
			"0606060606060606,bad-app-key,,,,,abcd\n" +
			"0707070707070707,with-app-key,,,,,0102030405060708090a0b0c0d0e0f10\n"
		rep, err := s.Import(ctx, strings.NewReader(csv), BulkCSV, knownModels, true)
		if err != nil {
			t.Fatal(err)
		}
		// Rows without problems or warnings are counted, not listed.
		want := []struct {
			line            int
			action, problem string
		}{
			{3, "", "invalid EUI"},
			{4, "", "duplicate: dev_eui 0101010101010101 is also on line 2"},
			{5, "", `duplicate: name "ok" is also on line 2`},
			{6, "", `unknown model "acme-nothing"`},
			{7, "", "nwk_s_key: devices: invalid key: want 32 hex digits, have 4 characters"},
			{8, "", `name "taken" belongs to registered device ee01000000000000`},
			{10, "", "app_key"},
			{11, ActionCreate, ""},
		}
		if len(rep.Rows) != len(want) {
			t.Fatalf("%d rows, want %d", len(rep.Rows), len(want))
		}
		for i, w := range want {
			r := rep.Rows[i]
			if r.Line != w.line || r.Action != w.action || (w.problem == "") != (len(r.Problems) == 0) ||
				(w.problem != "" && !strings.Contains(strings.Join(r.Problems, "; "), w.problem)) {
				t.Errorf("line %d: action %q problems %q, want %q %q", r.Line, r.Action, r.Problems, w.action, w.problem)
			}
			if strings.Contains(strings.Join(r.Problems, " "), "0102030405060708") {
				t.Errorf("line %d echoes a key: %v", r.Line, r.Problems)
			}
		}
		if len(rep.Rows[7].Warnings) != 1 {
			t.Errorf("app_key warning missing: %+v", rep.Rows[7])
		}
		if !rep.DryRun || rep.Applied || rep.Invalid != 7 || rep.Created != 2 || rep.Unchanged != 1 || rep.Total != 10 || rep.Warned != 1 || rep.RowsOmitted != 0 {
			t.Errorf("report %+v", rep)
		}
		if s.Len() != 2 {
			t.Errorf("dry run changed the store")
		}
	})
}

func TestParseBulkYAML(t *testing.T) {
	y := `devices:
  - dev_eui: "0101010101010101"
    name: a
    tags: {site: north}
  - dev_eui: nope
    name: b
  - dev_eui: "0303030303030303"
    nmae: typo
`
	rows, err := ParseBulk([]byte(y), BulkYAML)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0].Line != 2 || len(rows[0].Problems) != 0 || rows[0].Device.Tags["site"] != "north" {
		t.Fatalf("row 0: %+v", rows[0])
	}
	if rows[1].Line != 5 || len(rows[1].Problems) != 1 || !strings.Contains(rows[1].Problems[0], "invalid EUI") {
		t.Errorf("row 1: %+v", rows[1])
	}
	if len(rows[2].Problems) != 1 || !strings.Contains(rows[2].Problems[0], "nmae") {
		t.Errorf("row 2: %+v", rows[2])
	}
	// JSON is YAML.
	rows, err = ParseBulk([]byte(`[{"dev_eui":"0101010101010101","name":"j","model":"cayenne-lpp"}]`), BulkYAML)
	if err != nil || len(rows) != 1 || rows[0].Device.Model != "cayenne-lpp" {
		t.Fatalf("json: %+v %v", rows, err)
	}
	for _, bad := range []string{"other: 1\n", "devices: 3\n", "[: nope"} {
		if _, err := ParseBulk([]byte(bad), BulkYAML); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseBulk(f *testing.F) {
	f.Add([]byte(bulkCSV(3)), true)
	f.Add([]byte("dev_eui,name,tags\n0101010101010101,a,x=1;y=2\n"), true)
	f.Add([]byte("devices:\n  - dev_eui: \"0101010101010101\"\n"), false)
	f.Add([]byte(`[{"dev_eui":"0101010101010101","session":{"dev_addr":"26011bda"}}]`), false)
	f.Add([]byte("\ufeffdev_eui;name;model\r0101010101010101;a;cayenne-lpp\r"), true)
	f.Add([]byte("dev_eui,name,modle\r\n0101010101010101,a,x\r\n"), true)
	f.Add([]byte("dev_eui,name\n0101010101010101\n0202020202020202,b,c\n0303030303030303,\x1b[2J\n"), true)
	f.Fuzz(func(t *testing.T, b []byte, csv bool) {
		format := BulkYAML
		if csv {
			format = BulkCSV
		}
		rows, err := ParseBulk(b, format)
		if err != nil {
			return
		}
		cur := map[EUI]Device{}
		CheckRows(rows, cur, knownModels)
		for _, r := range rows {
			if len(r.Problems) == 0 {
				if r.Device.EUI.IsZero() {
					t.Fatalf("row without problems has no EUI: %+v", r)
				}
				if r.Action == "" {
					t.Fatalf("valid row without action: %+v", r)
				}
				checkDeviceText(t, r.Device)
			}
		}
	})
}
