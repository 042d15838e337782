package influx

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sensorgate/sensorgate/gateway"
)

// ErrInvalidPoint is wrapped by AppendPoint's errors: the point (or one of
// its fields) cannot be written as InfluxDB line protocol. It is a fault
// of whoever built the point (a decoder, the normalizer), so retrying
// cannot help; the message belongs in dead letters.
var ErrInvalidPoint = errors.New("influx: invalid point")

// InfluxDB 1.8 stores timestamps as int64 nanoseconds but reserves the two
// extreme values (models.MinNanoTime, models.MaxNanoTime).
var (
	minTime = time.Unix(0, math.MinInt64+2)
	maxTime = time.Unix(0, math.MaxInt64-1)
)

// AppendPoint appends p to dst as one line of InfluxDB line protocol,
// newline included, with a nanosecond timestamp, and returns the extended
// buffer. It does not allocate when dst has room.
//
// The bytes depend only on the point, so a redelivered uplink overwrites
// its earlier points instead of doubling them: tags are written sorted by
// key whatever their order in p, tags with empty values are left out
// (InfluxDB rejects them), floats use one canonical format, -0 is written
// as 0.
//
// A field that cannot be written (NaN or ±Inf, an empty key, the key
// "time", invalid UTF-8) is left out and reported in the error, which
// wraps ErrInvalidPoint; the line with the remaining fields is still
// appended, so the caller can store what is valid and dead-letter the
// message. When the point itself is invalid (no measurement, no valid
// field, bad tag, no or out-of-range time) nothing is appended: the
// returned buffer is dst. Callers tell the two apart by the returned
// length.
func AppendPoint(dst []byte, p gateway.Point) ([]byte, error) {
	start := len(dst)
	dst, err := appendName(dst, p.Measurement, measurementName)
	if err != nil {
		return dst[:start], pointError(p, "measurement", p.Measurement, err)
	}
	if p.Time.IsZero() {
		// Without a timestamp InfluxDB uses its arrival time, and a
		// redelivery would double the point.
		return dst[:start], fmt.Errorf("%w: measurement %q has no time", ErrInvalidPoint, p.Measurement)
	}
	if p.Time.Before(minTime) || p.Time.After(maxTime) {
		return dst[:start], fmt.Errorf("%w: measurement %q: time %s is outside InfluxDB's range (1677-09-21 to 2262-04-11)", ErrInvalidPoint, p.Measurement, p.Time.Format(time.RFC3339Nano))
	}

	// Tags: already sorted is the normal case (Point promises it) and costs
	// one pass; otherwise sort indices on the stack.
	sorted := true
	for i := 1; i < len(p.Tags); i++ {
		if p.Tags[i-1].Key >= p.Tags[i].Key {
			sorted = false
			break
		}
	}
	var order []int
	if !sorted {
		var stack [32]int
		if len(p.Tags) <= len(stack) {
			order = stack[:len(p.Tags)]
		} else {
			order = make([]int, len(p.Tags))
		}
		for i := range order {
			order[i] = i
		}
		// Insertion sort: points carry a handful of tags, and sort.Slice
		// would allocate its closure.
		for i := 1; i < len(order); i++ {
			for j := i; j > 0 && p.Tags[order[j]].Key < p.Tags[order[j-1]].Key; j-- {
				order[j], order[j-1] = order[j-1], order[j]
			}
		}
	}
	// Each name is checked as it is appended (one pass over its bytes); a
	// bad tag takes back the whole line.
	prev := ""
	for i := range p.Tags {
		t := p.Tags[i]
		if !sorted {
			t = p.Tags[order[i]]
		}
		if t.Value == "" {
			continue
		}
		dst = append(dst, ',')
		if dst, err = appendName(dst, t.Key, keyName); err != nil {
			return dst[:start], pointError(p, "tag key", t.Key, err)
		}
		if t.Key == "time" {
			return dst[:start], pointError(p, "tag key", t.Key, errTimeKey)
		}
		dst = append(dst, '=')
		if dst, err = appendName(dst, t.Value, keyName); err != nil {
			return dst[:start], pointError(p, "value of tag "+strconv.Quote(t.Key), t.Value, err)
		}
		if t.Key == prev {
			return dst[:start], pointError(p, "tag key", t.Key, errDuplicateTag)
		}
		prev = t.Key
	}

	var fieldErr error
	dropped := 0
	written := 0
	for i := range p.Fields {
		f := &p.Fields[i]
		mark := len(dst)
		if written == 0 {
			dst = append(dst, ' ')
		} else {
			dst = append(dst, ',')
		}
		dst, err = appendName(dst, f.Key, keyName)
		if err == nil {
			err = checkValue(f)
		}
		if err != nil {
			dst = dst[:mark]
			dropped++
			if fieldErr == nil {
				fieldErr = fmt.Errorf("%w: measurement %q: field %q: %w", ErrInvalidPoint, p.Measurement, f.Key, err)
			}
			continue
		}
		written++
		dst = append(dst, '=')
		switch f.Kind {
		case gateway.Float:
			dst = appendFloat(dst, f.F)
		case gateway.Int:
			dst = strconv.AppendInt(dst, f.I, 10)
			dst = append(dst, 'i')
		case gateway.Bool:
			dst = strconv.AppendBool(dst, f.B)
		case gateway.String:
			dst = append(dst, '"')
			dst = appendStringField(dst, f.S)
			dst = append(dst, '"')
		}
	}
	if written == 0 {
		if fieldErr != nil {
			return dst[:start], fmt.Errorf("%w: measurement %q has no valid field (first problem: %w)", ErrInvalidPoint, p.Measurement, fieldErr)
		}
		return dst[:start], fmt.Errorf("%w: measurement %q has no fields", ErrInvalidPoint, p.Measurement)
	}
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, p.Time.UnixNano(), 10)
	dst = append(dst, '\n')
	if dropped > 1 {
		fieldErr = fmt.Errorf("%w (and %d more fields left out)", fieldErr, dropped-1)
	}
	return dst, fieldErr
}

func pointError(p gateway.Point, what, s string, err error) error {
	return fmt.Errorf("%w: measurement %q: %s %q: %w", ErrInvalidPoint, p.Measurement, what, s, err)
}

var (
	errEmpty         = errors.New("empty")
	errControl       = errors.New("contains a control character (newline, tab, …)")
	errUTF8          = errors.New("is not valid UTF-8")
	errBackslash     = errors.New("has a backslash at its end or before a comma, space or equals sign, which line protocol cannot carry")
	errComment       = errors.New("starts with '#', which line protocol reads as a comment")
	errTimeKey       = errors.New(`"time" is reserved by InfluxDB`)
	errDuplicateTag  = errors.New("appears twice")
	errNaN           = errors.New("is NaN or infinite, which InfluxDB cannot store")
	errKind          = errors.New("has no valid kind")
	errStringNotUTF8 = errors.New("string value is not valid UTF-8")
)

// nameKind says which characters line protocol escapes in a name.
type nameKind uint8

const (
	measurementName nameKind = iota // comma, space
	keyName                         // tag key, tag value, field key: comma, equals, space
)

func special(c byte, k nameKind) bool {
	return c == ',' || c == ' ' || (c == '=' && k == keyName)
}

// checkName rejects names InfluxDB 1.8's parser would misread. Its scanner
// treats a backslash as escaping the next byte whatever that byte is, but
// unescapes only the characters above; so a backslash is safe only before
// an ordinary character. Control characters (a newline ends the line) and
// invalid UTF-8 (InfluxQL cannot name it) are refused outright.
func checkName(s string, k nameKind) error {
	if s == "" {
		return errEmpty
	}
	if k == measurementName && s[0] == '#' {
		return errComment
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return errControl
		}
		if c == '\\' && (i+1 == len(s) || special(s[i+1], k)) {
			return errBackslash
		}
		ascii = ascii && c < utf8.RuneSelf
	}
	if !ascii && !utf8.ValidString(s) {
		return errUTF8
	}
	return nil
}

// checkField reports why AppendPoint leaves f out, if it does.
func checkField(f *gateway.Field) error {
	if err := checkName(f.Key, keyName); err != nil {
		return err
	}
	return checkValue(f)
}

// checkValue checks what appendName does not: the reserved key and the
// value.
func checkValue(f *gateway.Field) error {
	if f.Key == "time" {
		return errTimeKey
	}
	switch f.Kind {
	case gateway.Float:
		if math.IsNaN(f.F) || math.IsInf(f.F, 0) {
			return errNaN
		}
	case gateway.Int, gateway.Bool:
	case gateway.String:
		if !utf8.ValidString(f.S) {
			return errStringNotUTF8
		}
	default:
		return errKind
	}
	return nil
}

// plain marks, per nameKind, the bytes a name may hold as they are: not
// escaped, not a backslash, not a control character, ASCII. Names are
// almost always made of these only, and then appendName is one pass of
// table lookups and a copy.
var plain = func() (t [2][256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		for k := range t {
			t[k][c] = c != '\\' && !special(byte(c), nameKind(k))
		}
	}
	return t
}()

// appendName appends s escaped, or returns an error (and a dst holding
// part of s) when checkName refuses it.
func appendName(dst []byte, s string, k nameKind) ([]byte, error) {
	tbl := &plain[k]
	for i := 0; i < len(s); i++ {
		if !tbl[s[i]] {
			if err := checkName(s, k); err != nil {
				return dst, err
			}
			return appendEscaped(dst, s, k), nil
		}
	}
	if s == "" {
		return dst, errEmpty
	}
	if k == measurementName && s[0] == '#' {
		return dst, errComment
	}
	return append(dst, s...), nil
}

func appendEscaped(dst []byte, s string, k nameKind) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		if special(s[i], k) {
			dst = append(dst, s[last:i]...)
			dst = append(dst, '\\', s[i])
			last = i + 1
		}
	}
	return append(dst, s[last:]...)
}

func appendStringField(dst []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			dst = append(dst, s[last:i]...)
			dst = append(dst, '\\', c)
			last = i + 1
		}
	}
	return append(dst, s[last:]...)
}

// appendFloat writes f the way encoding/json (and ECMAScript) do: plain
// decimals for 1e-6 ≤ |f| < 1e21, so readings stay readable in a capture,
// and the shortest exponent form beyond ("1e+21", "5e-7"), which InfluxDB
// accepts and which keeps huge or tiny values short. Either way it is the
// shortest text that parses back to exactly f, so equal values give equal
// bytes.
func appendFloat(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0') // also for -0: one reading, one encoding
	}
	abs := math.Abs(f)
	if abs >= 1e-6 && abs < 1e21 {
		return strconv.AppendFloat(dst, f, 'f', -1, 64)
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'e', -1, 64)
	// Trim the exponent's padding zero: "5e-07" → "5e-7".
	if n := len(dst) - start; n >= 4 && dst[len(dst)-4] == 'e' && dst[len(dst)-2] == '0' {
		dst[len(dst)-2] = dst[len(dst)-1]
		dst = dst[:len(dst)-1]
	}
	return dst
}
