package influx

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

func TestDroppedCount(t *testing.T) {
	long := "partial write: unable to parse '" + strings.Repeat("x", maxErrorHeader) + "': bad dropped=3"
	for _, tc := range []struct {
		msg  string
		n    int
		ok   bool
		name string
	}{
		{`partial write: field type conflict: input field "v" on measurement "m" is type float, already exists as type integer dropped=2`, 2, true, "1.8 field type conflict"},
		{`partial write: max-values-per-tag limit exceeded (5/3): measurement="m" tag="d" value="g" dropped=2`, 2, true, "1.8 max-values-per-tag"},
		{`partial write: unable to parse 'm,d=a v= 9000000000': missing field value dropped=0`, 0, true, "1.8 parse error"},
		{`failure writing points to database: partial write: points beyond retention policy dropped=17`, 17, true, "2.x retention"},
		{`partial write: field type conflict dropped=12` + "\n", 12, true, "trailing newline"},
		{`unable to parse 'm,d=a v= 8000000000': missing field value unable to parse 'bad': missing fields`, 0, false, "nothing written"},
		{`partial write: unable to parse 'm dropped=9': bad`, 0, false, "count inside a line, not at the end"},
		{`dropped=5`, 0, false, "not a partial write"},
		{`partial write: x dropped=`, 0, false, "no digits"},
		{`partial write: x dropped=-1`, 0, false, "negative"},
		{`partial write: x dropped=1e3`, 0, false, "not an integer"},
		{`partial write: x dropped=99999999999999999999`, 0, false, "too large"},
		{long, 0, false, "cut at 1 KiB: the end is not trusted"},
		{"", 0, false, "empty"},
	} {
		n, ok := droppedCount(tc.msg)
		if n != tc.n || ok != tc.ok {
			t.Errorf("%s: droppedCount(%.80q) = %d, %v; want %d, %v", tc.name, tc.msg, n, ok, tc.n, tc.ok)
		}
	}
}

// FuzzDroppedCount: InfluxDB's error messages are read from the network;
// the reader never panics and reports a count only for a message that
// ends in one. Seeds are in testdata/fuzz/FuzzDroppedCount.
func FuzzDroppedCount(f *testing.F) {
	f.Add(`partial write: field type conflict: input field "v" on measurement "m" is type float, already exists as type integer dropped=2`)
	f.Add(`partial write: unable to parse 'm dropped=9': bad dropped=0`)
	f.Add("partial write: dropped=007 \n")
	f.Fuzz(func(t *testing.T, msg string) {
		n, ok := droppedCount(msg)
		if !ok {
			if n != 0 {
				t.Fatalf("droppedCount(%q) = %d without ok", msg, n)
			}
			return
		}
		if n < 0 || len(msg) >= maxErrorHeader || !strings.Contains(msg, "partial write") {
			t.Fatalf("droppedCount(%q) = %d, ok", msg, n)
		}
		end := strings.TrimRight(msg, " \r\n")
		digits := end[strings.LastIndex(end, "=")+1:]
		if strings.TrimLeft(digits, "0") != strings.TrimLeft(strconv.Itoa(n), "0") {
			t.Fatalf("droppedCount(%q) = %d, but the message ends in %q", msg, n, digits)
		}
	})
}

// TestInfluxDBPartialWrites: what InfluxDB 1.8.10 answers to requests
// with refused lines, as the Sink reads it: a partial write names the
// first reason and counts the refused points, and every other line is
// stored; a line it cannot parse is not counted.
func TestInfluxDBPartialWrites(t *testing.T) {
	t.Parallel()
	db := testserver.StartInfluxDB(t)
	s, err := newClient(cfgFor(db.URL(), db.Bucket()), zerolog.Nop(), fastTiming)
	if err != nil {
		t.Fatal(err)
	}
	post := func(body string) outcome {
		t.Helper()
		return s.post(context.Background(), [][]byte{[]byte(body)})
	}
	if o := post("pw,d=a v=1i 1\n"); o.err != nil {
		t.Fatalf("first write: %v", o.err)
	}
	for _, tc := range []struct {
		name    string
		body    string
		dropped int
		counted bool
		stored  int // points of measurement pw after the request
	}{
		{"one conflict among good lines", "pw,d=a v=2.5 2\npw,d=a v=3i 3\npw,d=a v=4i 4\n", 1, true, 3},
		{"every line conflicts", "pw,d=a v=5.5 5\npw,d=a v=\"s\" 6\n", 2, true, 3},
		{"an unparsable line is not counted", "pw,d=a v= 7\npw,d=a v=8i 8\n", 0, true, 4},
		{"an out-of-range time is not counted", "pw,d=a v=9i 99999999999999999999\npw,d=a v=10i 10\n", 0, true, 5},
	} {
		o := post(tc.body)
		if o.status != 400 {
			t.Fatalf("%s: status %d (%s), want 400", tc.name, o.status, o.msg)
		}
		n, ok := droppedCount(o.msg)
		if ok != tc.counted || n != tc.dropped {
			t.Errorf("%s: message %q: droppedCount = %d, %v; want %d, %v", tc.name, o.msg, n, ok, tc.dropped, tc.counted)
		}
		if got := db.Count(t, "pw"); got != tc.stored {
			t.Errorf("%s: InfluxDB holds %d points, want %d (the lines it did not refuse)", tc.name, got, tc.stored)
		}
	}
}

// TestRefusalLogSumsUp: the first refusal is logged at once, the rest of
// a period as one line with their count and the first one's reason, and
// a quiet period ends the summing up.
func TestRefusalLogSumsUp(t *testing.T) {
	logs := &logBuffer{}
	l := newRefusalLog(zerolog.New(logs), time.Hour) // flushed by hand below
	cause := &refusal{status: 400, msg: "partial write: field type conflict dropped=1"}
	l.add(refusedRecord{source: "cs", devEUI: "0001", lines: 1, err: cause})
	for i := 0; i < 999; i++ {
		l.add(refusedRecord{source: "cs", devEUI: "0002", lines: 1, err: cause})
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 {
		t.Fatalf("%d log lines for 1000 refusals before the period ends, want 1:\n%s", n, logs)
	}
	l.flush()
	out := logs.String()
	if n := strings.Count(out, "\n"); n != 2 || !strings.Contains(out, `"records":999`) ||
		!strings.Contains(out, "999 records refused by InfluxDB in the last 1h0m0s") || !strings.Contains(out, `"dev_eui":"0002"`) {
		t.Fatalf("want the first refusal and one summary of the other 999:\n%s", out)
	}
	l.flush() // a period without refusals: summing up ends
	l.add(refusedRecord{source: "cs", devEUI: "0003", lines: 1, err: cause})
	if n := strings.Count(logs.String(), "\n"); n != 3 || !strings.Contains(logs.String(), `"dev_eui":"0003"`) {
		t.Fatalf("the first refusal after a quiet period is logged at once:\n%s", logs)
	}
	l.add(refusedRecord{source: "cs", devEUI: "0004", lines: 1, err: cause})
	l.close()
	if n := strings.Count(logs.String(), "\n"); n != 4 || !strings.Contains(logs.String(), `"records":1`) {
		t.Fatalf("close logs what the open period holds:\n%s", logs)
	}
}

// TestRefusalIsRejected: a refusal is an ErrRejected for the callers.
func TestRefusalIsRejected(t *testing.T) {
	var err error = &refusal{status: 422, msg: "m"}
	if !errors.Is(err, ErrRejected) || !errors.Is(err, gateway.ErrRejected) || err.Error() != ErrRejected.Error()+" (422): m" {
		t.Fatalf("refusal %q: want ErrRejected and gateway.ErrRejected", err)
	}
}
