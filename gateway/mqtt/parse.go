package mqtt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

// parseFunc turns one message of a feed format into an uplink. It fills
// everything except Source, Topic and Raw, which Parser.Parse sets the same
// way for every format.
type parseFunc func(p *Parser, topic string, payload []byte) (gateway.Uplink, error)

// parsers is the feed format table, keyed by the Format constants.
var parsers = map[string]parseFunc{
	FormatChirpStackV4: parseChirpStackV4,
	FormatChirpStackV3: parseChirpStackV3,
	FormatTTSV3:        parseTTS,
	FormatJSON:         parseJSON,
}

// Parser turns messages of one source's feed format into uplinks. It holds
// no I/O and is safe for concurrent use.
type Parser struct {
	source string
	format string
	parse  parseFunc
	json   jsonSpec
	now    func() time.Time
}

// NewParser returns the parser for cfg.Format (and, for generic JSON, the
// paths in cfg.JSON). now is the local clock, used only when a message
// carries no time; nil means time.Now. Tests and golden files pass a fixed
// clock so such messages parse deterministically.
func NewParser(cfg Config, now func() time.Time) (*Parser, error) {
	parse, ok := parsers[cfg.Format]
	if cfg.Format == FormatGatewayBridge {
		return nil, fmt.Errorf("mqtt: source %q: format %s carries raw LoRaWAN frames, which this package does not parse: build the Source WithMessageHandler (sensorgate's daemon supplies the frame handler)", cfg.Name, cfg.Format)
	}
	if !ok {
		return nil, fmt.Errorf("mqtt: source %q: unknown format %q: want one of %s", cfg.Name, cfg.Format, formatList())
	}
	if now == nil {
		now = time.Now
	}
	p := &Parser{source: cfg.Name, format: cfg.Format, parse: parse, now: now}
	if cfg.Format == FormatJSON {
		spec, err := compileJSONConfig(cfg.JSON)
		if err != nil {
			return nil, fmt.Errorf("mqtt: source %q: %w", cfg.Name, err)
		}
		p.json = spec
	}
	return p, nil
}

// Parse turns one message into an uplink with Source, Topic and Raw set.
// Raw is payload itself, not a copy: the caller must not reuse it. An
// error is a *ParseError, whose text names the format and the offending
// field, for the dead-letter detail.
//
// Where the topic names the device (ChirpStack's .../device/<DevEUI>/event/up,
// The Things Stack's .../devices/<device_id>/up), the message must name the
// same one: a broker's per-device ACLs authorize the topic, not the
// payload, so a device could otherwise write as another.
func (p *Parser) Parse(topic string, payload []byte) (gateway.Uplink, error) {
	if len(bytes.TrimSpace(payload)) == 0 {
		return gateway.Uplink{}, p.parseError(topic, fmt.Errorf("empty message on %q", truncate(topic, 80)))
	}
	up, err := p.parse(p, topic, payload)
	return p.done(topic, payload, up, err)
}

// ParseEvent is Parse for a message whose event the transport names
// rather than the topic (ChirpStack's HTTP integration: ?event=up,
// status, join, log, …): ChirpStack v4 reads it as that event; other
// formats tell their messages apart by content and parse it as Parse
// does. topic is only for the dead letter and the device check.
func (p *Parser) ParseEvent(event, topic string, payload []byte) (gateway.Uplink, error) {
	if len(bytes.TrimSpace(payload)) == 0 {
		return gateway.Uplink{}, p.parseError(topic, fmt.Errorf("empty message on %q", truncate(topic, 80)))
	}
	var (
		up  gateway.Uplink
		err error
	)
	if p.format == FormatChirpStackV4 {
		up, err = parseCSV4Event(p, event, payload)
	} else {
		up, err = p.parse(p, topic, payload)
	}
	return p.done(topic, payload, up, err)
}

// done completes what a parse function returned: the device check, the
// error's wording, Source, Topic and Raw.
func (p *Parser) done(topic string, payload []byte, up gateway.Uplink, err error) (gateway.Uplink, error) {
	if err == nil && up.Kind != gateway.KindIgnored {
		err = p.checkTopicDevice(topic, &up)
	}
	if err != nil {
		return gateway.Uplink{}, p.parseError(topic, err)
	}
	up.Source, up.Topic, up.Raw = p.source, topic, payload
	return up, nil
}

// ParseError is a message Parse refused: the dead-letter reason
// (malformed, bad_time or device_mismatch) and the DevEUI the topic names,
// if it names one, so the dead letter says which device sent it.
type ParseError struct {
	Reason gateway.Reason
	DevEUI devices.EUI // zero when the topic names no DevEUI
	err    error
}

func (e *ParseError) Error() string { return e.err.Error() }
func (e *ParseError) Unwrap() error { return e.err }

// DeadLetterReason is the reason the message's dead letter is kept under.
func (e *ParseError) DeadLetterReason() gateway.Reason { return e.Reason }

// DeadLetterOf is the dead letter of a message Parse refused with err: the
// reason and DevEUI a *ParseError carries (malformed otherwise), raw as
// the message. Every source that parses with these parsers keeps its
// refused messages this way.
func DeadLetterOf(source, topic string, raw []byte, err error) gateway.DeadLetter {
	dl := gateway.DeadLetter{Time: time.Now().UTC(), Source: source, Topic: topic, Reason: gateway.ReasonMalformed, Detail: err.Error(), Raw: raw}
	var pe *ParseError
	if errors.As(err, &pe) {
		dl.Reason = pe.Reason
		if !pe.DevEUI.IsZero() {
			dl.DevEUI = pe.DevEUI.String()
		}
	}
	return dl
}

// reasonError marks a parse error whose dead-letter reason is not
// malformed: the message is well-formed, but what it says cannot be used.
type reasonError struct {
	reason gateway.Reason
	err    error
}

func (e *reasonError) Error() string { return e.err.Error() }
func (e *reasonError) Unwrap() error { return e.err }

func (p *Parser) parseError(topic string, err error) *ParseError {
	pe := &ParseError{Reason: gateway.ReasonMalformed, err: fmt.Errorf("%s: %w", p.format, err)}
	var re *reasonError
	if errors.As(err, &re) {
		pe.Reason = re.reason
	}
	pe.DevEUI = p.topicEUI(topic)
	return pe
}

// topicDevice returns the device id the topic names by the feed's
// standard layout: ChirpStack application/<app>/device/<DevEUI>/event/<event>
// (v3 also .../rx), The Things Stack v3/<app>[@<tenant>]/devices/<device_id>/up
// (and .../up/normalized, .../join), generic JSON json.device_id "topic:N". ok is
// false for a topic in another layout, which names no device this parser
// can know of.
func (p *Parser) topicDevice(topic string) (id string, ok bool) {
	var rest, parent string
	switch p.format {
	case FormatChirpStackV4, FormatChirpStackV3:
		if rest, ok = strings.CutSuffix(topic, "/rx"); !ok {
			i := strings.LastIndex(topic, "/event/")
			if i < 0 || strings.IndexByte(topic[i+len("/event/"):], '/') >= 0 {
				return "", false
			}
			rest = topic[:i]
		}
		parent = "device"
	case FormatTTSV3:
		if rest, ok = strings.CutSuffix(topic, "/up"); !ok {
			if rest, ok = strings.CutSuffix(topic, "/up/normalized"); !ok {
				if rest, ok = strings.CutSuffix(topic, "/join"); !ok {
					return "", false
				}
			}
		}
		parent = "devices"
	case FormatJSON:
		if p.json.topicSegment < 0 {
			return "", false
		}
		id, err := p.json.deviceID(topic, nil)
		return id, err == nil
	default:
		return "", false
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return "", false
	}
	id, rest = rest[i+1:], rest[:i]
	if rest != parent && !strings.HasSuffix(rest, "/"+parent) {
		return "", false
	}
	return id, true
}

// topicEUI is the DevEUI the topic names, zero if it names none (The
// Things Stack's topics name the device id, not the DevEUI).
func (p *Parser) topicEUI(topic string) devices.EUI {
	if p.format == FormatTTSV3 {
		return devices.EUI{}
	}
	id, ok := p.topicDevice(topic)
	if !ok {
		return devices.EUI{}
	}
	e, err := parseEUI(id)
	if err != nil {
		return devices.EUI{}
	}
	return e
}

// checkTopicDevice refuses an uplink whose message names another device
// than its topic (reason device_mismatch). Generic JSON takes the device
// from the topic or from the message, never both, so it has nothing to
// compare.
func (p *Parser) checkTopicDevice(topic string, up *gateway.Uplink) error {
	if p.format == FormatJSON {
		return nil
	}
	id, ok := p.topicDevice(topic)
	if !ok {
		return nil
	}
	if p.format == FormatTTSV3 {
		if up.DeviceName == id {
			return nil
		}
		named := "none"
		if up.DeviceName != "" {
			named = strconv.Quote(truncate(up.DeviceName, 40))
		}
		return mismatch("the topic names device_id %q, end_device_ids.device_id %s", truncate(id, 40), named)
	}
	e, err := parseEUI(id)
	if err != nil {
		return mismatch("the topic names device %q, which is not a DevEUI; the message names %s", truncate(id, 40), up.DevEUI)
	}
	if e != up.DevEUI {
		return mismatch("the topic names device %s, the message %s", e, up.DevEUI)
	}
	return nil
}

func mismatch(format string, args ...any) error {
	return &reasonError{gateway.ReasonDeviceMismatch, fmt.Errorf(format+": a device publishes on its own topic only; check the broker's ACLs and which credentials the sender used", args...)}
}

// localTime is the fallback for messages without a time; LocalTime marks it.
func (p *Parser) localTime() time.Time { return p.now().UTC() }

func formatList() string {
	return strings.Join([]string{FormatChirpStackV4, FormatChirpStackV3, FormatTTSV3, FormatJSON, FormatGatewayBridge}, ", ")
}

// parseDevEUI reads a required DevEUI in either case.
func parseDevEUI(field, s string) (devices.EUI, error) {
	if s == "" {
		return devices.EUI{}, fmt.Errorf("%s missing: the message does not say which device sent it", field)
	}
	e, err := parseEUI(s)
	if err != nil {
		return devices.EUI{}, fmt.Errorf("%s: %w", field, err)
	}
	return e, nil
}

// parseEUI reads 16 hex digits, the form feeds send, without the
// allocations of devices.ParseEUI, which takes everything else: it also
// accepts separators, and words the error.
func parseEUI(s string) (devices.EUI, error) {
	var e devices.EUI
	if len(s) != 2*len(e) {
		return devices.ParseEUI(s)
	}
	for i := range e {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return devices.ParseEUI(s)
		}
		e[i] = hi<<4 | lo
	}
	return e, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// parseDevAddr reads an optional DevAddr (8 hex digits); "" is the zero
// address, which tells the pipeline to use the registry session's.
func parseDevAddr(field, s string) (devices.DevAddr, error) {
	if s == "" {
		return devices.DevAddr{}, nil
	}
	a, err := devices.ParseDevAddr(s)
	if err != nil {
		return a, fmt.Errorf("%s: %w", field, err)
	}
	return a, nil
}

// gatewayEUI normalizes a gateway EUI to lower-case hex; "" stays "".
func gatewayEUI(field, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	e, err := parseEUI(s)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	if len(s) == 16 && strings.IndexFunc(s, func(r rune) bool { return r >= 'A' && r <= 'F' }) < 0 {
		return s, nil // already the normal form: spare the allocation
	}
	return e.String(), nil
}

// decodeBase64 reads standard base64, padded or not (feeds differ).
func decodeBase64(field, s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	enc := base64.StdEncoding
	if len(s)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s %q: not base64: %w", field, truncate(s, 40), err)
	}
	return b, nil
}

// parseTime reads an RFC 3339 time with any fraction and offset
// ("2022-07-18T09:34:15.775023242+00:00") and returns it in UTC, so equal
// instants compare equal and encode identically. A time checkTime refuses
// is an error of reason bad_time.
func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: not an RFC 3339 time: %w", field, truncate(s, 40), err)
	}
	return checkTime(field, t.UTC())
}

// Feed times must be after 1970-01-01T00:00:00Z and fit InfluxDB's int64
// nanoseconds (up to 2262-04-11).
var (
	unixEpoch   = time.Unix(0, 0).UTC()
	maxFeedTime = time.Unix(0, math.MaxInt64).UTC()
)

// checkTime refuses a time no working clock stamps: 1970 or before (Go's
// zero time 0001-01-01T00:00:00Z, a negative Unix time: a clock never set)
// or past what InfluxDB can store. Such a message is a dead letter of
// reason bad_time rather than written at the local clock, which would
// pass a broken sender off as a working one; only a message without any
// time gets the local clock.
func checkTime(field string, t time.Time) (time.Time, error) {
	if !t.After(unixEpoch) || t.After(maxFeedTime) {
		return time.Time{}, &reasonError{gateway.ReasonBadTime, fmt.Errorf("%s %s: outside 1970..2262, so the sender's clock is unset or wrong: fix its time source", field, t.Format(time.RFC3339Nano))}
	}
	return t, nil
}

// earliest returns the earliest of the non-empty RFC 3339 times; ok is false
// if there is none.
func earliest(field string, times []string) (t time.Time, ok bool, err error) {
	for _, s := range times {
		if s == "" {
			continue
		}
		ti, err := parseTime(field, s)
		if err != nil {
			return time.Time{}, false, err
		}
		if !ok || ti.Before(t) {
			t, ok = ti, true
		}
	}
	return t, ok, nil
}

// counterID is the idempotency key for feeds without a message id: the
// device (EUI, or name when the feed has no EUI) and the frame counter.
// Frame counters restart when a device rejoins, so the key is unique within
// a session only; points are also keyed by time, which differs.
func counterID(eui devices.EUI, name string, fcnt uint32) string {
	dev := name
	if !eui.IsZero() || name == "" {
		dev = eui.String()
	}
	return dev + ":" + strconv.FormatUint(uint64(fcnt), 10)
}

// nilIfEmpty keeps Uplink.Tags nil when the feed sent no tags or {}.
func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// frameFields reads FCnt and FPort. HasFCnt and HasFPort report whether the
// message carried the field: TTS and ChirpStack before late 2022 omit zero
// values, so an absent field means 0 by that server's rules, and the flags
// let a consumer tell a stated 0 from an omitted one.
func frameFields(up *gateway.Uplink, fcntField string, fcnt number, fportField string, fport number) error {
	c, ok, err := fcnt.asUint(fcntField, 1<<32-1)
	if err != nil {
		return err
	}
	up.FCnt, up.HasFCnt = uint32(c), ok
	pt, ok, err := fport.asUint(fportField, 255)
	if err != nil {
		return err
	}
	up.FPort, up.HasFPort = uint8(pt), ok
	return nil
}

// jsonError rewrites encoding/json's errors, which name Go types, into
// the message's own terms: the JSON field, what was expected and what came.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "the message"
		}
		return fmt.Errorf("%s: want %s, got a JSON %s", field, goKindName(te.Type), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d: %w", se.Offset, err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || err.Error() == "unexpected end of JSON input" {
		return fmt.Errorf("invalid JSON: truncated or empty: %w", err)
	}
	return err
}

// goKindName says what JSON a Go type is decoded from.
func goKindName(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Pointer:
		return goKindName(t.Elem())
	}
	return "a number"
}
