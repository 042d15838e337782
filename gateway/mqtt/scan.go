package mqtt

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// jsonScanner reads one JSON document in a single pass, checking all of
// it and handing the feed parsers the values they ask for. The ChirpStack
// v4 and The Things Stack parsers use it instead of encoding/json, whose
// reflection costs about half the CPU of a message; they read only the
// fields an Uplink needs and skip the rest, which is still checked.
//
// It accepts exactly what encoding/json accepts and decodes like
// json.Unmarshal into the reference parsers' structs (reference_test.go),
// because dead letters, golden files and redelivered messages must not
// change with the parser (a differential fuzz test holds the two
// together):
//   - a key matches a field name exactly, else case-insensitively with
//     Unicode folding, as encoding/json matches struct fields;
//   - a repeated key decodes into the same target again: objects and maps
//     merge, arrays decode into the elements already there;
//   - null leaves strings, numbers and objects as they were, and empties
//     maps, arrays and optional objects;
//   - invalid UTF-8 and unpaired surrogates in strings become U+FFFD;
//   - nesting deeper than 10000 is invalid;
//   - a value of the wrong type is reported with its field path, but only
//     if the whole document is valid JSON: a syntax error anywhere wins.
//
// Strings are substrings of one copy of the message where they need no
// unescaping, so most fields cost no allocation.
type jsonScanner struct {
	s     string // the document
	i     int    // next byte to read
	depth int    // objects and arrays open at i
	bad   bool   // the document is not valid JSON: reading has stopped
	// prefix is put before field paths in type errors, for a reader
	// that serves two fields (TTS uplink_message, uplink_normalized).
	prefix  string
	typeErr *jsonTypeError // the first value of the wrong type
	buf     []byte         // scratch for unescaping strings
}

// maxJSONDepth is encoding/json's nesting limit; deeper is a syntax error
// there, so it is one here too.
const maxJSONDepth = 10000

// jsonTypeError is a value of the wrong type, worded as jsonError words
// encoding/json's UnmarshalTypeError.
type jsonTypeError struct {
	field string // dotted path of struct fields; "" for the document
	want  string // "an object", "a string", …
	got   string // JSON kind: "object", "number", "number 1e999", …
}

func (e *jsonTypeError) Error() string {
	field := e.field
	if field == "" {
		field = "the message"
	}
	return field + ": want " + e.want + ", got a JSON " + e.got
}

// newScanner starts reading payload. The strings it returns share
// payload's memory instead of a copy (a ~1 KB allocation and copy per
// message), which holds because Parse's callers hand the payload over
// and never write to it again (see Parser.Parse): the Uplink keeps it as
// Raw anyway. Unescaped strings are copies.
func newScanner(payload []byte) jsonScanner {
	return jsonScanner{s: unsafe.String(unsafe.SliceData(payload), len(payload))}
}

// finish checks that nothing but whitespace follows the document and
// returns encoding/json's verdict on it: a syntax error, else the first
// type error, else nil.
func (sc *jsonScanner) finish() error {
	if !sc.bad {
		sc.ws()
		if sc.i != len(sc.s) {
			sc.fail()
		}
	}
	if sc.bad {
		return jsonSyntaxError(sc.s)
	}
	if sc.typeErr != nil {
		return sc.typeErr
	}
	return nil
}

// jsonSyntaxError words the error of an invalid document. The scanner
// knows that it is invalid, not how encoding/json says so; dead letters
// have always carried encoding/json's wording (offset and character), so
// this rare path asks it.
func jsonSyntaxError(doc string) error {
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		return jsonError(err)
	}
	// Unreachable while both agree, which the differential fuzz test checks.
	return errors.New("invalid JSON")
}

func (sc *jsonScanner) fail() {
	sc.bad = true
	sc.i = len(sc.s)
}

func (sc *jsonScanner) ws() {
	for sc.i < len(sc.s) {
		switch sc.s[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

// peek returns the first byte of the next value, skipping whitespace; 0
// at the end of the document or after a syntax error.
func (sc *jsonScanner) peek() byte {
	if sc.bad {
		return 0
	}
	sc.ws()
	if sc.i >= len(sc.s) {
		return 0
	}
	return sc.s[sc.i]
}

// mismatch records a value of the wrong type for field (the first one
// only, as encoding/json reports) and skips it.
func (sc *jsonScanner) mismatch(field, want string) {
	if sc.typeErr == nil && !sc.bad {
		got := "number"
		switch sc.peek() {
		case '{':
			got = "object"
		case '[':
			got = "array"
		case '"':
			got = "string"
		case 't', 'f':
			got = "bool"
		}
		// A copy, so that field does not escape: readMembers passes paths
		// in one slice with the pointers its values go to, and escape
		// analysis would move every message's struct to the heap with
		// them. It runs once per message at most.
		path := strings.Clone(field)
		if sc.prefix != "" {
			path = sc.prefix + field
		}
		sc.typeErr = &jsonTypeError{field: path, want: want, got: got}
	}
	sc.skip()
}

// Objects and arrays are read with loops like
//
//	for key, ok := sc.openObject(); ok; key, ok = sc.nextKey() { read or skip the value }
//	for ok := sc.openArray(); ok; ok = sc.nextElem() { read or skip the value }
//
// which stop at the closing bracket or at a syntax error.

// openObject consumes '{' (peek returned it) and the first key and colon;
// ok is false for an empty object.
func (sc *jsonScanner) openObject() (key string, ok bool) {
	sc.i++
	if sc.depth++; sc.depth > maxJSONDepth {
		sc.fail()
		return "", false
	}
	if sc.peek() == '}' {
		sc.i++
		sc.depth--
		return "", false
	}
	return sc.key()
}

// nextKey consumes the comma and the next key and colon; ok is false at
// the closing brace, which it consumes.
func (sc *jsonScanner) nextKey() (key string, ok bool) {
	switch sc.peek() {
	case ',':
		sc.i++
		sc.ws()
		return sc.key()
	case '}':
		sc.i++
		sc.depth--
		return "", false
	}
	sc.fail()
	return "", false
}

func (sc *jsonScanner) key() (string, bool) {
	if sc.peek() != '"' {
		sc.fail()
		return "", false
	}
	k, ok := sc.str()
	if !ok {
		return "", false
	}
	if sc.peek() != ':' {
		sc.fail()
		return "", false
	}
	sc.i++
	return k, true
}

// openArray consumes '[' (peek returned it); ok is false for an empty
// array.
func (sc *jsonScanner) openArray() bool {
	sc.i++
	if sc.depth++; sc.depth > maxJSONDepth {
		sc.fail()
		return false
	}
	if sc.peek() == ']' {
		sc.i++
		sc.depth--
		return false
	}
	return !sc.bad
}

// nextElem consumes the comma before the next element; false at the
// closing bracket, which it consumes.
func (sc *jsonScanner) nextElem() bool {
	switch sc.peek() {
	case ',':
		sc.i++
		return true
	case ']':
		sc.i++
		sc.depth--
		return false
	}
	sc.fail()
	return false
}

// skip reads over one value of any kind, checking it.
func (sc *jsonScanner) skip() {
	switch sc.peek() {
	case '{':
		for _, ok := sc.openObject(); ok; _, ok = sc.nextKey() {
			sc.skip()
		}
	case '[':
		for ok := sc.openArray(); ok; ok = sc.nextElem() {
			sc.skip()
		}
	case '"':
		sc.strEnd()
	case 't':
		sc.literal("true")
	case 'f':
		sc.literal("false")
	case 'n':
		sc.literal("null")
	default:
		sc.number()
	}
}

// raw reads one value and returns its JSON text, as encoding/json hands
// it to an Unmarshaler.
func (sc *jsonScanner) raw() string {
	sc.peek()
	start := sc.i
	sc.skip()
	if sc.bad {
		return ""
	}
	return sc.s[start:sc.i]
}

func (sc *jsonScanner) literal(lit string) bool {
	if !strings.HasPrefix(sc.s[sc.i:], lit) {
		sc.fail()
		return false
	}
	sc.i += len(lit)
	return true
}

// number reads a number as RFC 8259 spells it:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (sc *jsonScanner) number() {
	s, i := sc.s, sc.i
	digits := func() bool {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		digits()
	default:
		sc.fail()
		return
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			sc.fail()
			return
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			sc.fail()
			return
		}
	}
	sc.i = i
}

// strEnd reads over a string (at its opening quote), checking it; escaped
// reports backslash escapes, ascii that every byte is ASCII.
func (sc *jsonScanner) strEnd() (end int, escaped, ascii bool) {
	s := sc.s
	ascii = true
	for i := sc.i + 1; i < len(s); i++ {
		for i < len(s) && strPlain[s[i]] {
			i++
		}
		if i == len(s) {
			break
		}
		switch c := s[i]; {
		case c == '"':
			sc.i = i + 1
			return i, escaped, ascii
		case c == '\\':
			escaped = true
			i++
			if i >= len(s) {
				break
			}
			switch s[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				continue
			case 'u':
				if i+4 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) && isHex(s[i+3]) && isHex(s[i+4]) {
					i += 4
					continue
				}
			}
			sc.fail()
			return 0, false, false
		case c < 0x20:
			sc.fail()
			return 0, false, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	sc.fail()
	return 0, false, false
}

// strPlain marks the bytes a string body holds as they are: printable
// ASCII but the quote and the backslash. strEnd steps over runs of them
// with one table lookup a byte.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// str reads a string (at its opening quote) and returns its value.
func (sc *jsonScanner) str() (string, bool) {
	start := sc.i + 1
	end, escaped, ascii := sc.strEnd()
	if sc.bad {
		return "", false
	}
	v := sc.s[start:end]
	if !escaped && (ascii || utf8.ValidString(v)) {
		return v, true
	}
	return sc.unquote(v), true
}

// unquote decodes the escapes of a checked string body, replacing
// invalid UTF-8 and unpaired surrogates with U+FFFD as encoding/json does.
func (sc *jsonScanner) unquote(v string) string {
	b := sc.buf[:0]
	for i := 0; i < len(v); {
		c := v[i]
		switch {
		case c == '\\':
			switch e := v[i+1]; e {
			case 'u':
				r := hex4(v[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if i+6 <= len(v) && v[i] == '\\' && v[i+1] == 'u' {
						r2 = hex4(v[i+2:])
					}
					if d := utf16.DecodeRune(r, r2); d != unicode.ReplacementChar {
						r = d
						i += 6
					} else {
						r = unicode.ReplacementChar
					}
				}
				b = utf8.AppendRune(b, r)
				continue
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			default: // '"', '\\', '/'
				c = e
			}
			b = append(b, c)
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(v[i:])
			b = utf8.AppendRune(b, r) // RuneError for an invalid byte
			i += size
		}
	}
	sc.buf = b
	return string(b)
}

// hex4 reads the four hex digits strEnd checked.
func hex4(s string) rune {
	n, _ := strconv.ParseUint(s[:4], 16, 32)
	return rune(n)
}

// fieldKey returns the name among names that key selects the way
// encoding/json selects a struct field: the exact name, else one equal
// under Unicode case folding; "" if none. No two names of one object
// fold to the same string, so the order of names does not matter.
func fieldKey(key string, names ...string) string {
	if i := fieldIndex(key, names); i >= 0 {
		return names[i]
	}
	return ""
}

// fieldIndex is fieldKey's index into names, -1 if none.
func fieldIndex(key string, names []string) int {
	for i, n := range names {
		if key == n {
			return i
		}
	}
	ascii := true
	for i := 0; i < len(key); i++ {
		ascii = ascii && key[i] < utf8.RuneSelf
	}
	for i, n := range names {
		// ASCII folds to ASCII byte for byte, so an ASCII key can only
		// match a name of its own length; a longer key can, if it holds a
		// multi-byte rune folding to ASCII (U+212A KELVIN SIGN to k). A
		// shorter one cannot. Most keys of a feed are ones no reader
		// wants, so this check is what they cost.
		if (len(key) == len(n) || len(key) > len(n) && !ascii) && strings.EqualFold(key, n) {
			return i
		}
	}
	return -1
}

// member is one member of an object that readMembers reads: its key, its
// path for a type error, and where the value goes (one of str, num and
// strs), or read, which reads it. Feeds name the same things with
// different keys, so readers list members rather than repeat a switch
// per object.
type member struct {
	key, path string
	str       *string
	num       *number
	strs      *map[string]string
	read      func()
}

func stringMember(key, path string, dst *string) member {
	return member{key: key, path: path, str: dst}
}
func numberMember(key string, dst *number) member { return member{key: key, num: dst} }
func stringMapMember(key, path string, dst *map[string]string) member {
	return member{key: key, path: path, strs: dst}
}
func readMember(key string, read func()) member { return member{key: key, read: read} }

// readMembers reads the object at field into members, each value into
// the member its key selects (fieldKey's rules); the rest is skipped.
func (sc *jsonScanner) readMembers(field string, members ...member) {
	// An array, not a slice: a store through a slice would make escape
	// analysis move the members, and with them the message's struct, to
	// the heap. No reader lists more than 16.
	var keys [16]string
	for i := range members {
		keys[i] = members[i].key
	}
	for key, ok := sc.structOpen(field); ok; key, ok = sc.nextKey() {
		i := fieldIndex(key, keys[:len(members)])
		switch {
		case i < 0:
			sc.skip()
		case members[i].str != nil:
			sc.setString(members[i].str, members[i].path)
		case members[i].num != nil:
			sc.setNumber(members[i].num)
		case members[i].strs != nil:
			sc.setStringMap(members[i].strs, members[i].path)
		default:
			members[i].read()
		}
	}
}

// Typed readers. Each reads one value into its target as json.Unmarshal
// would into a field of that Go type; field is the path for a type error.

// structOpen starts reading an object into a struct: ok is false (and the
// value consumed) for null, which leaves a struct as it was, for a value
// that is not an object, and for {}.
func (sc *jsonScanner) structOpen(field string) (key string, ok bool) {
	switch sc.peek() {
	case '{':
		return sc.openObject()
	case 'n':
		sc.literal("null")
	default:
		sc.mismatch(field, "an object")
	}
	return "", false
}

// setString reads a string; null leaves dst as it was.
func (sc *jsonScanner) setString(dst *string, field string) {
	switch sc.peek() {
	case '"':
		if v, ok := sc.str(); ok {
			*dst = v
		}
	case 'n':
		sc.literal("null")
	default:
		sc.mismatch(field, "a string")
	}
}

// setNumber reads any value into a number, which takes its JSON text as
// number.UnmarshalJSON does.
func (sc *jsonScanner) setNumber(dst *number) {
	if raw := sc.raw(); !sc.bad {
		dst.read(raw)
	}
}

// setStringMap reads an object of strings; null empties the map, and a
// repeated key adds to it.
func (sc *jsonScanner) setStringMap(dst *map[string]string, field string) {
	switch sc.peek() {
	case '{':
		if *dst == nil {
			*dst = make(map[string]string)
		}
		m := *dst
		for key, ok := sc.openObject(); ok; key, ok = sc.nextKey() {
			var v string
			sc.setString(&v, field)
			m[key] = v
		}
	case 'n':
		if sc.literal("null") {
			*dst = nil
		}
	default:
		sc.mismatch(field, "an object")
	}
}

// setAnyMap reads an object of any JSON values; null empties the map, and
// a repeated key adds to it.
func (sc *jsonScanner) setAnyMap(dst *map[string]any, field string) {
	switch sc.peek() {
	case '{':
		if *dst == nil {
			*dst = make(map[string]any)
		}
		sc.anyMembers(*dst, field)
	case 'n':
		if sc.literal("null") {
			*dst = nil
		}
	default:
		sc.mismatch(field, "an object")
	}
}

func (sc *jsonScanner) anyMembers(m map[string]any, field string) {
	for key, ok := sc.openObject(); ok; key, ok = sc.nextKey() {
		m[key] = sc.anyValue(field)
	}
}

// anyValue reads a value as encoding/json does into an interface:
// map[string]any, []any, string, float64, bool or nil. A number beyond
// float64 is a type error of field (encoding/json's, too).
func (sc *jsonScanner) anyValue(field string) any {
	switch sc.peek() {
	case '{':
		m := make(map[string]any)
		sc.anyMembers(m, field)
		return m
	case '[':
		a := make([]any, 0)
		for ok := sc.openArray(); ok; ok = sc.nextElem() {
			a = append(a, sc.anyValue(field))
		}
		return a
	case '"':
		v, _ := sc.str()
		return v
	case 't':
		return sc.literal("true")
	case 'f':
		sc.literal("false")
		return false
	case 'n':
		sc.literal("null")
		return nil
	}
	start := sc.i
	sc.number()
	if sc.bad {
		return nil
	}
	f, err := strconv.ParseFloat(sc.s[start:sc.i], 64)
	if err != nil {
		if sc.typeErr == nil {
			if sc.prefix != "" {
				field = sc.prefix + field
			}
			sc.typeErr = &jsonTypeError{field: field, want: "a number", got: "number " + sc.s[start:sc.i]}
		}
		return nil
	}
	return f
}

// readSlice reads an array into *s element by element, as encoding/json
// fills a slice: into the elements already there (a repeated key), then
// into new ones; null empties the slice.
func readSlice[T any](sc *jsonScanner, s *[]T, field string, elem func(*T)) {
	switch sc.peek() {
	case '[':
		cur, n := *s, 0
		if cur == nil {
			// Room for a few gateways or ids at once. It does not show:
			// encoding/json keeps every element it wrote (it grows a
			// slice only when it is full), and so does this.
			cur = make([]T, 0, 4)
		}
		for ok := sc.openArray(); ok; ok = sc.nextElem() {
			if n == len(cur) {
				if n < cap(cur) {
					cur = cur[:n+1]
				} else {
					var zero T
					cur = append(cur, zero)
				}
			}
			elem(&cur[n])
			n++
		}
		if n == 0 {
			cur = []T{}
		}
		*s = cur[:n]
	case 'n':
		if sc.literal("null") {
			*s = nil
		}
	default:
		sc.mismatch(field, "an array")
	}
}

// readPointer reads an optional object: null sets *p to nil, an object
// decodes into *p (allocated if nil).
func readPointer[T any](sc *jsonScanner, p **T, field string, read func(*T)) {
	switch sc.peek() {
	case '{':
		if *p == nil {
			*p = new(T)
		}
		read(*p)
	case 'n':
		if sc.literal("null") {
			*p = nil
		}
	default:
		sc.mismatch(field, "an object")
	}
}
