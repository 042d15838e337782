package script

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/dop251/goja"
)

// Buffer, for codecs written for ChirpStack v4, whose runtime gives every
// codec Node's Buffer (through the "buffer" package for browsers). It is
// written for sensorgate from Node's documentation of the Buffer API.
//
// Every call runs in a fresh runtime, so whatever Buffer costs to set up
// is paid per call by every codec that uses it. A Buffer written in
// JavaScript costs a function object per method, a few hundred µs for
// the whole API in goja; here only the class is JavaScript (a Buffer
// must be a Uint8Array subclass, for index access, length and the
// typed-array methods), its static functions are native, and its methods
// come from a native object in its prototype chain that makes each one
// when a codec first reads it:
//
//	instance → Buffer.prototype → methods (native, lazy) → Uint8Array.prototype

// bufferClassSource evaluates to the Buffer class. new Buffer(...) is
// Node's deprecated form, which ChirpStack's own codec examples use
// (new Buffer(input.bytes)); typed-array methods (subarray, map, filter)
// construct through it too, with a length or (ArrayBuffer, offset,
// length).
const bufferClassSource = `(function () {
  "use strict";
  class Buffer extends Uint8Array {
    constructor(value, encodingOrOffset, length) {
      if (typeof value === "number") {
        super(value);
      } else if (value instanceof ArrayBuffer) {
        super(value, encodingOrOffset === undefined ? 0 : encodingOrOffset, length);
      } else {
        return Buffer.from(value, encodingOrOffset, length);
      }
    }
  }
  return Buffer;
})()`

var bufferClassProgram = sync.OnceValue(func() *goja.Program {
	return goja.MustCompile("buffer.js", bufferClassSource, true)
})

// bufferEnv is Buffer in one runtime.
type bufferEnv struct {
	rt      *goja.Runtime
	ctor    *goja.Object
	methods map[string]goja.Value // made so far, and any a codec set
}

// newBuffer builds Buffer in rt and returns its constructor.
func newBuffer(rt *goja.Runtime) (goja.Value, error) {
	v, err := rt.RunProgram(bufferClassProgram())
	if err != nil {
		return nil, err
	}
	b := &bufferEnv{rt: rt, ctor: v.(*goja.Object), methods: map[string]goja.Value{}}
	for name, fn := range bufferStatics {
		_ = b.ctor.Set(name, func(call goja.FunctionCall) goja.Value { return fn(b, call) })
	}
	_ = b.ctor.Set("poolSize", 8192)
	methods := rt.NewDynamicObject(bufferProto{b})
	if err := methods.SetPrototype(rt.Get("Uint8Array").(*goja.Object).Get("prototype").(*goja.Object)); err != nil {
		return nil, err
	}
	if err := b.ctor.Get("prototype").(*goja.Object).SetPrototype(methods); err != nil {
		return nil, err
	}
	return b.ctor, nil
}

// bufferProto is the native object holding Buffer's methods.
type bufferProto struct{ b *bufferEnv }

func (p bufferProto) Get(key string) goja.Value {
	if v, ok := p.b.methods[key]; ok {
		return v
	}
	if canon, ok := bufferAliases[key]; ok {
		v := p.Get(canon) // the same function under both names, as in Node
		p.b.methods[key] = v
		return v
	}
	impl, ok := bufferMethods[key]
	if !ok {
		return nil
	}
	b := p.b
	v := b.rt.ToValue(func(call goja.FunctionCall) goja.Value { return impl(b, call) })
	b.methods[key] = v
	return v
}

func (p bufferProto) Set(key string, val goja.Value) bool {
	p.b.methods[key] = val
	return true
}

func (p bufferProto) Has(key string) bool {
	_, made := p.b.methods[key]
	_, known := bufferMethods[key]
	_, alias := bufferAliases[key]
	return made || known || alias
}

func (p bufferProto) Delete(string) bool { return false }

// Keys is empty: like class methods, Buffer's are not enumerable.
func (p bufferProto) Keys() []string { return nil }

type bufferFunc func(b *bufferEnv, call goja.FunctionCall) goja.Value

var (
	bufferStatics map[string]bufferFunc
	bufferMethods map[string]bufferFunc
	bufferAliases = map[string]string{} // lower-case alias → method
)

func init() {
	bufferStatics = map[string]bufferFunc{
		"from":            (*bufferEnv).from,
		"alloc":           (*bufferEnv).alloc,
		"allocUnsafe":     (*bufferEnv).allocUnsafe,
		"allocUnsafeSlow": (*bufferEnv).allocUnsafe,
		"isBuffer":        (*bufferEnv).isBuffer,
		"isEncoding":      (*bufferEnv).isEncoding,
		"byteLength":      (*bufferEnv).byteLength,
		"compare":         (*bufferEnv).compareStatic,
		"concat":          (*bufferEnv).concat,
	}
	bufferMethods = map[string]bufferFunc{
		"toString":       (*bufferEnv).toString,
		"toLocaleString": (*bufferEnv).toString,
		"toJSON":         (*bufferEnv).toJSON,
		"equals":         (*bufferEnv).equals,
		"compare":        (*bufferEnv).compare,
		"slice":          (*bufferEnv).slice,
		"indexOf":        func(b *bufferEnv, c goja.FunctionCall) goja.Value { return b.rt.ToValue(b.search(c, true)) },
		"lastIndexOf":    func(b *bufferEnv, c goja.FunctionCall) goja.Value { return b.rt.ToValue(b.search(c, false)) },
		"includes":       func(b *bufferEnv, c goja.FunctionCall) goja.Value { return b.rt.ToValue(b.search(c, true) >= 0) },
		"fill":           (*bufferEnv).fill,
		"copy":           (*bufferEnv).copyTo,
		"write":          (*bufferEnv).write,
		"swap16":         func(b *bufferEnv, c goja.FunctionCall) goja.Value { return b.swap(c, 2) },
		"swap32":         func(b *bufferEnv, c goja.FunctionCall) goja.Value { return b.swap(c, 4) },
		"swap64":         func(b *bufferEnv, c goja.FunctionCall) goja.Value { return b.swap(c, 8) },
	}
	// Typed reads and writes, with Node's lower-case aliases (readUint8
	// for readUInt8).
	add := func(name string, f bufferFunc) {
		bufferMethods[name] = f
		if strings.Contains(name, "UInt") {
			bufferAliases[strings.Replace(name, "UInt", "Uint", 1)] = name
		}
	}
	for _, n := range []int{1, 2, 4} {
		for _, le := range []bool{true, false} {
			suffix := map[bool]string{true: "LE", false: "BE"}[le]
			if n == 1 {
				if !le {
					continue
				}
				suffix = ""
			}
			bits := fmt.Sprint(8 * n)
			for _, signed := range []bool{false, true} {
				t := numType{size: n, le: le, signed: signed}
				kind := map[bool]string{false: "UInt", true: "Int"}[signed]
				add("read"+kind+bits+suffix, t.read)
				add("write"+kind+bits+suffix, t.write)
			}
		}
	}
	for _, le := range []bool{true, false} {
		suffix := map[bool]string{true: "LE", false: "BE"}[le]
		for _, signed := range []bool{false, true} {
			kind := map[bool]string{false: "UInt", true: "Int"}[signed]
			t := numType{le: le, signed: signed} // size from the byteLength argument
			add("read"+kind+suffix, t.read)
			add("write"+kind+suffix, t.write)
			big := numType{size: 8, le: le, signed: signed, big: true}
			add("readBig"+kind+"64"+suffix, big.read)
			add("writeBig"+kind+"64"+suffix, big.write)
		}
		f32 := numType{size: 4, le: le, float: true}
		f64 := numType{size: 8, le: le, float: true}
		add("readFloat"+suffix, f32.read)
		add("writeFloat"+suffix, f32.write)
		add("readDouble"+suffix, f64.read)
		add("writeDouble"+suffix, f64.write)
	}
}

// Errors as Node throws them: a RangeError or TypeError with a code.
func (b *bufferEnv) throw(kind, code, format string, args ...any) {
	ctor, _ := b.rt.Get(kind).(*goja.Object)
	e, err := b.rt.New(ctor, b.rt.ToValue(fmt.Sprintf(format, args...)))
	if err != nil {
		panic(err)
	}
	_ = e.Set("code", code)
	panic(e)
}

func (b *bufferEnv) rangeError(code, format string, args ...any) {
	b.throw("RangeError", code, format, args...)
}

func (b *bufferEnv) typeError(code, format string, args ...any) {
	b.throw("TypeError", code, format, args...)
}

// describe names a value in an error message, as Node's do.
func describeArg(v goja.Value) string {
	switch {
	case v == nil || goja.IsUndefined(v):
		return "undefined"
	case goja.IsNull(v):
		return "null"
	}
	if o, ok := v.(*goja.Object); ok {
		if c, ok := o.Get("constructor").(*goja.Object); ok {
			if n := c.Get("name"); n != nil && n.String() != "" {
				return "an instance of " + n.String()
			}
		}
		return "an instance of Object"
	}
	return fmt.Sprintf("type %s (%s)", typeOf(v), v.String())
}

func typeOf(v goja.Value) string {
	switch {
	case goja.IsNumber(v):
		return "number"
	case goja.IsString(v):
		return "string"
	case goja.IsBigInt(v):
		return "bigint"
	}
	if _, ok := v.Export().(bool); ok {
		return "boolean"
	}
	return "symbol"
}

// bytes returns the memory of a Uint8Array (a Buffer is one), or false.
func bytesOf(v goja.Value) ([]byte, bool) {
	o, ok := v.(*goja.Object)
	if !ok || o.ExportType() != typeBytes {
		return nil, false
	}
	p, ok := o.Export().([]byte)
	return p, ok
}

func (b *bufferEnv) this(call goja.FunctionCall) []byte {
	p, ok := bytesOf(call.This)
	if !ok {
		b.typeError("ERR_INVALID_ARG_TYPE", "The \"this\" value must be a Buffer or Uint8Array. Received %s", describeArg(call.This))
	}
	return p
}

// newBuffer makes a Buffer over p, which it keeps.
func (b *bufferEnv) wrap(p []byte) *goja.Object {
	o, err := b.rt.New(b.ctor, b.rt.ToValue(b.rt.NewArrayBuffer(p)))
	if err != nil {
		panic(err)
	}
	return o
}

// Encodings, by every name Node accepts (case-insensitive).
func normEncoding(v goja.Value) string {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return "utf8"
	}
	switch strings.ToLower(v.String()) {
	case "utf8", "utf-8":
		return "utf8"
	case "hex":
		return "hex"
	case "base64":
		return "base64"
	case "base64url":
		return "base64url"
	case "ascii":
		return "ascii"
	case "latin1", "binary":
		return "latin1"
	case "ucs2", "ucs-2", "utf16le", "utf-16le":
		return "utf16le"
	}
	return ""
}

func (b *bufferEnv) encoding(v goja.Value) string {
	e := normEncoding(v)
	if e == "" {
		b.typeError("ERR_UNKNOWN_ENCODING", "Unknown encoding: %s", v.String())
	}
	return e
}

// stringBytes encodes a JavaScript string. The string arrives as Go
// UTF-8, so a lone surrogate is already U+FFFD, which is what Node's
// UTF-8 encoder writes for it too.
func (b *bufferEnv) stringBytes(s string, enc goja.Value) []byte {
	switch b.encoding(enc) {
	case "hex":
		// Node decodes up to the first pair that is not two hex digits.
		n := 0
		for n+1 < len(s) && isHex(s[n]) && isHex(s[n+1]) {
			n += 2
		}
		p, _ := hex.DecodeString(s[:n])
		return p
	case "base64", "base64url":
		return base64Bytes(s)
	case "ascii", "latin1":
		units := utf16.Encode([]rune(s))
		p := make([]byte, len(units))
		for i, u := range units {
			p[i] = byte(u)
		}
		return p
	case "utf16le":
		units := utf16.Encode([]rune(s))
		p := make([]byte, 2*len(units))
		for i, u := range units {
			p[2*i], p[2*i+1] = byte(u), byte(u>>8)
		}
		return p
	}
	return []byte(s)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// base64Bytes decodes either alphabet, skipping other characters (white
// space) and stopping at padding, as Node does.
func base64Bytes(s string) []byte {
	var out []byte
	acc, bits := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '=' {
			break
		}
		var v int
		switch {
		case 'A' <= c && c <= 'Z':
			v = int(c - 'A')
		case 'a' <= c && c <= 'z':
			v = int(c-'a') + 26
		case '0' <= c && c <= '9':
			v = int(c-'0') + 52
		case c == '+' || c == '-':
			v = 62
		case c == '/' || c == '_':
			v = 63
		default:
			continue
		}
		acc = (acc<<6 | v) & 0xffffff
		bits += 6
		if bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>bits))
		}
	}
	return out
}

// utf8Text decodes UTF-8 as the WHATWG decoder (and Node) does: each
// maximal invalid subsequence becomes one U+FFFD.
func utf8Text(p []byte) string {
	if utf8.Valid(p) {
		return string(p)
	}
	var sb strings.Builder
	for i := 0; i < len(p); {
		r, n := utf8.DecodeRune(p[i:])
		if r != utf8.RuneError || n > 1 {
			sb.WriteRune(r)
			i += n
			continue
		}
		// Skip the longest prefix of a valid sequence that was cut off.
		need, lower, upper := 0, byte(0x80), byte(0xbf)
		switch c := p[i]; {
		case c >= 0xc2 && c <= 0xdf:
			need = 1
		case c >= 0xe0 && c <= 0xef:
			need = 2
			if c == 0xe0 {
				lower = 0xa0
			} else if c == 0xed {
				upper = 0x9f
			}
		case c >= 0xf0 && c <= 0xf4:
			need = 3
			if c == 0xf0 {
				lower = 0x90
			} else if c == 0xf4 {
				upper = 0x8f
			}
		}
		i++
		for ; need > 0 && i < len(p) && p[i] >= lower && p[i] <= upper; need-- {
			i++
			lower, upper = 0x80, 0xbf
		}
		sb.WriteRune(utf8.RuneError)
	}
	return sb.String()
}

func (b *bufferEnv) text(p []byte, enc string) goja.Value {
	switch enc {
	case "hex":
		return b.rt.ToValue(hex.EncodeToString(p))
	case "base64":
		return b.rt.ToValue(base64.StdEncoding.EncodeToString(p))
	case "base64url":
		return b.rt.ToValue(base64.RawURLEncoding.EncodeToString(p))
	case "ascii", "latin1":
		mask := byte(0xff)
		if enc == "ascii" {
			mask = 0x7f // Node unsets the high bit when decoding ascii
		}
		r := make([]rune, len(p))
		for i, c := range p {
			r[i] = rune(c & mask)
		}
		return b.rt.ToValue(string(r))
	case "utf16le":
		units := make([]uint16, len(p)/2)
		for i := range units {
			units[i] = uint16(p[2*i]) | uint16(p[2*i+1])<<8
		}
		return b.rt.ToValue(string(utf16.Decode(units)))
	}
	return b.rt.ToValue(utf8Text(p))
}

// Argument helpers.

func isAbsent(v goja.Value) bool { return v == nil || goja.IsUndefined(v) }

// intArg reads an optional integer argument (def when absent), truncated
// as Node's index arguments are.
func intArg(v goja.Value, def int) int {
	if isAbsent(v) {
		return def
	}
	f := v.ToFloat()
	switch {
	case math.IsNaN(f):
		return 0
	case f > math.MaxInt32:
		return math.MaxInt32
	case f < math.MinInt32:
		return math.MinInt32
	}
	return int(f)
}

func (b *bufferEnv) size(v goja.Value) int {
	if !goja.IsNumber(v) {
		b.typeError("ERR_INVALID_ARG_TYPE", "The \"size\" argument must be of type number. Received %s", describeArg(v))
	}
	f := v.ToFloat()
	if !(f >= 0 && f <= maxBufferSize) {
		b.rangeError("ERR_OUT_OF_RANGE", "The value of \"size\" is out of range. It must be >= 0 && <= %d. Received %v", maxBufferSize, v)
	}
	return int(f)
}

var (
	typeBytes       = reflect.TypeOf([]byte(nil))
	typeArrayBuffer = reflect.TypeOf(goja.ArrayBuffer{})
)

// maxBufferSize bounds a Buffer made by Buffer's own functions (alloc,
// from, concat). Node's limit is about 4 GiB; a codec decodes a LoRaWAN
// payload of at most 242 bytes, and the native loops that fill a Buffer
// (from an array-like, say) cannot be interrupted by the time limit, so
// the bound also bounds how long one such call runs.
const maxBufferSize = 1 << 16

// Static functions.

func (b *bufferEnv) from(call goja.FunctionCall) goja.Value {
	v, arg1, arg2 := call.Argument(0), call.Argument(1), call.Argument(2)
	if goja.IsString(v) {
		return b.wrap(b.stringBytes(v.String(), arg1))
	}
	o, isObj := v.(*goja.Object)
	if !isObj {
		if goja.IsNumber(v) {
			b.typeError("ERR_INVALID_ARG_TYPE", "The \"value\" argument must not be of type number. Received type number (%s)", v.String())
		}
		b.typeError("ERR_INVALID_ARG_TYPE", "The first argument must be of type string or an instance of Buffer, ArrayBuffer, or Array or an Array-like Object. Received %s", describeArg(v))
	}
	if o.ExportType() == typeArrayBuffer { // not Export: it would copy an array
		r, err := b.rt.New(b.ctor, v, arg1, arg2) // shares memory
		if err != nil {
			panic(err)
		}
		return r
	}
	if p, ok := bytesOf(o); ok {
		return b.wrap(append([]byte(nil), p...))
	}
	// As Node: an object whose valueOf gives something else (a String
	// object) is that value.
	if valueOf, ok := goja.AssertFunction(o.Get("valueOf")); ok {
		prim, err := valueOf(o)
		if err != nil {
			panic(err)
		}
		if prim != nil && !goja.IsUndefined(prim) && !goja.IsNull(prim) && prim != goja.Value(o) {
			return b.from(goja.FunctionCall{Arguments: []goja.Value{prim, arg1, arg2}})
		}
	}
	if t := o.Get("type"); t != nil && t.String() == "Buffer" {
		if d, ok := o.Get("data").(*goja.Object); ok && d.ClassName() == "Array" {
			o = d // what toJSON makes
		}
	}
	if l := o.Get("length"); l != nil && goja.IsNumber(l) {
		// Array-likes and other typed arrays: each element truncated to
		// a byte, as a Uint8Array store truncates.
		n := intArg(l, 0)
		if n < 0 {
			n = 0
		}
		if n > maxBufferSize {
			b.rangeError("ERR_OUT_OF_RANGE", "The value of \"length\" is out of range. It must be <= %d. Received %d", maxBufferSize, n)
		}
		r, err := b.rt.New(b.ctor, b.rt.ToValue(n))
		if err != nil {
			panic(err)
		}
		p, _ := bytesOf(r)
		for i := range p {
			p[i] = toUint8(o.Get(itoa(i)))
		}
		return r
	}
	b.typeError("ERR_INVALID_ARG_TYPE", "The first argument must be of type string or an instance of Buffer, ArrayBuffer, or Array or an Array-like Object. Received %s", describeArg(v))
	return nil
}

// toUint8 converts as a Uint8Array store does (ToUint8: modulo 2^8).
func toUint8(v goja.Value) byte {
	if v == nil {
		return 0
	}
	f := v.ToFloat()
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return byte(int64(math.Mod(math.Trunc(f), 256)))
}

func (b *bufferEnv) alloc(call goja.FunctionCall) goja.Value {
	n := b.size(call.Argument(0))
	o := b.wrap(make([]byte, n))
	if fill := call.Argument(1); !isAbsent(fill) && n > 0 {
		b.fillBytes(o, fill, 0, n, call.Argument(2))
	}
	return o
}

// allocUnsafe is zeroed too: nothing to leak from earlier uplinks.
func (b *bufferEnv) allocUnsafe(call goja.FunctionCall) goja.Value {
	return b.wrap(make([]byte, b.size(call.Argument(0))))
}

func (b *bufferEnv) isBuffer(call goja.FunctionCall) goja.Value {
	return b.rt.ToValue(b.rt.InstanceOf(call.Argument(0), b.ctor))
}

func (b *bufferEnv) isEncoding(call goja.FunctionCall) goja.Value {
	v := call.Argument(0)
	return b.rt.ToValue(goja.IsString(v) && v.String() != "" && normEncoding(v) != "")
}

func (b *bufferEnv) byteLength(call goja.FunctionCall) goja.Value {
	v := call.Argument(0)
	if goja.IsString(v) {
		return b.rt.ToValue(len(b.stringBytes(v.String(), call.Argument(1))))
	}
	if o, ok := v.(*goja.Object); ok {
		if bl := o.Get("byteLength"); bl != nil && goja.IsNumber(bl) {
			return bl
		}
	}
	b.typeError("ERR_INVALID_ARG_TYPE", "The \"string\" argument must be of type string or an instance of Buffer or ArrayBuffer. Received %s", describeArg(v))
	return nil
}

func (b *bufferEnv) compareStatic(call goja.FunctionCall) goja.Value {
	x, ok1 := bytesOf(call.Argument(0))
	y, ok2 := bytesOf(call.Argument(1))
	if !ok1 || !ok2 {
		b.typeError("ERR_INVALID_ARG_TYPE", "The \"buf1\" and \"buf2\" arguments must be one of type Buffer or Uint8Array")
	}
	return b.rt.ToValue(compareBytes(x, y))
}

func compareBytes(x, y []byte) int {
	switch s := string(x); {
	case s < string(y):
		return -1
	case s > string(y):
		return 1
	}
	return 0
}

func (b *bufferEnv) concat(call goja.FunctionCall) goja.Value {
	list, ok := call.Argument(0).(*goja.Object)
	if !ok || list.ClassName() != "Array" {
		b.typeError("ERR_INVALID_ARG_TYPE", "The \"list\" argument must be an instance of Array. Received %s", describeArg(call.Argument(0)))
	}
	n := intArg(list.Get("length"), 0)
	parts := make([][]byte, 0, min(n, 1024))
	total := 0
	for i := range n {
		el := list.Get(itoa(i))
		p, ok := bytesOf(el)
		if !ok {
			b.typeError("ERR_INVALID_ARG_TYPE", "The \"list[%d]\" argument must be an instance of Buffer or Uint8Array. Received %s", i, describeArg(el))
		}
		parts = append(parts, p)
		total += len(p)
		if total > maxBufferSize {
			b.rangeError("ERR_OUT_OF_RANGE", "Buffer.concat: more than %d bytes", maxBufferSize)
		}
	}
	if tl := call.Argument(1); !isAbsent(tl) {
		total = b.size(tl)
	}
	out := make([]byte, 0, total)
	for _, p := range parts {
		out = append(out, p[:min(len(p), total-len(out))]...)
	}
	return b.wrap(out[:total])
}

// Methods.

func (b *bufferEnv) toString(call goja.FunctionCall) goja.Value {
	p := b.this(call)
	start := max(0, intArg(call.Argument(1), 0))
	end := min(len(p), intArg(call.Argument(2), len(p)))
	enc := b.encoding(call.Argument(0))
	if end <= start {
		return b.rt.ToValue("")
	}
	return b.text(p[start:end], enc)
}

func (b *bufferEnv) toJSON(call goja.FunctionCall) goja.Value {
	p := b.this(call)
	data := make([]any, len(p))
	for i, c := range p {
		data[i] = int64(c)
	}
	o := b.rt.NewObject()
	_ = o.Set("type", "Buffer")
	_ = o.Set("data", b.rt.NewArray(data...))
	return o
}

func (b *bufferEnv) equals(call goja.FunctionCall) goja.Value {
	p := b.this(call)
	q, ok := bytesOf(call.Argument(0))
	if !ok {
		b.typeError("ERR_INVALID_ARG_TYPE", "The \"otherBuffer\" argument must be an instance of Buffer or Uint8Array. Received %s", describeArg(call.Argument(0)))
	}
	return b.rt.ToValue(string(p) == string(q))
}

func (b *bufferEnv) compare(call goja.FunctionCall) goja.Value {
	p := b.this(call)
	q, ok := bytesOf(call.Argument(0))
	if !ok {
		b.typeError("ERR_INVALID_ARG_TYPE", "The \"target\" argument must be an instance of Buffer or Uint8Array. Received %s", describeArg(call.Argument(0)))
	}
	ts, te := intArg(call.Argument(1), 0), intArg(call.Argument(2), len(q))
	ss, se := intArg(call.Argument(3), 0), intArg(call.Argument(4), len(p))
	if ts < 0 || ts > len(q) || te < 0 || te > len(q) || ss < 0 || ss > len(p) || se < 0 || se > len(p) {
		b.rangeError("ERR_OUT_OF_RANGE", "The value of an index argument is out of range")
	}
	return b.rt.ToValue(compareBytes(p[ss:max(ss, se)], q[ts:max(ts, te)]))
}

// slice shares memory with the buffer, as subarray does (unlike
// Uint8Array's slice, which copies).
func (b *bufferEnv) slice(call goja.FunctionCall) goja.Value {
	this, ok := call.This.(*goja.Object)
	if !ok {
		b.typeError("ERR_INVALID_ARG_TYPE", "The \"this\" value must be a Buffer")
	}
	sub, ok := goja.AssertFunction(this.Get("subarray"))
	if !ok {
		b.typeError("ERR_INVALID_ARG_TYPE", "The \"this\" value must be a Buffer")
	}
	r, err := sub(this, call.Argument(0), call.Argument(1))
	if err != nil {
		panic(err)
	}
	return r
}

// needle reads what indexOf, includes and fill look for or fill with.
func (b *bufferEnv) needle(v, enc goja.Value) []byte {
	switch {
	case goja.IsNumber(v):
		return []byte{byte(int64(v.ToFloat()))}
	case goja.IsString(v):
		return b.stringBytes(v.String(), enc)
	}
	if p, ok := bytesOf(v); ok {
		return p
	}
	b.typeError("ERR_INVALID_ARG_TYPE", "The \"value\" argument must be one of type number or string or an instance of Buffer or Uint8Array. Received %s", describeArg(v))
	return nil
}

func (b *bufferEnv) search(call goja.FunctionCall, forward bool) int {
	p := b.this(call)
	off, enc := call.Argument(1), call.Argument(2)
	if goja.IsString(off) {
		off, enc = goja.Undefined(), off
	}
	q := b.needle(call.Argument(0), enc)
	last := len(p) - len(q)
	from := last
	if forward {
		from = 0
	}
	if !isAbsent(off) && !goja.IsNull(off) && !math.IsNaN(off.ToFloat()) {
		from = intArg(off, 0)
		if from < 0 {
			from += len(p)
		}
	}
	// bytes.Index and LastIndex, not a loop comparing at every offset:
	// a native call is not interruptible, and p may be a Uint8Array of
	// any size the codec made (Buffer.prototype.indexOf.call(big, ...)).
	if forward {
		from = max(0, from)
		if from > last {
			return -1
		}
		if i := bytes.Index(p[from:], q); i >= 0 {
			return from + i
		}
		return -1
	}
	if from = min(from, last); from < 0 {
		return -1
	}
	return bytes.LastIndex(p[:from+len(q)], q)
}

func (b *bufferEnv) fill(call goja.FunctionCall) goja.Value {
	p := b.this(call)
	off, end, enc := call.Argument(1), call.Argument(2), call.Argument(3)
	if goja.IsString(off) {
		off, end, enc = goja.Undefined(), goja.Undefined(), off
	} else if goja.IsString(end) {
		end, enc = goja.Undefined(), end
	}
	start, stop := intArg(off, 0), intArg(end, len(p))
	if start < 0 || stop > len(p) {
		b.rangeError("ERR_OUT_OF_RANGE", "The value of \"offset\" or \"end\" is out of range")
	}
	b.fillBytes(call.This, call.Argument(0), start, stop, enc)
	return call.This
}

func (b *bufferEnv) fillBytes(this, value goja.Value, start, stop int, enc goja.Value) {
	p, _ := bytesOf(this)
	var pat []byte
	switch x := value.Export().(type) {
	case bool:
		pat = []byte{0}
		if x {
			pat[0] = 1
		}
	default:
		if goja.IsNumber(value) || goja.IsString(value) {
			pat = b.needle(value, enc)
		} else if q, ok := bytesOf(value); ok {
			pat = append([]byte(nil), q...)
		}
	}
	if len(pat) == 0 {
		pat = []byte{0}
	}
	for i, j := start, 0; i < stop; i, j = i+1, j+1 {
		p[i] = pat[j%len(pat)]
	}
}

func (b *bufferEnv) copyTo(call goja.FunctionCall) goja.Value {
	p := b.this(call)
	q, ok := bytesOf(call.Argument(0))
	if !ok {
		b.typeError("ERR_INVALID_ARG_TYPE", "The \"target\" argument must be an instance of Buffer or Uint8Array. Received %s", describeArg(call.Argument(0)))
	}
	ts, ss := intArg(call.Argument(1), 0), intArg(call.Argument(2), 0)
	se := min(intArg(call.Argument(3), len(p)), len(p))
	if ts < 0 || ss < 0 {
		b.rangeError("ERR_OUT_OF_RANGE", "The value of an index argument is out of range")
	}
	if ss >= se || ts >= len(q) {
		return b.rt.ToValue(0)
	}
	return b.rt.ToValue(copy(q[ts:], p[ss:se]))
}

func (b *bufferEnv) write(call goja.FunctionCall) goja.Value {
	p := b.this(call)
	off, length, enc := call.Argument(1), call.Argument(2), call.Argument(3)
	if goja.IsString(off) {
		off, length, enc = goja.Undefined(), goja.Undefined(), off
	} else if goja.IsString(length) {
		length, enc = goja.Undefined(), length
	}
	o := intArg(off, 0)
	if o < 0 || o > len(p) {
		b.rangeError("ERR_OUT_OF_RANGE", "The value of \"offset\" is out of range. It must be >= 0 && <= %d. Received %d", len(p), o)
	}
	room := len(p) - o
	if l := intArg(length, room); l < room {
		room = max(0, l)
	}
	e := b.encoding(enc)
	src := b.stringBytes(call.Argument(0).String(), b.rt.ToValue(e))
	n := min(room, len(src))
	if e == "utf8" {
		for n > 0 && n < len(src) && src[n]&0xc0 == 0x80 {
			n-- // no partial characters
		}
	}
	return b.rt.ToValue(copy(p[o:], src[:n]))
}

func (b *bufferEnv) swap(call goja.FunctionCall, n int) goja.Value {
	p := b.this(call)
	if len(p)%n != 0 {
		b.rangeError("ERR_INVALID_BUFFER_SIZE", "Buffer size must be a multiple of %d-bits", 8*n)
	}
	for i := 0; i < len(p); i += n {
		for x, y := i, i+n-1; x < y; x, y = x+1, y-1 {
			p[x], p[y] = p[y], p[x]
		}
	}
	return call.This
}

// numType is one of the typed reads and writes: size 0 takes it from the
// byteLength argument (readUIntLE and the like).
type numType struct {
	size              int
	le, signed, float bool
	big               bool
}

func (b *bufferEnv) offset(p []byte, v goja.Value, n int) int {
	if isAbsent(v) {
		v = b.rt.ToValue(0)
	}
	if !goja.IsNumber(v) {
		b.typeError("ERR_INVALID_ARG_TYPE", "The \"offset\" argument must be of type number. Received %s", describeArg(v))
	}
	f := v.ToFloat()
	if f != math.Trunc(f) || math.IsInf(f, 0) {
		b.rangeError("ERR_OUT_OF_RANGE", "The value of \"offset\" is out of range. It must be an integer. Received %v", v)
	}
	if f < 0 || f+float64(n) > float64(len(p)) {
		if len(p) < n {
			b.rangeError("ERR_BUFFER_OUT_OF_BOUNDS", "Attempt to access memory outside buffer bounds")
		}
		b.rangeError("ERR_OUT_OF_RANGE", "The value of \"offset\" is out of range. It must be >= 0 and <= %d. Received %v", len(p)-n, v)
	}
	return int(f)
}

func (t numType) byteLength(b *bufferEnv, v goja.Value) int {
	if t.size > 0 {
		return t.size
	}
	if !goja.IsNumber(v) {
		b.typeError("ERR_INVALID_ARG_TYPE", "The \"byteLength\" argument must be of type number. Received %s", describeArg(v))
	}
	f := v.ToFloat()
	if !(f >= 1 && f <= 6) || f != math.Trunc(f) {
		b.rangeError("ERR_OUT_OF_RANGE", "The value of \"byteLength\" is out of range. It must be >= 1 and <= 6. Received %v", v)
	}
	return int(f)
}

// uint reads n bytes at p as an unsigned integer.
func (t numType) uint(p []byte, n int) uint64 {
	var v uint64
	for i := range n {
		j := i
		if t.le {
			j = n - 1 - i
		}
		v = v<<8 | uint64(p[j])
	}
	return v
}

func (t numType) put(p []byte, n int, v uint64) {
	for i := range n {
		j := n - 1 - i
		if t.le {
			j = i
		}
		p[j] = byte(v)
		v >>= 8
	}
}

func (t numType) read(b *bufferEnv, call goja.FunctionCall) goja.Value {
	p := b.this(call)
	n := t.byteLength(b, call.Argument(1))
	o := b.offset(p, call.Argument(0), n)
	u := t.uint(p[o:], n)
	switch {
	case t.float && n == 4:
		return b.rt.ToValue(float64(math.Float32frombits(uint32(u))))
	case t.float:
		return b.rt.ToValue(math.Float64frombits(u))
	case t.big && t.signed:
		return b.rt.ToValue(big.NewInt(int64(u)))
	case t.big:
		return b.rt.ToValue(new(big.Int).SetUint64(u))
	case t.signed:
		shift := 64 - 8*n
		return b.rt.ToValue(int64(u<<shift) >> shift)
	}
	return b.rt.ToValue(int64(u))
}

func (t numType) write(b *bufferEnv, call goja.FunctionCall) goja.Value {
	p := b.this(call)
	n := t.byteLength(b, call.Argument(2))
	val := call.Argument(0)
	var u uint64
	switch {
	case t.float:
		f := val.ToFloat()
		if n == 4 {
			u = uint64(math.Float32bits(float32(f)))
		} else {
			u = math.Float64bits(f)
		}
	case t.big:
		x, ok := val.Export().(*big.Int)
		if !ok {
			b.typeError("ERR_INVALID_ARG_TYPE", "The \"value\" argument must be of type bigint. Received %s", describeArg(val))
		}
		lo, hi := new(big.Int), new(big.Int).SetUint64(math.MaxUint64)
		if t.signed {
			lo.SetInt64(math.MinInt64)
			hi.SetInt64(math.MaxInt64)
		}
		if x.Cmp(lo) < 0 || x.Cmp(hi) > 0 {
			b.rangeError("ERR_OUT_OF_RANGE", "The value of \"value\" is out of range. It must be >= %sn and <= %sn. Received %sn", lo, hi, x)
		}
		if t.signed {
			u = uint64(x.Int64())
		} else {
			u = x.Uint64()
		}
	default:
		f := val.ToFloat()
		lo, hi := 0.0, math.Pow(2, float64(8*n))-1
		if t.signed {
			lo, hi = -math.Pow(2, float64(8*n-1)), math.Pow(2, float64(8*n-1))-1
		}
		if !(f >= lo && f <= hi) {
			b.rangeError("ERR_OUT_OF_RANGE", "The value of \"value\" is out of range. It must be >= %v and <= %v. Received %v", lo, hi, val)
		}
		u = uint64(int64(math.Floor(f)))
	}
	o := b.offset(p, call.Argument(1), n)
	t.put(p[o:], n, u)
	return b.rt.ToValue(o + n)
}
