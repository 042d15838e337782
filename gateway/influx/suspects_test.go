package influx

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
)

func TestSuspects(t *testing.T) {
	conflict := `partial write: field type conflict: input field "temperature" on measurement "air" is type float, already exists as type integer dropped=3`
	maxValues := `partial write: max-values-per-tag limit exceeded (1000/1000): measurement="uplink" tag="dev_eui" value="00a\"b" dropped=2`
	for _, tc := range []struct {
		name, msg, line string
		want            bool
	}{
		{"conflicting type", conflict, "air,dev_eui=01 temperature=21.5,count=3i 1\n", true},
		{"conflicting type, second field", conflict, "air,dev_eui=01 count=3i,temperature=21 1\n", true},
		{"the stored type", conflict, "air,dev_eui=01 temperature=21i 1\n", false},
		{"other measurement", conflict, "uplink,dev_eui=01 temperature=21.5 1\n", false},
		{"measurement prefix", conflict, "airx temperature=21.5 1\n", false},
		{"no tags", conflict, "air temperature=2 1\n", true},
		{"field inside a string", conflict, `air s="x,temperature=1.5 y",n=1i 1` + "\n", false},
		{"escaped measurement", `field type conflict: input field "t" on measurement "a b" is type string, already exists as type float`, `a\ b,k=v t="x" 1` + "\n", true},
		{"boolean", `field type conflict: input field "ok" on measurement "m" is type boolean, already exists as type float`, "m ok=true 1\n", true},
		{"unsigned", `field type conflict: input field "n" on measurement "m" is type unsigned, already exists as type float`, "m n=3u 1\n", true},
		{"series at the limit", maxValues, `uplink,dev_eui=00a"b,source=cs rssi=-70 1` + "\n", true},
		{"another series", maxValues, "uplink,dev_eui=00ab,source=cs rssi=-70 1\n", false},
		{"the tag on another measurement", maxValues, `air,dev_eui=00a"b rssi=-70 1` + "\n", false},
		{"escaped tag value", `max-values-per-tag limit exceeded (1/1): measurement="m" tag="k" value="a b"`, `m,k=a\ b v=1 1` + "\n", true},
		{"reason without suspects", "partial write: points beyond retention policy dropped=4", "m v=1 1\n", false},
		{"unknown type", `field type conflict: input field "v" on measurement "m" is type weird, already exists as type float`, "m v=1 1\n", false},
	} {
		f := suspects(tc.msg)
		if got := f != nil && f([]byte(tc.line)); got != tc.want {
			t.Errorf("%s: suspect(%q) = %v, want %v", tc.name, tc.line, got, tc.want)
		}
	}
}

// FuzzSuspects: refusal messages come from the network and lines from
// the spool; the readers never panic, and on the encoder's own lines
// they find the field's type and the tag as encoded. Seeds are in
// testdata/fuzz/FuzzSuspects.
func FuzzSuspects(f *testing.F) {
	f.Add(`field type conflict: input field "t" on measurement "a b" is type string, already exists as type float`, "air", "dev_eui", "00 a,b", "temperature", 1.5, int64(3), "on")
	f.Add(`max-values-per-tag limit exceeded (1/1): measurement="m" tag="k" value="a\"b"`, `m\`, `k=`, `v"`, "f\\", 0.0, int64(-1), `"q"`)
	f.Fuzz(func(t *testing.T, msg, m, k, v, fk string, fv float64, iv int64, sv string) {
		if s := suspects(msg); s != nil {
			s([]byte(m + " " + v))
		}
		p := gateway.Point{Measurement: m, Tags: []gateway.Tag{{Key: k, Value: v}},
			Fields: []gateway.Field{gateway.StringField(fk+"_s", sv), gateway.FloatField(fk, fv), gateway.IntField(fk+"_i", iv)},
			Time:   time.Unix(0, 1)}
		line, err := AppendPoint(nil, p)
		if err != nil || len(line) == 0 {
			return
		}
		for field, typ := range map[string]string{fk: "float", fk + "_i": "integer", fk + "_s": "string"} {
			if strings.ContainsAny(field, "\n") || field == "time" {
				continue
			}
			if !strings.Contains(string(line), "=") {
				continue
			}
			got := lineFieldType(line, m, field)
			if got != typ && got != "" {
				t.Fatalf("lineFieldType(%q, %q, %q) = %q, want %q", line, m, field, got, typ)
			}
			if got == "" && fieldWritten(p, field) {
				t.Fatalf("lineFieldType(%q, %q, %q) found nothing; the field is there", line, m, field)
			}
		}
		if v != "" && !lineHasTag(line, m, k, v) {
			t.Fatalf("lineHasTag(%q, %q, %q, %q) = false", line, m, k, v)
		}
		msgConflict := fmt.Sprintf(`field type conflict: input field "%s" on measurement "%s" is type float, already exists as type integer`, fk, m)
		if mm, ff, typ, ok := parseConflict(msgConflict); ok && mm == m && ff == fk && typ == "float" && fieldWritten(p, fk) {
			if !suspects(msgConflict)(line) {
				t.Fatalf("the encoder's line %q is not suspect for %q", line, msgConflict)
			}
		}
	})
}

// fieldWritten reports whether AppendPoint writes field key of p.
func fieldWritten(p gateway.Point, key string) bool {
	for i := range p.Fields {
		if p.Fields[i].Key == key {
			return checkField(&p.Fields[i]) == nil
		}
	}
	return false
}
