package httpapi

import (
	"net/url"
	"strings"
	"testing"

	"github.com/sensorgate/sensorgate/devices"
)

// FuzzParsePage: any query string either is refused with an error or
// gives a page size within bounds, a cursor that reads back as given,
// and a search that matches what a lower-cased substring test matches.
func FuzzParsePage(f *testing.F) {
	for _, s := range []string{
		"", "limit=100", "limit=0", "limit=1000", "limit=1001", "limit=-1", "limit=1e3", "limit=%20",
		"cursor=1000000000000001", "cursor=1000000000000001&limit=10", "cursor=ABCDEF0123456789",
		"cursor=zz", "cursor=%00%00", "q=bin", "q=%C3%A9", "q=&limit=5", "limit=5&limit=7", "q=" + strings.Repeat("a", 300),
	} {
		f.Add(s, "bin-001234", "cayenne-lpp")
	}
	f.Fuzz(func(t *testing.T, raw, name, model string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		p, err := parsePage(v)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error")
			}
			return
		}
		if p.limit < 1 || p.limit > maxPageLimit {
			t.Fatalf("%q: limit %d", raw, p.limit)
		}
		if c := v.Get("cursor"); c != "" && p.cursor.String() != strings.ToLower(c) {
			t.Fatalf("%q: cursor %s", raw, p.cursor)
		}
		if len(p.search) > maxQueryLen {
			t.Fatalf("%q: search of %d bytes", raw, len(p.search))
		}
		d := devices.Device{Name: name, Model: model}
		want := strings.Contains(asciiLower(name), asciiLower(string(p.search))) ||
			strings.Contains(asciiLower(model), asciiLower(string(p.search))) ||
			strings.Contains(d.EUI.String(), asciiLower(string(p.search)))
		if got := p.search.Match(&d); got != want {
			t.Fatalf("search %q over %q/%q: %v, want %v", p.search, name, model, got, want)
		}
	})
}

// asciiLower lowers ASCII letters byte by byte, leaving any other byte
// (valid UTF-8 or not) as it is.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
