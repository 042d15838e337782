package decoders

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrUnknownQuantity is wrapped when a decoder or a network server names a
// path the catalogue does not have: the decoder is wrong, and writing the
// value anyway would grow the schema without review.
var ErrUnknownQuantity = errors.New("decoders: unknown quantity")

// ErrWrongType is wrapped when a value does not have its quantity's type.
var ErrWrongType = errors.New("decoders: wrong value type")

// Normalize reads one normalized-payload measurement object as The Things
// Stack defines it ({"air": {"temperature": 21.5}, "time": "…"}) into
// samples. As in The Things Stack, an unknown path or a wrong type rejects
// the whole object, while an out-of-range value drops only that field, with
// a warning.
//
// A measurement's time is its samples' own time. One of 1970 or before
// (Go's zero time among them, which would otherwise read as "no time") is
// dropped with a warning: the samples keep the uplink's time. CheckTimes
// then judges the rest against the uplink.
func Normalize(obj map[string]any) ([]Sample, []string, error) {
	var t time.Time
	var timeWarning []string
	if raw, ok := obj["time"]; ok {
		s, isStr := raw.(string)
		if !isStr {
			return nil, nil, fmt.Errorf("%w: time is %T, want an RFC 3339 string", ErrWrongType, raw)
		}
		var err error
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return nil, nil, fmt.Errorf("%w: time %q is not RFC 3339", ErrWrongType, s)
		}
		if !t.After(unixEpoch) {
			timeWarning = []string{fmt.Sprintf("time %s is 1970 or before: the device clock is unset; written at the uplink's time", s)}
			t = time.Time{}
		}
		t = t.UTC()
	}
	var samples []Sample
	if err := flatten("", obj, func(path string, v any) error {
		if path == "time" {
			return nil
		}
		val, ok := ValueOf(v)
		if !ok {
			if _, known := catalogue[path]; !known {
				return unknownQuantity(path)
			}
			return fmt.Errorf("%w: %s is %T (%v), want a number, a boolean or a string", ErrWrongType, path, v, v)
		}
		samples = append(samples, Sample{Quantity: path, Value: val, Time: t})
		return nil
	}); err != nil {
		return nil, nil, err
	}
	// Map iteration order is random; keep output deterministic.
	slices.SortFunc(samples, func(a, b Sample) int { return strings.Compare(a.Quantity, b.Quantity) })
	samples, warnings, err := Check(samples)
	if err != nil {
		return nil, nil, err
	}
	return samples, append(timeWarning, warnings...), nil
}

func flatten(prefix string, m map[string]any, emit func(string, any) error) error {
	for k, v := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			if _, isQuantity := catalogue[p]; !isQuantity {
				if err := flatten(p, sub, emit); err != nil {
					return err
				}
				continue
			}
		}
		if err := emit(p, v); err != nil {
			return err
		}
	}
	return nil
}

// Check validates samples against the catalogue and converts values to the
// quantity's type (any number type to float64; "true"/"false" to bool for
// boolean quantities). Unknown quantities and wrong types are errors;
// out-of-range values are dropped with a warning. The input slice is
// reused.
func Check(samples []Sample) ([]Sample, []string, error) {
	var warnings []string
	kept := samples[:0]
	for _, s := range samples {
		q, ok := catalogue[s.Quantity]
		if !ok {
			return nil, nil, unknownQuantity(s.Quantity)
		}
		v, err := coerce(q, s.Value)
		if err != nil {
			return nil, nil, err
		}
		if v.Kind == NumberValue && !q.InRange(v.Num) {
			warnings = append(warnings, fmt.Sprintf("%s: %v %s out of range, dropped", q.Path, v.Num, q.Unit))
			continue
		}
		if v.Kind == StringValue && !inEnum(q.Enum, v.Str) {
			warnings = append(warnings, fmt.Sprintf("%s: %q not one of %v, dropped", q.Path, v.Str, q.Enum))
			continue
		}
		s.Value = v
		kept = append(kept, s)
	}
	return kept, warnings, nil
}

func unknownQuantity(path string) error {
	return fmt.Errorf("%w %q: add it to the catalogue or fix the decoder's mapping", ErrUnknownQuantity, path)
}

func coerce(q *Quantity, v Value) (Value, error) {
	switch q.Kind {
	case Number:
		if v.Kind == NumberValue {
			return v, nil
		}
	case Bool:
		switch v.Kind {
		case BoolValue:
			return v, nil
		case StringValue:
			if b, err := strconv.ParseBool(v.Str); err == nil {
				return BoolVal(b), nil
			}
		}
	case Enum:
		if v.Kind == StringValue {
			return v, nil
		}
	}
	return Value{}, fmt.Errorf("%w: %s is %s (%v), want %s", ErrWrongType, q.Path, v.typeName(), v.Any(), q.Kind)
}

func inEnum(enum []string, s string) bool {
	if len(enum) == 0 {
		return true
	}
	for _, e := range enum {
		if e == s {
			return true
		}
	}
	return false
}
