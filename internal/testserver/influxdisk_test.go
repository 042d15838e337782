package testserver

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestWriteStatsAndCompactFully: the write statistics count the points,
// bytes and requests clients wrote; CompactFully leaves one generation of
// TSM files holding every point, and the server answers queries after.
func TestWriteStatsAndCompactFully(t *testing.T) {
	db := StartInfluxDB(t)
	client := &http.Client{Timeout: 10 * time.Second}
	const requests, perRequest = 3, 400
	var sent int64
	for r := range requests {
		var b strings.Builder
		for i := range perRequest {
			fmt.Fprintf(&b, "air,device=d%d temperature=%d.5 %d\n", i%7, i, 1700000000000000000+int64(r*perRequest+i)*int64(time.Second))
		}
		sent += int64(b.Len())
		q := url.Values{"db": {db.DB}, "precision": {"ns"}}
		resp, err := client.Post(db.URL()+"/write?"+q.Encode(), "text/plain", strings.NewReader(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("write: %s", resp.Status)
		}
	}
	st, err := db.WriteStats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Requests != requests || st.Points != requests*perRequest || st.Bytes != sent {
		t.Fatalf("write statistics %+v, want %d requests, %d points, %d bytes", st, requests, requests*perRequest, sent)
	}
	tsm, err := db.CompactFully(2 * time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	disk, err := db.disk()
	if err != nil {
		t.Fatal(err)
	}
	if tsm <= 0 || disk.tsmBytes != tsm || disk.maxGenerations != 1 || disk.walBytes != 0 {
		t.Fatalf("after CompactFully: %d TSM bytes returned, on disk %+v; want one generation, an empty WAL", tsm, disk)
	}
	if n := db.Count(t, "air"); n != requests*perRequest {
		t.Fatalf("%d points after the compaction, want %d", n, requests*perRequest)
	}
}
