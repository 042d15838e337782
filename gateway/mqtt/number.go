package mqtt

import (
	"fmt"
	"math"
	"strconv"
)

// number is a JSON number that feeds also send as a string: The Things
// Stack writes uint64 values such as settings.frequency as "868300000", and
// hand-written or older integrations quote other numbers too.
//
// UnmarshalJSON never fails, because encoding/json would report such an
// error without the field name; a bad value is kept and reported by the
// accessors, which know the field.
type number struct {
	f   float64
	set bool   // a number (or numeric string) was present
	bad string // the offending JSON text, if not a number
}

// UnmarshalJSON accepts a JSON number, a string holding one, or null.
func (n *number) UnmarshalJSON(b []byte) error {
	n.read(string(b))
	return nil
}

// read takes the JSON text of one value: a number, a string holding one,
// or null, which leaves n as it was. Anything else is kept as bad.
func (n *number) read(raw string) {
	if raw == "null" {
		return
	}
	s := raw
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		n.bad = truncate(raw, 40)
		return
	}
	n.f, n.set = f, true
}

// float returns the value; ok is false if the field was absent.
func (n number) asFloat(field string) (v float64, ok bool, err error) {
	if n.bad != "" {
		return 0, false, fmt.Errorf("%s: want a number, got %s", field, n.bad)
	}
	return n.f, n.set, nil
}

// uint returns the value as an integer in [0, max]; ok is false if the
// field was absent.
func (n number) asUint(field string, max uint64) (v uint64, ok bool, err error) {
	f, ok, err := n.asFloat(field)
	if err != nil || !ok {
		return 0, ok, err
	}
	if f < 0 || f > float64(max) || f != math.Trunc(f) {
		return 0, false, fmt.Errorf("%s: want an integer from 0 to %d, got %v", field, max, f)
	}
	return uint64(f), true, nil
}

// int returns the value as an integer in [min, max]; ok is false if the
// field was absent.
func (n number) asInt(field string, min, max int) (v int, ok bool, err error) {
	f, ok, err := n.asFloat(field)
	if err != nil || !ok {
		return 0, ok, err
	}
	if f < float64(min) || f > float64(max) || f != math.Trunc(f) {
		return 0, false, fmt.Errorf("%s: want an integer from %d to %d, got %v", field, min, max, f)
	}
	return int(f), true, nil
}

// truncate shortens s for an error message, so a megabyte of garbage does
// not end up in a log line.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
