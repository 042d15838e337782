package influx

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
)

var t0 = time.Unix(1700000000, 123456789)

func TestAppendPoint(t *testing.T) {
	f := gateway.FloatField
	tags := func(kv ...string) []gateway.Tag {
		var out []gateway.Tag
		for i := 0; i < len(kv); i += 2 {
			out = append(out, gateway.Tag{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	tests := []struct {
		name string
		p    gateway.Point
		want string
	}{
		{"all kinds", gateway.Point{Measurement: "air", Tags: tags("dev_eui", "0011223344556677", "device", "d1"),
			Fields: []gateway.Field{f("temperature", 21.5), gateway.IntField("count", -3), gateway.BoolField("ok", true), gateway.BoolField("alarm", false), gateway.StringField("state", "on")}, Time: t0},
			`air,dev_eui=0011223344556677,device=d1 temperature=21.5,count=-3i,ok=true,alarm=false,state="on" 1700000000123456789` + "\n"},
		{"measurement escapes comma and space, not equals", gateway.Point{Measurement: "my air,x=y", Fields: []gateway.Field{f("v", 1)}, Time: t0},
			`my\ air\,x=y v=1 1700000000123456789` + "\n"},
		{"tag key and value escapes", gateway.Point{Measurement: "m", Tags: tags("a b", "c,d=e f"), Fields: []gateway.Field{f("v", 1)}, Time: t0},
			`m,a\ b=c\,d\=e\ f v=1 1700000000123456789` + "\n"},
		{"field key escapes", gateway.Point{Measurement: "m", Fields: []gateway.Field{f("a,b=c d", 1)}, Time: t0},
			`m a\,b\=c\ d=1 1700000000123456789` + "\n"},
		{"string value escapes quote and backslash only", gateway.Point{Measurement: "m", Fields: []gateway.Field{gateway.StringField("s", "say \"hi\", C:\\dir\nnext=line")}, Time: t0},
			"m s=\"say \\\"hi\\\", C:\\\\dir\nnext=line\" 1700000000123456789\n"},
		{"backslash before ordinary character is kept", gateway.Point{Measurement: `m\x`, Tags: tags(`k\a`, `v\b`), Fields: []gateway.Field{f(`f\c`, 1)}, Time: t0},
			`m\x,k\a=v\b f\c=1 1700000000123456789` + "\n"},
		{"unicode", gateway.Point{Measurement: "luft", Tags: tags("ort", "Zürich Süd"), Fields: []gateway.Field{gateway.StringField("hinweis", "ÄÖÜ ✓")}, Time: t0},
			`luft,ort=Zürich\ Süd hinweis="ÄÖÜ ✓" 1700000000123456789` + "\n"},
		{"tags sorted, empty values left out", gateway.Point{Measurement: "m", Tags: tags("site", "s1", "channel", "", "device", "d1", "model", "x"), Fields: []gateway.Field{f("v", 1)}, Time: t0},
			"m,device=d1,model=x,site=s1 v=1 1700000000123456789\n"},
		{"no tags", gateway.Point{Measurement: "m", Fields: []gateway.Field{f("v", 1)}, Time: t0}, "m v=1 1700000000123456789\n"},
		{"time before 1970", gateway.Point{Measurement: "m", Fields: []gateway.Field{f("v", 1)}, Time: time.Unix(-1, 0)}, "m v=1 -1000000000\n"},
		{"ints at the limits", gateway.Point{Measurement: "m", Fields: []gateway.Field{gateway.IntField("a", math.MaxInt64), gateway.IntField("b", math.MinInt64)}, Time: t0},
			"m a=9223372036854775807i,b=-9223372036854775808i 1700000000123456789\n"},
		{"floats canonical", gateway.Point{Measurement: "m", Fields: []gateway.Field{
			f("a", 1e6), f("b", 1e21), f("c", 1e-7), f("d", 0.000001), f("e", math.Copysign(0, -1)), f("g", -123.456),
			f("h", math.MaxFloat64), f("i", math.SmallestNonzeroFloat64), f("j", 1.5e300), f("k", 12345678901234567890), f("l", 3)}, Time: t0},
			"m a=1000000,b=1e+21,c=1e-7,d=0.000001,e=0,g=-123.456,h=1.7976931348623157e+308,i=5e-324,j=1.5e+300,k=12345678901234567000,l=3 1700000000123456789\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prev line\n")
			got, err := AppendPoint(prefix, tt.p)
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !strings.HasPrefix(string(got), "prev line\n") {
				t.Fatalf("dst prefix overwritten: %q", got)
			}
			if s := string(got[len(prefix):]); s != tt.want {
				t.Errorf("got\n%q\nwant\n%q", s, tt.want)
			}
		})
	}
}

func TestAppendPointTagOrderDoesNotMatter(t *testing.T) {
	a := gateway.Point{Measurement: "m", Tags: []gateway.Tag{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}, {Key: "c", Value: "3"}}, Fields: []gateway.Field{gateway.FloatField("v", 1)}, Time: t0}
	b := a
	b.Tags = []gateway.Tag{{Key: "c", Value: "3"}, {Key: "a", Value: "1"}, {Key: "b", Value: "2"}}
	la, _ := AppendPoint(nil, a)
	lb, _ := AppendPoint(nil, b)
	if string(la) != string(lb) {
		t.Fatalf("%q != %q", la, lb)
	}
	if b.Tags[0].Key != "c" {
		t.Fatal("AppendPoint reordered the caller's tags")
	}
	// Many tags take the heap path of the sort.
	var many []gateway.Tag
	for i := 40; i > 0; i-- {
		many = append(many, gateway.Tag{Key: strconv.Itoa(100 + i), Value: "x"})
	}
	l, err := AppendPoint(nil, gateway.Point{Measurement: "m", Tags: many, Fields: []gateway.Field{gateway.FloatField("v", 1)}, Time: t0})
	if err != nil || !strings.HasPrefix(string(l), "m,101=x,102=x,103=x,") {
		t.Fatalf("%q, %v", l, err)
	}
}

// TestAppendPointDropsBadFields: a bad field is left out and reported; the
// rest of the point is still written.
func TestAppendPointDropsBadFields(t *testing.T) {
	p := gateway.Point{Measurement: "m", Fields: []gateway.Field{
		gateway.FloatField("nan", math.NaN()), gateway.FloatField("ok", 1), gateway.FloatField("inf", math.Inf(-1)),
		gateway.FloatField("time", 2), {Key: "nokind"}, gateway.StringField("bad", "\xff"),
	}, Time: t0}
	got, err := AppendPoint(nil, p)
	if string(got) != "m ok=1 1700000000123456789\n" {
		t.Errorf("got %q", got)
	}
	if !errors.Is(err, ErrInvalidPoint) || !strings.Contains(err.Error(), `field "nan"`) || !strings.Contains(err.Error(), "4 more") {
		t.Errorf("err = %v", err)
	}
}

// TestAppendPointRejects: an invalid point appends nothing.
func TestAppendPointRejects(t *testing.T) {
	ok := []gateway.Field{gateway.FloatField("v", 1)}
	tests := []struct {
		name string
		p    gateway.Point
		want string // in the error
	}{
		{"no fields", gateway.Point{Measurement: "m", Time: t0}, "no fields"},
		{"only bad fields", gateway.Point{Measurement: "m", Fields: []gateway.Field{gateway.FloatField("v", math.NaN())}, Time: t0}, "no valid field"},
		{"empty measurement", gateway.Point{Fields: ok, Time: t0}, "empty"},
		{"comment measurement", gateway.Point{Measurement: "#m", Fields: ok, Time: t0}, "comment"},
		{"newline in measurement", gateway.Point{Measurement: "m\nx", Fields: ok, Time: t0}, "control"},
		{"zero time", gateway.Point{Measurement: "m", Fields: ok}, "no time"},
		{"time out of range", gateway.Point{Measurement: "m", Fields: ok, Time: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}, "outside"},
		{"tag key time", gateway.Point{Measurement: "m", Tags: []gateway.Tag{{Key: "time", Value: "x"}}, Fields: ok, Time: t0}, "reserved"},
		{"duplicate tag", gateway.Point{Measurement: "m", Tags: []gateway.Tag{{Key: "b", Value: "x"}, {Key: "a", Value: "1"}, {Key: "b", Value: "y"}}, Fields: ok, Time: t0}, "twice"},
		{"trailing backslash in tag value", gateway.Point{Measurement: "m", Tags: []gateway.Tag{{Key: "a", Value: `x\`}}, Fields: ok, Time: t0}, "backslash"},
		{"backslash before comma in tag key", gateway.Point{Measurement: "m", Tags: []gateway.Tag{{Key: `a\,b`, Value: "x"}}, Fields: ok, Time: t0}, "backslash"},
		{"backslash before space in measurement", gateway.Point{Measurement: `m\ x`, Fields: ok, Time: t0}, "backslash"},
		{"tab in tag value", gateway.Point{Measurement: "m", Tags: []gateway.Tag{{Key: "a", Value: "x\ty"}}, Fields: ok, Time: t0}, "control"},
		{"invalid UTF-8 tag value", gateway.Point{Measurement: "m", Tags: []gateway.Tag{{Key: "a", Value: "\xff"}}, Fields: ok, Time: t0}, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendPoint([]byte("keep"), tt.p)
			if string(got) != "keep" {
				t.Errorf("appended %q", got)
			}
			if !errors.Is(err, ErrInvalidPoint) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrInvalidPoint mentioning %q", err, tt.want)
			}
		})
	}
}

// typicalPoint is what the pipeline writes for one sample set: six tags,
// three fields.
func typicalPoint() gateway.Point {
	return gateway.Point{
		Measurement: "air",
		Tags: []gateway.Tag{
			{Key: "dev_eui", Value: "a81758fffe0312ab"}, {Key: "device", Value: "school-3-classroom-12"}, {Key: "district", Value: "north"},
			{Key: "model", Value: "elsys-ers-co2"}, {Key: "site", Value: "school 3"}, {Key: "source", Value: "city-chirpstack"},
		},
		Fields: []gateway.Field{gateway.FloatField("co2", 612), gateway.FloatField("relativeHumidity", 41.5), gateway.FloatField("temperature", 21.37)},
		Time:   t0,
	}
}

func TestAppendPointAllocs(t *testing.T) {
	p := typicalPoint()
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { _, _ = AppendPoint(buf[:0], p) }); n != 0 {
		t.Fatalf("%v allocs per point, want 0", n)
	}
	p.Tags[0], p.Tags[5] = p.Tags[5], p.Tags[0] // unsorted: the stack sort
	if n := testing.AllocsPerRun(100, func() { _, _ = AppendPoint(buf[:0], p) }); n != 0 {
		t.Fatalf("%v allocs per unsorted point, want 0", n)
	}
}

func BenchmarkAppendPoint(b *testing.B) {
	p := typicalPoint()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = AppendPoint(buf[:0], p)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}
