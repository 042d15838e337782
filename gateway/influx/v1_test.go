package influx

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// TestSinkV1Auth writes through InfluxDB 1.x's /write endpoint to a real
// InfluxDB 1.8 with auth-enabled: with the right username and password
// into the named database and retention policy; with a wrong password
// nothing is written, Write keeps retrying (the points stay owed, so the
// spool keeps them) and the log says loudly what to fix.
func TestSinkV1Auth(t *testing.T) {
	db := testserver.StartInfluxDB(t, testserver.Auth("admin", "s3cret-pw"))
	db.Exec(t, "CREATE RETENTION POLICY week ON "+db.DB+" DURATION 7d REPLICATION 1")
	db.Exec(t, "CREATE USER writer WITH PASSWORD 'w-pass'")
	db.Exec(t, "GRANT WRITE ON "+db.DB+" TO writer")
	now := time.Now().Truncate(time.Second)
	pts := func(v float64) []gateway.Point {
		return []gateway.Point{{Measurement: "v1", Tags: []gateway.Tag{{Key: "k", Value: "v"}}, Fields: []gateway.Field{gateway.FloatField("v", v)}, Time: now}}
	}

	t.Run("right password", func(t *testing.T) {
		cfg := Config{Version: V1, URL: db.URL(), Database: db.DB, RetentionPolicy: "week", Username: "writer", Password: "w-pass"}
		s, _ := startSink(t, cfg, fastTiming)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Write(ctx, pts(1)); err != nil {
			t.Fatalf("Write: %v", err)
		}
		got := db.Query(t, `SELECT * FROM "`+db.DB+`"."week"."v1"`)
		if len(got) != 1 || len(got[0].Values) != 1 {
			t.Fatalf("retention policy week holds %+v, want the one point", got)
		}
		if n := db.Count(t, "v1"); n != 0 {
			t.Fatalf("the default retention policy holds %d points, want 0 (they belong in week)", n)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		cfg := Config{Version: V1, URL: db.URL(), Database: db.DB, Username: "writer", Password: "wrong"}
		s, logs := startSink(t, cfg, fastTiming)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := s.Write(ctx, pts(2)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Write = %v, want it held back until the deadline (the points stay owed)", err)
		}
		log := logs.String()
		if !strings.Contains(log, `"level":"error"`) || !strings.Contains(log, "401") {
			t.Fatalf("no error-level log naming the 401:\n%s", log)
		}
		// Durations carry their unit ("retry_in":"50ms"), not a bare number.
		if !regexp.MustCompile(`"retry_in":"[0-9.]+(ms|s|m)`).MatchString(log) {
			t.Errorf("no retry_in with a unit in the log:\n%s", log)
		}
		if strings.Contains(log, "wrong") {
			t.Fatalf("the log holds the password:\n%s", log)
		}
	})
	if n := len(db.Query(t, `SELECT * FROM "`+db.DB+`"."week"."v1"`)[0].Values); n != 1 {
		t.Fatalf("%d points after the refused write, want 1", n)
	}
}

// TestWriteURL pins the endpoint and authorization of each version.
func TestWriteURL(t *testing.T) {
	for _, tc := range []struct {
		cfg       Config
		url, auth string
	}{
		{Config{URL: "http://h:8086", Org: "o", Bucket: "db/rp", Token: "tok"}, "http://h:8086/api/v2/write?bucket=db%2Frp&org=o&precision=ns", "Token tok"},
		{Config{URL: "http://h:8086/", Bucket: "b"}, "http://h:8086/api/v2/write?bucket=b&org=&precision=ns", ""},
		{Config{Version: V1, URL: "https://h:8086", Database: "sensors", RetentionPolicy: "a b"}, "https://h:8086/write?db=sensors&precision=ns&rp=a+b", ""},
		{Config{Version: V1, URL: "http://h:8086/influx", Database: "s", Username: "u", Password: "p:w"}, "http://h:8086/influx/write?db=s&precision=ns", "Basic dTpwOnc="},
	} {
		u, a := tc.cfg.withDefaults().writeURL()
		if u != tc.url || a != tc.auth {
			t.Errorf("%+v: writeURL = %q, %q; want %q, %q", tc.cfg, u, a, tc.url, tc.auth)
		}
	}
}
