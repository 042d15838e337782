package script

import (
	"strings"
	"testing"

	"github.com/dop251/goja"

	"github.com/sensorgate/sensorgate/decoders"
)

// bufferRuntime is a fresh runtime of a codec that names Buffer, as a
// ChirpStack v4 codec does.
func bufferRuntime(t *testing.T) *goja.Runtime {
	t.Helper()
	c, err := Compile("buf.js", []byte("function decodeUplink(input) { return {data: {hex: Buffer.from(input.bytes).toString('hex')}}; }"), relaxed)
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.fresh()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.close)
	return e.rt
}

// TestBuffer checks Buffer against the examples of Node's Buffer
// documentation (nodejs.org/api/buffer.html): each expression and its
// expected value are the documentation's, rewritten as one expression
// (a Buffer's printed bytes as toString('hex')).
func TestBuffer(t *testing.T) {
	rt := bufferRuntime(t)
	for _, tc := range []struct {
		expr string
		want any
	}{
		// Buffer.from
		{`Buffer.from([0x62, 0x75, 0x66, 0x66, 0x65, 0x72]).toString()`, "buffer"},
		{`Buffer.from([257, 257.5, -255, '1']).toString('hex')`, "01010101"},
		{`Buffer.from('this is a tést').toString('hex')`, "7468697320697320612074c3a97374"},
		{`Buffer.from('7468697320697320612074c3a97374', 'hex').toString()`, "this is a tést"},
		{`Buffer.from('1ag123', 'hex').toString('hex')`, "1a"},
		{`Buffer.from('1a7', 'hex').toString('hex')`, "1a"},
		{`Buffer.from('1634', 'hex').toString('hex')`, "1634"},
		{`Buffer.from('aGVsbG8gd29ybGQ=', 'base64').toString()`, "hello world"},
		{`Buffer.from('hello world', 'utf8').toString('base64')`, "aGVsbG8gd29ybGQ="},
		{`Buffer.from('hello world').toString('hex')`, "68656c6c6f20776f726c64"},
		{`(function () { var arr = new Uint16Array(2); arr[0] = 5000; arr[1] = 4000;
			var buf = Buffer.from(arr.buffer); var before = buf.toString('hex');
			arr[1] = 6000; return before + ' ' + buf.toString('hex'); })()`, "8813a00f 88137017"},
		{`(function () { var ab = new ArrayBuffer(10); return Buffer.from(ab, 0, 2).length; })()`, 2.0},
		{`(function () { var arr = new Uint16Array(2); arr[0] = 5000; arr[1] = 4000;
			return Buffer.from(arr).toString('hex'); })()`, "88a0"},
		{`(function () { var buf1 = Buffer.from('buffer'); var buf2 = Buffer.from(buf1);
			buf1[0] = 0x61; return buf1.toString() + ' ' + buf2.toString(); })()`, "auffer buffer"},
		{`Buffer.from(new String('this is a test')).toString('hex')`, "7468697320697320612074657374"},
		{`new Buffer([1, 2, 3]).toString('hex')`, "010203"}, // ChirpStack's own example
		// Buffer.alloc, allocUnsafe
		{`Buffer.alloc(5).toString('hex')`, "0000000000"},
		{`Buffer.alloc(5, 'a').toString('hex')`, "6161616161"},
		{`Buffer.alloc(11, 'aGVsbG8gd29ybGQ=', 'base64').toString('hex')`, "68656c6c6f20776f726c64"},
		{`Buffer.allocUnsafe(10).length`, 10.0},
		// Buffer.byteLength, compare, concat, isBuffer, isEncoding
		{`Buffer.byteLength('\u00bd + \u00bc = \u00be', 'utf8')`, 12.0},
		{`'\u00bd + \u00bc = \u00be'.length`, 9.0},
		{`(function () { var buf1 = Buffer.from('1234'), buf2 = Buffer.from('0123');
			var arr = [buf1, buf2].sort(Buffer.compare); return arr[0] === buf2 && arr[1] === buf1; })()`, true},
		{`(function () { var buf1 = Buffer.alloc(10), buf2 = Buffer.alloc(14), buf3 = Buffer.alloc(18);
			var totalLength = buf1.length + buf2.length + buf3.length;
			var bufA = Buffer.concat([buf1, buf2, buf3], totalLength);
			return totalLength + ' ' + bufA.length + ' ' + Buffer.isBuffer(bufA); })()`, "42 42 true"},
		{`Buffer.concat([Buffer.from('ab'), new Uint8Array([0x63])]).toString()`, "abc"},
		{`Buffer.concat([Buffer.from('abcd')], 2).toString()`, "ab"},
		{`Buffer.isBuffer(Buffer.alloc(10))`, true},
		{`Buffer.isBuffer(Buffer.from('foo'))`, true},
		{`Buffer.isBuffer('a string')`, false},
		{`Buffer.isBuffer([])`, false},
		{`Buffer.isBuffer(new Uint8Array(1024))`, false},
		{`Buffer.isEncoding('utf8')`, true},
		{`Buffer.isEncoding('hex')`, true},
		{`Buffer.isEncoding('utf/8')`, false},
		{`Buffer.isEncoding('')`, false},
		// toString with ranges and encodings
		{`(function () { var buf1 = Buffer.allocUnsafe(26);
			for (var i = 0; i < 26; i++) buf1[i] = i + 97;
			return buf1.toString('utf8') + ' ' + buf1.toString('utf8', 0, 5); })()`, "abcdefghijklmnopqrstuvwxyz abcde"},
		{`Buffer.from('tést').toString('hex')`, "74c3a97374"},
		{`Buffer.from('tést').toString('utf8', 0, 3)`, "té"},
		{`Buffer.from('tést').toString(undefined, 0, 3)`, "té"},
		{`Buffer.from('this is a tést').toString('ascii')`, "this is a tC)st"},
		{`Buffer.from('this is a tést').toString('latin1')`, "this is a tÃ©st"},
		{`Buffer.from('fhqwhgads', 'utf16le').toString('hex')`, "660068007100770068006700610064007300"},
		{`Buffer.from([0xe2, 0x82]).toString()`, "\ufffd"},
		{`Buffer.from([0x61, 0xff, 0x62]).toString()`, "a\ufffdb"},
		{`Buffer.from([0xf0, 0x9f, 0x98, 0x80]).toString()`, "\U0001F600"},
		{`Buffer.from('\u{1F600}').toString('hex')`, "f09f9880"},
		{`Buffer.from([0xfb, 0xff]).toString('base64url')`, "-_8"},
		{`Buffer.from('-_8', 'base64url').toString('hex')`, "fbff"},
		{`JSON.stringify(Buffer.from([0x1, 0x2, 0x3, 0x4, 0x5]))`, `{"type":"Buffer","data":[1,2,3,4,5]}`},
		{`Buffer.from(JSON.parse(JSON.stringify(Buffer.from([1, 2])))).toString('hex')`, "0102"},
		// equals, compare, indexOf, includes
		{`Buffer.from('ABC').equals(Buffer.from('414243', 'hex'))`, true},
		{`Buffer.from('ABC').equals(Buffer.from('ABCD'))`, false},
		{`(function () { var buf1 = Buffer.from('ABC'), buf2 = Buffer.from('BCD'), buf3 = Buffer.from('ABCD');
			return [buf1.compare(buf1), buf1.compare(buf2), buf1.compare(buf3), buf2.compare(buf1), buf2.compare(buf3)].join(); })()`, "0,-1,-1,1,1"},
		{`(function () { var buf = Buffer.from('this is a buffer');
			return [buf.indexOf('this'), buf.indexOf('is'), buf.indexOf(Buffer.from('a buffer')), buf.indexOf(97),
				buf.indexOf(Buffer.from('a buffer example')), buf.indexOf(Buffer.from('a buffer example').slice(0, 8))].join(); })()`, "0,2,8,8,-1,8"},
		{`(function () { var buf = Buffer.from('this buffer is a buffer');
			return [buf.lastIndexOf('this'), buf.lastIndexOf('buffer'), buf.lastIndexOf(Buffer.from('buffer')), buf.lastIndexOf(97),
				buf.lastIndexOf(Buffer.from('yolo')), buf.lastIndexOf('buffer', 5), buf.lastIndexOf('buffer', 4)].join(); })()`, "0,17,17,15,-1,5,-1"},
		{`(function () { var buf = Buffer.from('this is a buffer');
			return [buf.includes('this'), buf.includes('is'), buf.includes(Buffer.from('a buffer')), buf.includes(97),
				buf.includes(Buffer.from('a buffer example')), buf.includes('this', 4)].join(); })()`, "true,true,true,true,false,false"},
		// slice and subarray share memory; Uint8Array's slice copies
		{`(function () { var buf1 = Buffer.allocUnsafe(26);
			for (var i = 0; i < 26; i++) buf1[i] = i + 97;
			var buf2 = buf1.subarray(0, 3); var before = buf2.toString('ascii', 0, buf2.length);
			buf1[0] = 33; return before + ' ' + buf2.toString('ascii', 0, buf2.length); })()`, "abc !bc"},
		{`(function () { var buf = Buffer.from('buffer');
			return [buf.subarray(-6, -1).toString(), buf.subarray(-6, -2).toString(), buf.subarray(-5, -2).toString()].join(); })()`, "buffe,buff,uff"},
		{`(function () { var buf = Buffer.from('buffer'); var copiedBuf = Uint8Array.prototype.slice.call(buf);
			copiedBuf[0]++; var a = copiedBuf.toString(); var notCopied = buf.slice(); notCopied[0]++;
			return buf.toString() + ' ' + Buffer.isBuffer(buf.slice(1)); })()`, "cuffer true"},
		{`Buffer.from('buffer').slice(-6, -1).toString()`, "buffe"},
		// fill, copy, write, swap
		{`Buffer.allocUnsafe(5).fill('h').toString()`, "hhhhh"},
		{`Buffer.alloc(5).fill('\u0222').toString('hex')`, "c8a2c8a2c8"},
		{`Buffer.alloc(5).fill(0x1ff).toString('hex')`, "ffffffffff"},
		{`(function () { var buf1 = Buffer.allocUnsafe(26), buf2 = Buffer.allocUnsafe(26).fill('!');
			for (var i = 0; i < 26; i++) buf1[i] = i + 97;
			var n = buf1.copy(buf2, 8, 16, 20); return n + ' ' + buf2.toString('ascii', 0, 25); })()`, "4 !!!!!!!!qrst!!!!!!!!!!!!!"},
		{`(function () { var buf = Buffer.alloc(256); var len = buf.write('\u00bd + \u00bc = \u00be', 0);
			return len + ' bytes: ' + buf.toString('utf8', 0, len); })()`, "12 bytes: ½ + ¼ = ¾"},
		{`(function () { var buffer = Buffer.alloc(10); var length = buffer.write('abcd', 8);
			return length + ' bytes: ' + buffer.toString('utf8', 8, 10); })()`, "2 bytes: ab"},
		{`Buffer.from([0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8]).swap16().toString('hex')`, "0201040306050807"},
		{`Buffer.from([0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8]).swap32().toString('hex')`, "0403020108070605"},
		{`Buffer.from([0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8]).swap64().toString('hex')`, "0807060504030201"},
		// reads
		{`Buffer.from([1, -2]).readUInt8(0)`, 1.0},
		{`Buffer.from([1, -2]).readUInt8(1)`, 254.0},
		{`Buffer.from([-1, 5]).readInt8(0)`, -1.0},
		{`Buffer.from([-1, 5]).readInt8(1)`, 5.0},
		{`Buffer.from([0x12, 0x34, 0x56]).readUInt16BE(0).toString(16)`, "1234"},
		{`Buffer.from([0x12, 0x34, 0x56]).readUInt16LE(0).toString(16)`, "3412"},
		{`Buffer.from([0x12, 0x34, 0x56]).readUInt16BE(1).toString(16)`, "3456"},
		{`Buffer.from([0x12, 0x34, 0x56]).readUInt16LE(1).toString(16)`, "5634"},
		{`Buffer.from([0, 5]).readInt16BE(0)`, 5.0},
		{`Buffer.from([0, 5]).readInt16LE(0)`, 1280.0},
		{`Buffer.from([0x12, 0x34, 0x56, 0x78]).readUInt32BE(0).toString(16)`, "12345678"},
		{`Buffer.from([0x12, 0x34, 0x56, 0x78]).readUInt32LE(0).toString(16)`, "78563412"},
		{`Buffer.from([0, 0, 0, 5]).readInt32BE(0)`, 5.0},
		{`Buffer.from([0, 0, 0, 5]).readInt32LE(0)`, 83886080.0},
		{`Buffer.from([0x12, 0x34, 0x56, 0x78, 0x90, 0xab]).readIntLE(0, 6).toString(16)`, "-546f87a9cbee"},
		{`Buffer.from([0x12, 0x34, 0x56, 0x78, 0x90, 0xab]).readIntBE(0, 6).toString(16)`, "1234567890ab"},
		{`Buffer.from([0x12, 0x34, 0x56, 0x78, 0x90, 0xab]).readUIntBE(0, 6).toString(16)`, "1234567890ab"},
		{`Buffer.from([0x12, 0x34, 0x56, 0x78, 0x90, 0xab]).readUIntLE(0, 6).toString(16)`, "ab9078563412"},
		{`Buffer.from([1, 2, 3, 4]).readFloatBE(0)`, 2.387939260590663e-38},
		{`Buffer.from([1, 2, 3, 4]).readFloatLE(0)`, 1.539989614439558e-36},
		{`Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]).readDoubleBE(0)`, 8.20788039913184e-304},
		{`Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]).readDoubleLE(0)`, 5.447603722011605e-270},
		{`String(Buffer.from([0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff]).readBigUInt64BE(0))`, "4294967295"},
		{`String(Buffer.from([0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff]).readBigUInt64LE(0))`, "18446744069414584320"},
		{`String(Buffer.from([0, 0, 0, 0, 0, 0, 0, 5]).readBigInt64BE(0))`, "5"},
		{`String(Buffer.from('ffffffffffffffff', 'hex').readBigInt64LE(0))`, "-1"},
		{`Buffer.from([1, -2]).readUint8(1)`, 254.0}, // the lower-case aliases
		{`Buffer.from([0x12, 0x34]).readUint16BE === Buffer.prototype.readUInt16BE`, true},
		// writes
		{`(function () { var buf = Buffer.allocUnsafe(4); buf.writeUInt8(0x3, 0); buf.writeUInt8(0x4, 1);
			buf.writeUInt8(0x23, 2); buf.writeUInt8(0x42, 3); return buf.toString('hex'); })()`, "03042342"},
		{`(function () { var buf = Buffer.allocUnsafe(2); buf.writeInt8(2, 0); buf.writeInt8(-2, 1); return buf.toString('hex'); })()`, "02fe"},
		{`(function () { var buf = Buffer.allocUnsafe(4); buf.writeUInt16BE(0xdead, 0); buf.writeUInt16BE(0xbeef, 2); return buf.toString('hex'); })()`, "deadbeef"},
		{`(function () { var buf = Buffer.allocUnsafe(4); buf.writeUInt16LE(0xdead, 0); buf.writeUInt16LE(0xbeef, 2); return buf.toString('hex'); })()`, "addeefbe"},
		{`(function () { var buf = Buffer.allocUnsafe(4); buf.writeInt16BE(0x0102, 0); return buf.toString('hex', 0, 2); })()`, "0102"},
		{`(function () { var buf = Buffer.allocUnsafe(4); buf.writeInt16LE(0x0304, 0); return buf.toString('hex', 0, 2); })()`, "0403"},
		{`(function () { var buf = Buffer.allocUnsafe(4); buf.writeUInt32BE(0xfeedface, 0); return buf.toString('hex'); })()`, "feedface"},
		{`(function () { var buf = Buffer.allocUnsafe(4); buf.writeUInt32LE(0xfeedface, 0); return buf.toString('hex'); })()`, "cefaedfe"},
		{`(function () { var buf = Buffer.allocUnsafe(4); buf.writeInt32BE(0x01020304, 0); return buf.toString('hex'); })()`, "01020304"},
		{`(function () { var buf = Buffer.allocUnsafe(4); buf.writeInt32LE(0x05060708, 0); return buf.toString('hex'); })()`, "08070605"},
		{`(function () { var buf = Buffer.allocUnsafe(6); buf.writeUIntBE(0x1234567890ab, 0, 6); return buf.toString('hex'); })()`, "1234567890ab"},
		{`(function () { var buf = Buffer.allocUnsafe(6); buf.writeUIntLE(0x1234567890ab, 0, 6); return buf.toString('hex'); })()`, "ab9078563412"},
		{`(function () { var buf = Buffer.allocUnsafe(6); buf.writeIntBE(0x1234567890ab, 0, 6); return buf.toString('hex'); })()`, "1234567890ab"},
		{`(function () { var buf = Buffer.allocUnsafe(6); buf.writeIntLE(0x1234567890ab, 0, 6); return buf.toString('hex'); })()`, "ab9078563412"},
		{`(function () { var buf = Buffer.allocUnsafe(4); buf.writeFloatBE(0xcafebabe, 0); return buf.toString('hex'); })()`, "4f4afebb"},
		{`(function () { var buf = Buffer.allocUnsafe(4); buf.writeFloatLE(0xcafebabe, 0); return buf.toString('hex'); })()`, "bbfe4a4f"},
		{`(function () { var buf = Buffer.allocUnsafe(8); buf.writeDoubleBE(123.456, 0); return buf.toString('hex'); })()`, "405edd2f1a9fbe77"},
		{`(function () { var buf = Buffer.allocUnsafe(8); buf.writeDoubleLE(123.456, 0); return buf.toString('hex'); })()`, "77be9f1a2fdd5e40"},
		{`(function () { var buf = Buffer.allocUnsafe(8); buf.writeBigInt64BE(BigInt('0x0102030405060708'), 0); return buf.toString('hex'); })()`, "0102030405060708"},
		{`(function () { var buf = Buffer.allocUnsafe(8); buf.writeBigInt64LE(BigInt('0x0102030405060708'), 0); return buf.toString('hex'); })()`, "0807060504030201"},
		{`(function () { var buf = Buffer.allocUnsafe(8); buf.writeBigUInt64BE(BigInt('0xdecafafecacefade'), 0); return buf.toString('hex'); })()`, "decafafecacefade"},
		{`(function () { var buf = Buffer.allocUnsafe(8); buf.writeBigUInt64LE(BigInt('0xdecafafecacefade'), 0); return buf.toString('hex'); })()`, "defacecafefacade"},
		{`Buffer.alloc(4).writeUInt16BE(1, 2)`, 4.0}, // returns offset plus bytes written
		// a Buffer is a Uint8Array, indexable, with a length
		{`Buffer.alloc(65536).length`, 65536.0},
		{`Buffer.prototype.indexOf.call(new Uint8Array(1 << 20), Buffer.alloc(4096, 1))`, -1.0},
		{`Buffer.prototype.lastIndexOf.call(new Uint8Array(1 << 20).fill(7), 7)`, 1048575.0},
		{`Buffer.from([1, 2, 3]) instanceof Uint8Array`, true},
		{`Buffer.from([1, 2, 3])[1] + Buffer.from([1, 2, 3]).length`, 5.0},
		{`Object.keys(Buffer.from([7, 8])).join()`, "0,1"},
	} {
		v, err := rt.RunString(tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		got := v.Export()
		if i, ok := got.(int64); ok {
			got = float64(i)
		}
		if got != tc.want {
			t.Errorf("%s\n got %#v\nwant %#v", tc.expr, got, tc.want)
		}
	}
}

// TestBufferErrors: what Node's documentation says throws, throws the
// error (class and code) it documents.
func TestBufferErrors(t *testing.T) {
	rt := bufferRuntime(t)
	for _, tc := range []struct{ expr, want string }{
		{`Buffer.from([0x12, 0x34, 0x56]).readUInt16LE(2)`, "RangeError ERR_OUT_OF_RANGE"},
		{`Buffer.from([0, 0, 0, 5]).readInt32LE(1)`, "RangeError ERR_OUT_OF_RANGE"},
		{`Buffer.from([-1, 5]).readInt8(2)`, "RangeError ERR_OUT_OF_RANGE"},
		{`Buffer.from([1, -2]).readUInt8(2)`, "RangeError ERR_OUT_OF_RANGE"},
		{`Buffer.from([1, 2, 3, 4]).readFloatLE(1)`, "RangeError ERR_OUT_OF_RANGE"},
		{`Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]).readDoubleLE(1)`, "RangeError ERR_OUT_OF_RANGE"},
		{`Buffer.from([0x12, 0x34, 0x56, 0x78, 0x90, 0xab]).readIntBE(1, 6)`, "RangeError ERR_OUT_OF_RANGE"},
		{`Buffer.from([0x12, 0x34, 0x56, 0x78, 0x90, 0xab]).readIntBE(1, 0)`, "RangeError ERR_OUT_OF_RANGE"},
		{`Buffer.from([0x12, 0x34, 0x56, 0x78, 0x90, 0xab]).readUIntBE(1, 6)`, "RangeError ERR_OUT_OF_RANGE"},
		{`Buffer.from([1]).readUInt16LE(0)`, "RangeError ERR_BUFFER_OUT_OF_BOUNDS"},
		{`Buffer.from([1, 2]).readUInt8(0.5)`, "RangeError ERR_OUT_OF_RANGE"},
		{`Buffer.from([1, 2]).readUInt8('1')`, "TypeError ERR_INVALID_ARG_TYPE"},
		{`Buffer.from([1, 2, 3]).swap16()`, "RangeError ERR_INVALID_BUFFER_SIZE"},
		{`Buffer.from([1, 2, 3]).swap32()`, "RangeError ERR_INVALID_BUFFER_SIZE"},
		{`Buffer.alloc(1).writeUInt8(256, 0)`, "RangeError ERR_OUT_OF_RANGE"},
		{`Buffer.alloc(2).writeInt16BE(-32769, 0)`, "RangeError ERR_OUT_OF_RANGE"},
		{`Buffer.alloc(8).writeBigUInt64BE(1, 0)`, "TypeError ERR_INVALID_ARG_TYPE"},
		{`Buffer.from(5)`, "TypeError ERR_INVALID_ARG_TYPE"},
		{`Buffer.from(null)`, "TypeError ERR_INVALID_ARG_TYPE"},
		{`Buffer.from('x', 'bogus')`, "TypeError ERR_UNKNOWN_ENCODING"},
		{`Buffer.from('x').toString('bogus')`, "TypeError ERR_UNKNOWN_ENCODING"},
		{`Buffer.alloc(-1)`, "RangeError ERR_OUT_OF_RANGE"},
		{`Buffer.alloc('5')`, "TypeError ERR_INVALID_ARG_TYPE"},
		{`Buffer.concat('ab')`, "TypeError ERR_INVALID_ARG_TYPE"},
		{`Buffer.concat([[1, 2]])`, "TypeError ERR_INVALID_ARG_TYPE"},
		{`Buffer.from('a').equals('a')`, "TypeError ERR_INVALID_ARG_TYPE"},
		// sensorgate's bound on what Buffer's own functions make (Node's
		// is about 4 GiB): a hostile codec gets an error, not a native
		// loop over a billion elements.
		{`Buffer.alloc(65537)`, "RangeError ERR_OUT_OF_RANGE"},
		{`Buffer.from({length: 1e9})`, "RangeError ERR_OUT_OF_RANGE"},
		{`Buffer.concat([Buffer.alloc(65536), Buffer.alloc(1)])`, "RangeError ERR_OUT_OF_RANGE"},
	} {
		v, err := rt.RunString(`(function () { try { ` + tc.expr + `; return "no error"; } catch (e) { return e.name + " " + e.code; } })()`)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.String(); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.expr, got, tc.want)
		}
	}
}

// TestBufferCodec: a ChirpStack v4 codec using Buffer as ChirpStack's
// own test codecs do decodes, and Buffer is built per call (a codec
// replacing or extending it affects only its own call).
func TestBufferCodec(t *testing.T) {
	src := `
function decodeUplink(input) {
  var buf = new Buffer(input.bytes);
  Buffer.prototype.extra = (Buffer.prototype.extra || 0) + 1;
  var was = typeof Buffer.marker;
  Buffer.marker = 1;
  return { data: {
    data_hex: buf.toString('hex'),
    temp: buf.readInt16BE(0) / 100,
    f: buf.readFloatBE(2).toFixed(3),
    extra: buf.extra,
    marker: was
  } };
}`
	c, err := Compile("cs-buffer.js", []byte(src), relaxed)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		res, err := c.Decode(decoders.Input{FPort: 10, Bytes: []byte{0x09, 0x29, 0x3f, 0xc0, 0x00, 0x00}})
		if err != nil {
			t.Fatal(err)
		}
		d := res.DataMap()
		if d["data_hex"] != "09293fc00000" || d["temp"] != 23.45 || d["f"] != "1.500" || d["extra"] != 1.0 || d["marker"] != "undefined" {
			t.Fatalf("data %v", d)
		}
		res.Record.Release()
	}
	// A codec's own Buffer wins over the built-in one.
	own, err := Compile("own-buffer.js", []byte(`var Buffer = {mine: true}; function decodeUplink() { return {data: {mine: Buffer.mine}}; }`), relaxed)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := own.Run(decoders.Input{Bytes: []byte{1}}); err != nil || out.Data["mine"] != true {
		t.Fatalf("own Buffer: %v %v", out.Data, err)
	}
	// A codec that never names Buffer does not get it.
	plain, err := Compile("plain.js", []byte(`function decodeUplink() { return {data: {t: typeof globalThis["Buf" + "fer"]}}; }`), relaxed)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := plain.Run(decoders.Input{Bytes: []byte{1}}); err != nil || !strings.EqualFold(out.Data["t"].(string), "undefined") {
		t.Fatalf("plain: %v %v", out.Data, err)
	}
}
