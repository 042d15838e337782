package mqtt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

// Time formats of generic JSON messages (JSONConfig.TimeFormat).
const (
	TimeRFC3339 = "rfc3339"
	TimeUnix    = "unix"
	TimeUnixMS  = "unix_ms"
	TimeUnixNS  = "unix_ns"
)

// jsonSpec is a JSONConfig checked and split once, so parsing a message
// does no string work on the configuration.
type jsonSpec struct {
	topicSegment int // DeviceID "topic:N"; -1 when DeviceID is a path
	devicePath   string
	timePath     string
	timeFormat   string
	objectPath   string
}

// compileJSONConfig checks a generic JSON mapping.
func compileJSONConfig(c JSONConfig) (jsonSpec, error) {
	s := jsonSpec{topicSegment: -1, timePath: c.Time, timeFormat: c.TimeFormat, objectPath: c.Object}
	var errs []error
	switch {
	case c.DeviceID == "":
		errs = append(errs, errors.New(`json.device_id missing: say where the device id is, "topic:N" (Nth topic segment, from 0) or a JSON path like "meta.dev_eui"`))
	case strings.HasPrefix(c.DeviceID, "topic:"):
		n, err := strconv.Atoi(strings.TrimPrefix(c.DeviceID, "topic:"))
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("json.device_id %q: want topic:N with N a topic segment number from 0", c.DeviceID))
		}
		s.topicSegment = n
	default:
		s.devicePath = c.DeviceID
	}
	switch c.TimeFormat {
	case "":
		s.timeFormat = TimeRFC3339
	case TimeRFC3339, TimeUnix, TimeUnixMS, TimeUnixNS:
	default:
		errs = append(errs, fmt.Errorf("json.time_format %q: want %s, %s, %s or %s", c.TimeFormat, TimeRFC3339, TimeUnix, TimeUnixMS, TimeUnixNS))
	}
	return s, errors.Join(errs...)
}

// parseJSON reads a message a sensor published as JSON itself, as
// Config.JSON describes it. Object is the selected object with numbers as
// float64 (the pipeline lifts values with Config.Map). A device id that is
// an EUI sets DevEUI, anything else DeviceName only. A message without a
// value (or null) at the time path gets the local clock (LocalTime); a time
// of 1970 or before is a bad_time error. ID is the device
// id and the time in Unix nanoseconds, so a redelivery gets the same key.
func parseJSON(p *Parser, topic string, payload []byte) (gateway.Uplink, error) {
	spec := &p.json
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber() // keep unix_ns times exact; converted to float64 below
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		return gateway.Uplink{}, fmt.Errorf("not a JSON object: %w", jsonError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return gateway.Uplink{}, errors.New("not a JSON object: more data after the first JSON value")
	}
	if root == nil {
		return gateway.Uplink{}, errors.New("not a JSON object: null")
	}
	up := gateway.Uplink{Radio: gateway.Radio{DR: -1}}

	id, err := spec.deviceID(topic, root)
	if err != nil {
		return gateway.Uplink{}, err
	}
	if eui, err := devices.ParseEUI(id); err == nil {
		up.DevEUI = eui
		id = eui.String() // one ID whatever case the sensor used
	} else {
		up.DeviceName = id
	}

	if up.Time, err = spec.time(root); err != nil {
		return gateway.Uplink{}, err
	}
	if up.Time.IsZero() {
		up.Time, up.LocalTime = p.localTime(), true
	}
	up.ID = id + ":" + strconv.FormatInt(up.Time.UnixNano(), 10)

	obj := root
	if spec.objectPath != "" {
		v, ok := lookupJSONPath(root, spec.objectPath)
		if !ok {
			return gateway.Uplink{}, fmt.Errorf("object %q: not in the message: fix json.object or the sensor's output", spec.objectPath)
		}
		if obj, ok = v.(map[string]any); !ok {
			return gateway.Uplink{}, fmt.Errorf("object %q: want a JSON object, got %s", spec.objectPath, jsonKind(v))
		}
	}
	if err := floatNumbers(obj); err != nil {
		return gateway.Uplink{}, err
	}
	up.Object = obj
	return up, nil
}

// deviceID returns the configured device id of one message.
func (s *jsonSpec) deviceID(topic string, root map[string]any) (string, error) {
	if s.topicSegment >= 0 {
		seg, n := "", 0
		for part := range strings.SplitSeq(topic, "/") {
			if n == s.topicSegment {
				seg = part
				break
			}
			n++
		}
		if seg == "" {
			return "", fmt.Errorf("device id: topic %q has no segment %d (json.device_id topic:%d)", truncate(topic, 80), s.topicSegment, s.topicSegment)
		}
		return seg, nil
	}
	v, ok := lookupJSONPath(root, s.devicePath)
	if !ok {
		return "", fmt.Errorf("device id %q: not in the message", s.devicePath)
	}
	switch x := v.(type) {
	case string:
		if x != "" {
			return x, nil
		}
	case json.Number:
		return x.String(), nil
	}
	return "", fmt.Errorf("device id %q: want a non-empty string or number, got %s", s.devicePath, jsonKind(v))
}

// time returns the message time, or the zero time if there is none.
func (s *jsonSpec) time(root map[string]any) (time.Time, error) {
	if s.timePath == "" {
		return time.Time{}, nil
	}
	v, ok := lookupJSONPath(root, s.timePath)
	if !ok || v == nil {
		return time.Time{}, nil
	}
	field := "time " + strconv.Quote(s.timePath)
	var t time.Time
	var err error
	switch x := v.(type) {
	case string:
		if s.timeFormat == TimeRFC3339 {
			t, err = parseTime(field, x)
		} else {
			t, err = unixTime(field, x, s.timeFormat)
		}
	case json.Number:
		if s.timeFormat == TimeRFC3339 {
			return time.Time{}, fmt.Errorf("%s: got the number %s but json.time_format is rfc3339: set unix, unix_ms or unix_ns", field, x)
		}
		t, err = unixTime(field, string(x), s.timeFormat)
	default:
		return time.Time{}, fmt.Errorf("%s: want a string or number, got %s", field, jsonKind(v))
	}
	if err != nil {
		return time.Time{}, err
	}
	// Times must fit int64 nanoseconds (InfluxDB, and the ID) and come
	// from a clock that was set.
	return checkTime(field, t)
}

// unixTime reads a Unix time in seconds, milliseconds or nanoseconds;
// integers are exact, fractions go through float64.
func unixTime(field, s, format string) (time.Time, error) {
	unit := map[string]int64{TimeUnix: 1e9, TimeUnixMS: 1e6, TimeUnixNS: 1}[format]
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		switch format {
		case TimeUnix:
			return time.Unix(n, 0).UTC(), nil
		case TimeUnixMS:
			return time.UnixMilli(n).UTC(), nil
		}
		return time.Unix(0, n).UTC(), nil
	}
	if t, ok := decimalUnixTime(s, unit); ok {
		return t, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: not a %s time", field, truncate(s, 40), format)
	}
	ns := f * float64(unit)
	if !(ns > -9.2e18 && ns < 9.2e18) { // also false for NaN
		return time.Time{}, fmt.Errorf("%s %q: out of range", field, truncate(s, 40))
	}
	return time.Unix(0, int64(ns)).UTC(), nil
}

// decimalUnixTime reads "1717243200.25" exactly (float64 would give
// .249999872), keeping fraction digits down to the nanosecond.
func decimalUnixTime(s string, unit int64) (time.Time, bool) {
	whole, frac, ok := strings.Cut(s, ".")
	if !ok || frac == "" || strings.HasPrefix(whole, "-") {
		return time.Time{}, false
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > math.MaxInt64/unit {
		return time.Time{}, false
	}
	var fns, scale int64 = 0, unit
	for _, c := range []byte(frac) {
		if c < '0' || c > '9' {
			return time.Time{}, false
		}
		if scale >= 10 {
			scale /= 10
			fns += int64(c-'0') * scale
		}
	}
	ns := w * unit
	if ns > math.MaxInt64-fns {
		return time.Time{}, false
	}
	return time.Unix(0, ns+fns).UTC(), true
}

// lookupJSONPath finds "a.b" in nested objects; a key that itself contains
// dots is matched first.
func lookupJSONPath(m map[string]any, path string) (any, bool) {
	if v, ok := m[path]; ok {
		return v, true
	}
	var cur any = m
	for key := range strings.SplitSeq(path, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[key]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// floatNumbers replaces json.Number values by float64 in place, the type
// decoders and mappings expect from JSON.
func floatNumbers(v any) error {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if n, ok := e.(json.Number); ok {
				f, err := n.Float64()
				if err != nil {
					return fmt.Errorf("value %q: %s is out of range for a float64", k, truncate(string(n), 40))
				}
				x[k] = f
				continue
			}
			if err := floatNumbers(e); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if n, ok := e.(json.Number); ok {
				f, err := n.Float64()
				if err != nil {
					return fmt.Errorf("array value %s is out of range for a float64", truncate(string(n), 40))
				}
				x[i] = f
				continue
			}
			if err := floatNumbers(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonKind names a decoded JSON value's type for error messages.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
