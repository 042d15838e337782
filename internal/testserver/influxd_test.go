package testserver

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestStartInfluxDBWriteQueryRestart proves the test server takes a v2 API
// write into the 1.8 database, returns it to a query with the exact
// timestamp and types, and keeps it across Stop/Start.
func TestStartInfluxDBWriteQueryRestart(t *testing.T) {
	db := StartInfluxDB(t)
	client := &http.Client{Timeout: 10 * time.Second}

	write := func() *http.Response {
		q := url.Values{"bucket": {db.Bucket()}, "org": {"any"}, "precision": {"ns"}}
		body := "air,device=d1 temperature=21.5,count=3i 1700000000123456789\n"
		resp, err := client.Post(db.URL()+"/api/v2/write?"+q.Encode(), "text/plain; charset=utf-8", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp
	}
	if resp := write(); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("v2 write: %s; log:\n%s", resp.Status, db.Log())
	}

	check := func() {
		t.Helper()
		got := db.Query(t, `SELECT "count", "temperature" FROM "air"`)
		if len(got) != 1 || len(got[0].Values) != 1 {
			t.Fatalf("query: got %+v, want one row", got)
		}
		row := got[0].Values[0]
		if row[0] != json.Number("1700000000123456789") || row[1] != json.Number("3") || row[2] != json.Number("21.5") {
			t.Fatalf("row = %v", row)
		}
		if n := db.Count(t, "air"); n != 1 {
			t.Fatalf("Count = %d, want 1", n)
		}
	}
	check()

	db.Stop()
	if _, err := client.Get(db.URL() + "/ping"); err == nil {
		t.Fatal("influxd still answers after Stop")
	}
	db.Start()
	check()
}

// TestUseInfluxDB: a server the test did not start gets a database of its
// own, writes and queries go there and not to the server's other
// databases, and DropDatabase removes it again.
func TestUseInfluxDB(t *testing.T) {
	server := StartInfluxDB(t) // stands in for an InfluxDB on another machine
	db := UseInfluxDB(t, server.URL()+"/", "bench_run_1")
	if db.URL() != server.URL() || db.PID() != 0 || db.Bucket() != "bench_run_1/autogen" {
		t.Fatalf("URL %q, PID %d, bucket %q; want %q, 0, bench_run_1/autogen", db.URL(), db.PID(), db.Bucket(), server.URL())
	}
	q := url.Values{"bucket": {db.Bucket()}, "precision": {"ns"}}
	resp, err := http.Post(db.URL()+"/api/v2/write?"+q.Encode(), "text/plain; charset=utf-8",
		strings.NewReader("uplink,device=d1 rssi=-80 1700000000000000000\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %s", resp.Status)
	}
	if n := db.Count(t, "uplink"); n != 1 {
		t.Errorf("the used database holds %d uplinks, want 1", n)
	}
	if n := server.Count(t, "uplink"); n != 0 {
		t.Errorf("the server's own database holds %d uplinks, want 0", n)
	}

	databases := func() string {
		var names []string
		for _, s := range server.Query(t, "SHOW DATABASES") {
			for _, row := range s.Values {
				names = append(names, row[0].(string))
			}
		}
		return strings.Join(names, ",")
	}
	if got := databases(); !strings.Contains(got, "bench_run_1") {
		t.Fatalf("databases %s lack bench_run_1", got)
	}
	if err := db.DropDatabase(); err != nil {
		t.Fatal(err)
	}
	if got := databases(); strings.Contains(got, "bench_run_1") {
		t.Errorf("databases %s still hold bench_run_1 after DropDatabase", got)
	}
}

// TestMaxValuesPerTag: with the option, influxd refuses a point with a
// new value of a tag past the limit, as production servers do past their
// default 100,000.
func TestMaxValuesPerTag(t *testing.T) {
	db := StartInfluxDB(t, MaxValuesPerTag(3))
	client := &http.Client{Timeout: 10 * time.Second}
	write := func(dev string) int {
		q := url.Values{"bucket": {db.Bucket()}, "org": {"any"}, "precision": {"s"}}
		resp, err := client.Post(db.URL()+"/api/v2/write?"+q.Encode(), "text/plain; charset=utf-8",
			strings.NewReader("air,device="+dev+" temperature=1 1700000000\n"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	for _, dev := range []string{"a", "b", "c", "a"} {
		if code := write(dev); code != http.StatusNoContent {
			t.Fatalf("write of device %s: %d", dev, code)
		}
	}
	if code := write("d"); code == http.StatusNoContent {
		t.Fatal("a fourth value of the device tag was taken with max-values-per-tag = 3")
	}
}
