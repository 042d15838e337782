package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// TestFaultPoisonBacklog (issue 16): 2,000 uplinks whose air points
// InfluxDB refuses (readings from 2020, whose shard holds
// air.temperature as an integer) are published ahead of 2,000 good ones.
// Every good uplink lands; each refused one becomes exactly one dead
// letter (rejected_by_influx) holding its lines, its uplink point stored;
// the spool drains; and the refused uplinks are sorted out in far fewer
// requests than one each (a counting proxy in front of the real
// InfluxDB).
func TestFaultPoisonBacklog(t *testing.T) {
	t.Parallel()
	const poison, good = 2000, 2000
	r := newFaultRig(t, 1616, 100)
	px := testserver.StartInfluxProxy(t, r.db.URL(), nil)
	d := r.runInProcess(r.writeConfig(rigConfig{influxURL: px.URL}))
	diag := r.daemonState(d)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	msgs := r.stream(poison + good)
	base := time.Date(2020, 6, 1, 12, 0, 0, 0, time.UTC)
	uplinks, air := expectSet{}, expectSet{}
	poisonTimes := map[string]bool{}
	for i := range poison {
		tm := base.Add(time.Duration(i) * time.Second)
		msgs[i] = withJSON(t, msgs[i], func(v map[string]any) { v["time"] = tm.Format(time.RFC3339Nano) })
		msgs[i].Time = tm
		poisonTimes[fmt.Sprintf(" %d\n", tm.UnixNano())] = true
	}
	uplinks.add(msgs...)
	air.add(msgs[poison:]...)
	before := base.Add(-time.Hour)
	resp, err := http.Post(r.db.URL()+"/write?db=sensors&precision=ns", "text/plain",
		strings.NewReader(fmt.Sprintf("air temperature=20i %d\n", before.UnixNano())))
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("pre-write the conflicting point: %v %v", err, resp)
	}
	resp.Body.Close()
	air[key("", before)] = 20

	if err := publishReliably(ctx, r.mq.URL(), "faults-publisher", msgs, 0, nil); err != nil {
		t.Fatal(err)
	}
	awaitUplinks(t, r.db, poison+good, 2*time.Minute, diag)
	waitFor(t, time.Minute, "every air point of a good uplink stored", func() bool { return countOf(t, r.db, "air", "temperature") == good+1 }, diag)
	waitFor(t, time.Minute, "spool delivered", func() bool { return d.spool.Stats().Pending == 0 }, diag)
	assertPoints(t, r.db, uplinks, air)

	dls := r.deadLetters()
	if len(dls) != poison {
		t.Fatalf("%d dead letters, want %d (one per refused uplink)\n%s", len(dls), poison, diag())
	}
	seen := map[string]bool{}
	for _, dl := range dls {
		if dl.Reason != gateway.ReasonRejected || dl.Source != "cs4" || !bytes.Contains(dl.Raw, []byte("air,")) || !strings.Contains(dl.Detail, "field type conflict") {
			t.Fatalf("dead letter %+v (raw %q), want a refused air point", dl, dl.Raw)
		}
		for line := range strings.SplitAfterSeq(string(dl.Raw), "\n") {
			if i := strings.LastIndexByte(line, ' '); i > 0 && poisonTimes[line[i:]] && strings.HasPrefix(line, "air,") {
				seen[line[i:]] = true
			}
		}
	}
	if len(seen) != poison {
		t.Fatalf("dead letters hold %d of the %d refused air points", len(seen), poison)
	}
	statuses := map[int]int{}
	for _, q := range px.Requests() {
		statuses[q.Status]++
	}
	if statuses[http.StatusBadRequest]*10 > poison {
		t.Fatalf("%d requests refused for %d refused uplinks: sorting them out costs about a request each (statuses %v)", statuses[http.StatusBadRequest], poison, statuses)
	}
	t.Logf("write requests by status: %v", statuses)
}
