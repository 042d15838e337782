package influx

import (
	"bytes"
	"strconv"
	"strings"
)

// A refusal names the first refused point's reason. For the two common
// ones it also says which lines of a request are suspect: a field type
// conflict every line of that measurement giving that field that type,
// max-values-per-tag every line of that series' tag value. Sending the
// suspect lines alone then settles, in one request, every record holding
// one: if InfluxDB refuses all of them, each such record is refused, even
// when its other lines were taken (a record is a message's points, and an
// uplink's air point may conflict while its uplink point is fine). If it
// takes any of them, the guess told nothing certain and halving decides.
// The guess is never trusted without that answer, so a misread message
// costs a request, not a record.

// suspectFunc reports whether a line is suspect.
type suspectFunc func(line []byte) bool

// suspects reads a refusal's message; nil when it names no suspect lines.
func suspects(msg string) suspectFunc {
	if m, f, typ, ok := parseConflict(msg); ok {
		return func(line []byte) bool { return lineFieldType(line, m, f) == typ }
	}
	if m, k, v, ok := parseMaxValues(msg); ok {
		return func(line []byte) bool { return lineHasTag(line, m, k, v) }
	}
	return nil
}

// parseConflict reads InfluxDB 1.8's `field type conflict: input field "F"
// on measurement "M" is type T, already exists as type U`: the refused
// lines give field F of measurement M type T. Names are quoted with %s,
// so one holding `" on measurement "` is misread (and the guess fails).
func parseConflict(msg string) (measurement, field, typ string, ok bool) {
	const (
		pre = `field type conflict: input field "`
		mid = `" on measurement "`
		is  = `" is type `
	)
	i := strings.Index(msg, pre)
	if i < 0 {
		return "", "", "", false
	}
	rest := msg[i+len(pre):]
	j := strings.Index(rest, mid)
	if j < 0 {
		return "", "", "", false
	}
	field, rest = rest[:j], rest[j+len(mid):]
	k := strings.Index(rest, is)
	if k < 0 {
		return "", "", "", false
	}
	measurement, rest = rest[:k], rest[k+len(is):]
	typ, _, _ = strings.Cut(rest, ",")
	switch typ {
	case "float", "integer", "unsigned", "string", "boolean":
		return measurement, field, typ, true
	}
	return "", "", "", false
}

// parseMaxValues reads InfluxDB 1.8's `max-values-per-tag limit exceeded
// (N/N): measurement="M" tag="K" value="V"` (Go-quoted): the refused
// lines are those of measurement M with tag K=V.
func parseMaxValues(msg string) (measurement, key, value string, ok bool) {
	i := strings.Index(msg, "max-values-per-tag limit exceeded")
	if i < 0 {
		return "", "", "", false
	}
	rest := msg[i:]
	var vals [3]string
	for n, name := range []string{"measurement=", "tag=", "value="} {
		j := strings.Index(rest, name)
		if j < 0 {
			return "", "", "", false
		}
		rest = rest[j+len(name):]
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return "", "", "", false
		}
		if vals[n], err = strconv.Unquote(q); err != nil {
			return "", "", "", false
		}
		rest = rest[len(q):]
	}
	return vals[0], vals[1], vals[2], true
}

// lineKey splits a line of line protocol into its measurement (escaped)
// and the rest after it: tags from a ',' or fields from a ' '. A
// backslash escapes the next byte, as InfluxDB's scanner reads it.
func lineKey(line []byte) (measurement, rest []byte) {
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case ',', ' ':
			return line[:i], line[i:]
		}
	}
	return line, nil
}

// unescape removes line protocol's backslashes.
func unescape(b []byte) string {
	if bytes.IndexByte(b, '\\') < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+1 < len(b) {
			i++
		}
		out = append(out, b[i])
	}
	return string(out)
}

// lineHasTag reports whether line is of measurement m with tag k=v.
func lineHasTag(line []byte, m, k, v string) bool {
	name, rest := lineKey(line)
	if unescape(name) != m {
		return false
	}
	for len(rest) > 0 && rest[0] == ',' {
		rest = rest[1:]
		end := len(rest)
		eq := -1
	tag:
		for i := 0; i < len(rest); i++ {
			switch rest[i] {
			case '\\':
				i++
			case '=':
				if eq < 0 {
					eq = i
				}
			case ',', ' ':
				end = i
				break tag
			}
		}
		if eq >= 0 && eq < end && unescape(rest[:eq]) == k && unescape(rest[eq+1:min(end, len(rest))]) == v {
			return true
		}
		rest = rest[min(end, len(rest)):]
	}
	return false
}

// lineFieldType returns the type InfluxDB gives field f of line when the
// line is of measurement m ("float", "integer", "unsigned", "string",
// "boolean"), or "" when it is not or has no such field.
func lineFieldType(line []byte, m, f string) string {
	name, rest := lineKey(line)
	if unescape(name) != m {
		return ""
	}
	// Skip the tags, to the first unescaped space.
	i := unescapedIndex(rest, ' ')
	if i >= len(rest) {
		return ""
	}
	fields := rest[i+1:]
	for len(fields) > 0 {
		// The key, to an unescaped '='.
		k := unescapedIndex(fields, '=')
		if k >= len(fields) {
			return ""
		}
		key, val := fields[:k], fields[k+1:]
		// The value, to a ',' or ' ' outside quotes.
		v := 0
		if len(val) > 0 && val[0] == '"' {
			for v = 1; v < len(val) && val[v] != '"'; v++ {
				if val[v] == '\\' {
					v++
				}
			}
			v = min(v+1, len(val))
		}
		for ; v < len(val) && val[v] != ',' && val[v] != ' '; v++ {
		}
		if unescape(key) == f {
			return valueType(val[:v])
		}
		if v >= len(val) || val[v] == ' ' {
			return ""
		}
		fields = val[v+1:]
	}
	return ""
}

// unescapedIndex is the index of the first c in b that no backslash
// escapes; len(b) or more when there is none.
func unescapedIndex(b []byte, c byte) int {
	i := 0
	for ; i < len(b) && b[i] != c; i++ {
		if b[i] == '\\' {
			i++
		}
	}
	return i
}

// valueType is the type of a field value as line protocol writes it.
func valueType(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	switch v[0] {
	case '"':
		return "string"
	case 't', 'T', 'f', 'F':
		return "boolean"
	}
	switch v[len(v)-1] {
	case 'i':
		return "integer"
	case 'u':
		return "unsigned"
	}
	return "float"
}
