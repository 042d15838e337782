package influx

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/internal/testserver"
)

// TestProbe asks a real InfluxDB 1.8 with auth enabled whether it takes
// writes, through both write APIs, without writing anything: present and
// writable, missing database (with the command to create it), wrong
// credentials, and nothing listening.
func TestProbe(t *testing.T) {
	db := testserver.StartInfluxDB(t, testserver.Auth("admin", "adm-pw"))
	db.Exec(t, "CREATE USER writer WITH PASSWORD 'w-pass'")
	db.Exec(t, "GRANT WRITE ON "+db.DB+" TO writer")
	db.Exec(t, "CREATE DATABASE other")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	cases := []struct {
		name        string
		cfg         Config
		status      int
		unreachable bool
		want        []string // in the error; none: writable
	}{
		{"v1 present", Config{Version: V1, URL: db.URL(), Database: db.DB, Username: "writer", Password: "w-pass"}, 204, false, nil},
		{"v2 present", Config{URL: db.URL(), Bucket: db.Bucket(), Token: "writer:w-pass"}, 204, false, nil},
		{"v1 missing", Config{Version: V1, URL: db.URL(), Database: "nope", Username: "admin", Password: "adm-pw"}, 404, false,
			[]string{`database "nope" does not exist`, `-execute 'CREATE DATABASE "nope"'`, "-username admin"}},
		{"v2 missing", Config{URL: db.URL(), Bucket: "nope/autogen", Token: "admin:adm-pw"}, 404, false,
			[]string{`bucket "nope/autogen" does not exist`, `CREATE DATABASE "nope"`}},
		{"v1 wrong password", Config{Version: V1, URL: db.URL(), Database: db.DB, Username: "writer", Password: "bad"}, 401, false,
			[]string{"HTTP 401", "influx.username and influx.password"}},
		{"v2 no write permission", Config{URL: db.URL(), Bucket: "other/autogen", Token: "writer:w-pass"}, 403, false,
			[]string{"HTTP 403", "influx.token"}},
		{"nothing listening", Config{URL: closed, Bucket: "x/autogen"}, 0, true, []string{"unreachable", closed}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := New(c.cfg, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			res := s.Probe(context.Background())
			if res.Status != c.status || res.Unreachable() != c.unreachable {
				t.Fatalf("status %d unreachable %v (%v), want %d %v", res.Status, res.Unreachable(), res.Err, c.status, c.unreachable)
			}
			if c.want == nil {
				if res.Err != nil {
					t.Fatalf("Probe = %v, want writable", res.Err)
				}
				return
			}
			if res.Err == nil {
				t.Fatal("Probe = nil, want an error")
			}
			for _, w := range c.want {
				if !strings.Contains(res.Err.Error(), w) {
					t.Errorf("Probe error %q lacks %q", res.Err, w)
				}
			}
		})
	}
	if n := len(db.Query(t, "SHOW MEASUREMENTS")); n != 0 {
		t.Fatalf("the probes wrote %d series of measurements, want none", n)
	}
}

// TestMonitorCreatesDatabase: with create_database (the default) the
// monitor creates a missing database on 1.8 and then reports it
// writable; a user without admin rights cannot, and the state says what
// to run; with create_database false nothing is created.
func TestMonitorCreatesDatabase(t *testing.T) {
	db := testserver.StartInfluxDB(t, testserver.Auth("admin", "adm-pw"))
	db.Exec(t, "CREATE USER writer WITH PASSWORD 'w-pass'")
	no := false
	cases := []struct {
		name    string
		cfg     Config
		created bool
		want    string // in CreateErr or the probe error
	}{
		{"admin, v2 bucket", Config{URL: db.URL(), Bucket: "fresh/autogen", Token: "admin:adm-pw"}, true, ""},
		{"admin, v1", Config{Version: V1, URL: db.URL(), Database: "fresh1", Username: "admin", Password: "adm-pw"}, true, ""},
		{"not admin", Config{Version: V1, URL: db.URL(), Database: "fresh2", Username: "writer", Password: "w-pass"}, false,
			`requires admin privilege`},
		{"create_database false", Config{Version: V1, URL: db.URL(), Database: "fresh3", Username: "admin", Password: "adm-pw", CreateDatabase: &no}, false,
			`CREATE DATABASE "fresh3"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := New(c.cfg, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			logs := &logBuffer{}
			m := NewMonitor(s, zerolog.New(logs))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); m.Run(ctx, time.Hour) }()
			<-m.Probed()
			cancel()
			<-done
			st := m.State()
			if c.created {
				if st.Last.Err != nil || st.CreateErr != nil {
					t.Fatalf("state %+v, want the database created and writable", st)
				}
				if !strings.Contains(logs.String(), "created the database") {
					t.Fatalf("the log does not say the database was created:\n%s", logs)
				}
				return
			}
			if st.Last.Err == nil {
				t.Fatal("probe says writable, want the database missing")
			}
			msg := st.Last.Err.Error()
			if st.CreateErr != nil {
				msg += " / " + st.CreateErr.Error()
			}
			if !strings.Contains(msg, c.want) {
				t.Fatalf("state %q lacks %q", msg, c.want)
			}
			// The start-up log says what to run.
			if log := logs.String(); !strings.Contains(log, `"level":"error"`) || !strings.Contains(log, `-execute 'CREATE DATABASE`) {
				t.Fatalf("no error-level log with the command to run:\n%s", log)
			}
		})
	}
	var dbs []string
	for _, s := range db.Query(t, "SHOW DATABASES") {
		for _, v := range s.Values {
			dbs = append(dbs, v[0].(string))
		}
	}
	got := strings.Join(dbs, ",")
	if !strings.Contains(got, "fresh,") || !strings.Contains(got, "fresh1") || strings.Contains(got, "fresh2") || strings.Contains(got, "fresh3") {
		t.Fatalf("databases %s: want fresh and fresh1 created, fresh2 and fresh3 not", got)
	}
}
