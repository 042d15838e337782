package influx

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// postLines writes raw line protocol through the v2 API, bypassing the
// Sink, so the encoder is judged by InfluxDB alone.
func postLines(t *testing.T, db *testserver.InfluxDB, body []byte) {
	t.Helper()
	q := url.Values{"bucket": {db.Bucket()}, "org": {"x"}, "precision": {"ns"}}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(db.URL()+"/api/v2/write?"+q.Encode(), "text/plain; charset=utf-8", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write %q: %s: %s", body, resp.Status, msg)
	}
}

// TestLineProtocolAgainstInfluxDB writes the hard cases (escapes, control
// characters in strings, float formats, integer limits, times before 1970)
// to a real InfluxDB 1.8 and checks what it stored.
func TestLineProtocolAgainstInfluxDB(t *testing.T) {
	db := testserver.StartInfluxDB(t)
	str := "say \"hi\", C:\\dir\\ \r\n\t\f end\\"
	floats := []float64{1e6, 1e21, 1e-7, 0.000001, math.Copysign(0, -1), -123.456, math.MaxFloat64, math.SmallestNonzeroFloat64, 1.5e300, -2.5e-300, 12345678901234567890}
	var fields []gateway.Field
	for i, f := range floats {
		fields = append(fields, gateway.FloatField("f"+strconv.Itoa(i), f))
	}
	fields = append(fields,
		gateway.IntField("imax", math.MaxInt64), gateway.IntField("imin", math.MinInt64),
		gateway.BoolField("b", true), gateway.StringField("s", str), gateway.StringField("key,with=odd chars", "x"))
	p1 := gateway.Point{
		Measurement: "odd meas,ure=ment",
		Tags:        []gateway.Tag{{Key: "z key", Value: "v,a=l ue"}, {Key: `back\slash`, Value: `va\lue`}, {Key: "ort", Value: "Zürich Süd"}, {Key: "quote", Value: `"q"`}},
		Fields:      fields,
		Time:        time.Unix(-1, -5), // before 1970
	}
	var buf []byte
	var err error
	if buf, err = AppendPoint(buf, p1); err != nil {
		t.Fatal(err)
	}
	postLines(t, db, buf)

	got := db.Query(t, `SELECT * FROM `+testserver.QuoteIdent(p1.Measurement)+` GROUP BY *`)
	if len(got) != 1 || len(got[0].Values) != 1 {
		t.Fatalf("got %+v; sent %q", got, buf)
	}
	s := got[0]
	wantTags := map[string]string{"z key": "v,a=l ue", `back\slash`: `va\lue`, "ort": "Zürich Süd", "quote": `"q"`}
	for k, v := range wantTags {
		if s.Tags[k] != v {
			t.Errorf("tag %q = %q, want %q (tags %v)", k, s.Tags[k], v, s.Tags)
		}
	}
	row := map[string]any{}
	for i, c := range s.Columns {
		row[c] = s.Values[0][i]
	}
	if row["time"] != json.Number(strconv.FormatInt(p1.Time.UnixNano(), 10)) {
		t.Errorf("time = %v, want %d", row["time"], p1.Time.UnixNano())
	}
	for i, f := range floats {
		n, ok := row["f"+strconv.Itoa(i)].(json.Number)
		v, err := strconv.ParseFloat(string(n), 64)
		if !ok || err != nil || v != f {
			t.Errorf("f%d = %v, want %v", i, row["f"+strconv.Itoa(i)], f)
		}
	}
	if row["imax"] != json.Number("9223372036854775807") || row["imin"] != json.Number("-9223372036854775808") {
		t.Errorf("ints = %v, %v", row["imax"], row["imin"])
	}
	if row["b"] != true || row["s"] != str || row["key,with=odd chars"] != "x" {
		t.Errorf("b = %v, s = %q, odd key = %v", row["b"], row["s"], row["key,with=odd chars"])
	}

	// The stored types are the encoded ones: float, integer, boolean, string.
	types := map[string]string{}
	for _, r := range db.Query(t, `SHOW FIELD KEYS FROM `+testserver.QuoteIdent(p1.Measurement))[0].Values {
		types[r[0].(string)] = r[1].(string)
	}
	for k, want := range map[string]string{"f0": "float", "f4": "float", "imax": "integer", "b": "boolean", "s": "string"} {
		if types[k] != want {
			t.Errorf("field %s stored as %q, want %q", k, types[k], want)
		}
	}
}
