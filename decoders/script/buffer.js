// Buffer for codecs written for ChirpStack v4, whose runtime gives every
// codec Node's Buffer (through the "buffer" package for browsers).
// Written for sensorgate from Node's documentation of the Buffer API:
// a Buffer is a Uint8Array with Node's static constructors, encodings,
// and typed reads and writes. Evaluating this file yields the Buffer
// constructor; it runs in a codec's runtime when the codec first
// touches Buffer.
(function () {
  "use strict";

  function rangeError(code, msg) {
    var e = new RangeError(msg);
    e.code = code;
    return e;
  }
  function typeError(code, msg) {
    var e = new TypeError(msg);
    e.code = code;
    return e;
  }
  function def(obj, name, value) {
    Object.defineProperty(obj, name, { value: value, writable: true, configurable: true, enumerable: false });
  }

  // Encodings, by every name Node accepts (case-insensitive).
  function normEncoding(enc) {
    if (enc === undefined || enc === null) {
      return "utf8";
    }
    switch (String(enc).toLowerCase()) {
      case "utf8": case "utf-8": return "utf8";
      case "hex": return "hex";
      case "base64": return "base64";
      case "base64url": return "base64url";
      case "ascii": return "ascii";
      case "latin1": case "binary": return "latin1";
      case "ucs2": case "ucs-2": case "utf16le": case "utf-16le": return "utf16le";
    }
    return "";
  }
  function encoding(enc) {
    var e = normEncoding(enc);
    if (e === "") {
      throw typeError("ERR_UNKNOWN_ENCODING", "Unknown encoding: " + enc);
    }
    return e;
  }

  // String to bytes, as an array of numbers.
  function utf8Bytes(s) {
    var out = [];
    for (var i = 0; i < s.length; i++) {
      var c = s.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
        var d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
        }
      }
      if (c >= 0xd800 && c <= 0xdfff) {
        c = 0xfffd; // a lone surrogate
      }
      if (c < 0x80) {
        out.push(c);
      } else if (c < 0x800) {
        out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
      } else if (c < 0x10000) {
        out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      } else {
        out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      }
    }
    return out;
  }
  function hexDigit(c) {
    if (c >= 48 && c <= 57) return c - 48;
    if (c >= 97 && c <= 102) return c - 87;
    if (c >= 65 && c <= 70) return c - 55;
    return -1;
  }
  // Node decodes hex up to the first pair that is not two hex digits.
  function hexBytes(s) {
    var out = [];
    for (var i = 0; i + 1 < s.length; i += 2) {
      var h = hexDigit(s.charCodeAt(i)), l = hexDigit(s.charCodeAt(i + 1));
      if (h < 0 || l < 0) {
        break;
      }
      out.push((h << 4) | l);
    }
    return out;
  }
  var B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  var B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  function b64Value(c) {
    if (c >= 65 && c <= 90) return c - 65;
    if (c >= 97 && c <= 122) return c - 71;
    if (c >= 48 && c <= 57) return c + 4;
    if (c === 43 || c === 45) return 62; // + and -: both alphabets decode
    if (c === 47 || c === 95) return 63; // / and _
    return -1;
  }
  // Base64 of either alphabet; other characters (white space) are
  // skipped, padding ends the data.
  function base64Bytes(s) {
    var out = [], acc = 0, bits = 0;
    for (var i = 0; i < s.length; i++) {
      var c = s.charCodeAt(i);
      if (c === 61) {
        break;
      }
      var v = b64Value(c);
      if (v < 0) {
        continue;
      }
      acc = ((acc << 6) | v) & 0xffffff;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out.push((acc >> bits) & 0xff);
      }
    }
    return out;
  }
  function latin1Bytes(s) {
    var out = new Array(s.length);
    for (var i = 0; i < s.length; i++) {
      out[i] = s.charCodeAt(i) & 0xff;
    }
    return out;
  }
  function utf16Bytes(s) {
    var out = [];
    for (var i = 0; i < s.length; i++) {
      var c = s.charCodeAt(i);
      out.push(c & 0xff, c >> 8);
    }
    return out;
  }
  function stringBytes(s, enc) {
    switch (encoding(enc)) {
      case "hex": return hexBytes(s);
      case "base64": case "base64url": return base64Bytes(s);
      case "ascii": case "latin1": return latin1Bytes(s);
      case "utf16le": return utf16Bytes(s);
    }
    return utf8Bytes(s);
  }

  // Bytes to string. Char codes are collected and turned into a string in
  // chunks, to keep apply's argument list short.
  function chars() {
    var codes = [], out = "";
    return {
      push: function (c) {
        codes.push(c);
        if (codes.length >= 4096) {
          out += String.fromCharCode.apply(null, codes);
          codes = [];
        }
      },
      done: function () {
        return out + String.fromCharCode.apply(null, codes);
      }
    };
  }
  // UTF-8 as the WHATWG decoder reads it (as Node does): each maximal
  // invalid subsequence becomes one U+FFFD.
  function utf8Text(b, start, end) {
    var out = chars(), cp = 0, need = 0, lower = 0x80, upper = 0xbf;
    for (var i = start; i < end; i++) {
      var x = b[i];
      if (need === 0) {
        if (x < 0x80) {
          out.push(x);
        } else if (x >= 0xc2 && x <= 0xdf) {
          need = 1;
          cp = x & 0x1f;
        } else if (x >= 0xe0 && x <= 0xef) {
          if (x === 0xe0) lower = 0xa0;
          if (x === 0xed) upper = 0x9f;
          need = 2;
          cp = x & 0xf;
        } else if (x >= 0xf0 && x <= 0xf4) {
          if (x === 0xf0) lower = 0x90;
          if (x === 0xf4) upper = 0x8f;
          need = 3;
          cp = x & 7;
        } else {
          out.push(0xfffd);
        }
        continue;
      }
      if (x < lower || x > upper) {
        need = 0;
        lower = 0x80;
        upper = 0xbf;
        out.push(0xfffd);
        i--; // x starts afresh
        continue;
      }
      lower = 0x80;
      upper = 0xbf;
      cp = (cp << 6) | (x & 0x3f);
      if (--need === 0) {
        if (cp > 0xffff) {
          cp -= 0x10000;
          out.push(0xd800 + (cp >> 10));
          out.push(0xdc00 + (cp & 0x3ff));
        } else {
          out.push(cp);
        }
      }
    }
    if (need > 0) {
      out.push(0xfffd);
    }
    return out.done();
  }
  var HEX = "0123456789abcdef";
  function hexText(b, start, end) {
    var s = "";
    for (var i = start; i < end; i++) {
      s += HEX.charAt(b[i] >> 4) + HEX.charAt(b[i] & 15);
    }
    return s;
  }
  function base64Text(b, start, end, alphabet, pad) {
    var s = "";
    for (var i = start; i < end; i += 3) {
      var n = end - i, x = (b[i] << 16) | ((n > 1 ? b[i + 1] : 0) << 8) | (n > 2 ? b[i + 2] : 0);
      s += alphabet.charAt(x >> 18) + alphabet.charAt((x >> 12) & 63);
      s += n > 1 ? alphabet.charAt((x >> 6) & 63) : pad;
      s += n > 2 ? alphabet.charAt(x & 63) : pad;
    }
    return s;
  }
  function byteText(b, start, end, mask) {
    var out = chars();
    for (var i = start; i < end; i++) {
      out.push(b[i] & mask);
    }
    return out.done();
  }
  function utf16Text(b, start, end) {
    var out = chars();
    for (var i = start; i + 1 < end; i += 2) {
      out.push(b[i] | (b[i + 1] << 8));
    }
    return out.done();
  }

  function isArrayBuffer(v) {
    return v instanceof ArrayBuffer || (typeof SharedArrayBuffer === "function" && v instanceof SharedArrayBuffer);
  }
  function describe(v) {
    if (v === null) return "null";
    if (typeof v === "object") return "an instance of " + ((v.constructor && v.constructor.name) || "Object");
    if (typeof v === "function") return "function " + v.name;
    return "type " + typeof v + " (" + String(v) + ")";
  }
  function checkSize(size) {
    if (typeof size !== "number") {
      throw typeError("ERR_INVALID_ARG_TYPE", 'The "size" argument must be of type number. Received ' + describe(size));
    }
    if (!(size >= 0 && size <= 0x7fffffff)) {
      throw rangeError("ERR_OUT_OF_RANGE", 'The value of "size" is out of range. It must be >= 0 && <= 2147483647. Received ' + size);
    }
    return size;
  }

  // Buffer is a Uint8Array. new Buffer(...) is Node's deprecated form,
  // which ChirpStack's own codec examples use (new Buffer(input.bytes));
  // typed-array methods (subarray, map, slice of Uint8Array) construct
  // through it too, with a length or (ArrayBuffer, offset, length).
  class Buffer extends Uint8Array {
    constructor(value, encodingOrOffset, length) {
      if (typeof value === "number") {
        super(checkSize(value));
      } else if (typeof value === "string") {
        return fromBytes(stringBytes(value, encodingOrOffset));
      } else if (isArrayBuffer(value)) {
        super(value, encodingOrOffset === undefined ? 0 : encodingOrOffset, length);
      } else {
        return Buffer.from(value);
      }
    }

    static from(value, encodingOrOffset, length) {
      if (typeof value === "string") {
        return fromBytes(stringBytes(value, encodingOrOffset));
      }
      if (isArrayBuffer(value)) {
        return new Buffer(value, encodingOrOffset, length); // shares memory
      }
      if (typeof value === "object" && value !== null) {
        // As Node: an object whose valueOf gives something else (a
        // String object) is that value.
        var prim = typeof value.valueOf === "function" ? value.valueOf() : value;
        if (prim !== value && prim !== null && prim !== undefined) {
          return Buffer.from(prim, encodingOrOffset, length);
        }
        if (value.type === "Buffer" && Array.isArray(value.data)) {
          return fromBytes(value.data); // what toJSON makes
        }
        if (typeof value.length === "number" || ArrayBuffer.isView(value)) {
          return fromBytes(value); // a copy
        }
      }
      if (typeof value === "number") {
        throw typeError("ERR_INVALID_ARG_TYPE", 'The "value" argument must not be of type number. Received type number (' + value + ")");
      }
      throw typeError("ERR_INVALID_ARG_TYPE", "The first argument must be of type string or an instance of Buffer, ArrayBuffer, or Array or an Array-like Object. Received " + describe(value));
    }

    static alloc(size, fill, enc) {
      var b = new Buffer(checkSize(size));
      if (fill !== undefined && fill !== 0 && size > 0) {
        b.fill(fill, 0, b.length, enc);
      }
      return b;
    }
    static allocUnsafe(size) {
      return new Buffer(checkSize(size)); // zeroed: nothing to leak
    }
    static allocUnsafeSlow(size) {
      return new Buffer(checkSize(size));
    }
    static isBuffer(v) {
      return v instanceof Buffer;
    }
    static isEncoding(enc) {
      return typeof enc === "string" && enc !== "" && normEncoding(enc) !== "";
    }
    static byteLength(v, enc) {
      if (typeof v === "string") {
        return stringBytes(v, enc).length;
      }
      if (ArrayBuffer.isView(v) || isArrayBuffer(v)) {
        return v.byteLength;
      }
      throw typeError("ERR_INVALID_ARG_TYPE", 'The "string" argument must be of type string or an instance of Buffer or ArrayBuffer. Received ' + describe(v));
    }
    static compare(a, b) {
      if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array)) {
        throw typeError("ERR_INVALID_ARG_TYPE", 'The "buf1" and "buf2" arguments must be one of type Buffer or Uint8Array');
      }
      return compareBytes(a, 0, a.length, b, 0, b.length);
    }
    static concat(list, totalLength) {
      if (!Array.isArray(list)) {
        throw typeError("ERR_INVALID_ARG_TYPE", 'The "list" argument must be an instance of Array. Received ' + describe(list));
      }
      var i, n = 0;
      for (i = 0; i < list.length; i++) {
        if (!(list[i] instanceof Uint8Array)) {
          throw typeError("ERR_INVALID_ARG_TYPE", 'The "list[' + i + ']" argument must be an instance of Buffer or Uint8Array. Received ' + describe(list[i]));
        }
        n += list[i].length;
      }
      if (totalLength !== undefined) {
        n = checkSize(totalLength);
      }
      var out = new Buffer(n), pos = 0;
      for (i = 0; i < list.length && pos < n; i++) {
        var part = list[i];
        if (part.length > n - pos) {
          part = part.subarray(0, n - pos);
        }
        out.set(part, pos);
        pos += part.length;
      }
      return out;
    }

    toString(enc, start, end) {
      var len = this.length;
      start = start === undefined ? 0 : Math.max(0, Math.trunc(+start) || 0);
      end = end === undefined ? len : Math.min(len, Math.trunc(+end) || 0);
      if (end <= start) {
        return "";
      }
      switch (encoding(enc)) {
        case "hex": return hexText(this, start, end);
        case "base64": return base64Text(this, start, end, B64, "=");
        case "base64url": return base64Text(this, start, end, B64URL, "");
        case "ascii": return byteText(this, start, end, 0x7f);
        case "latin1": return byteText(this, start, end, 0xff);
        case "utf16le": return utf16Text(this, start, end);
      }
      return utf8Text(this, start, end);
    }
    toLocaleString(enc, start, end) {
      return this.toString(enc, start, end);
    }
    toJSON() {
      return { type: "Buffer", data: Array.prototype.slice.call(this) };
    }
    equals(other) {
      if (!(other instanceof Uint8Array)) {
        throw typeError("ERR_INVALID_ARG_TYPE", 'The "otherBuffer" argument must be an instance of Buffer or Uint8Array. Received ' + describe(other));
      }
      return compareBytes(this, 0, this.length, other, 0, other.length) === 0;
    }
    compare(target, targetStart, targetEnd, sourceStart, sourceEnd) {
      if (!(target instanceof Uint8Array)) {
        throw typeError("ERR_INVALID_ARG_TYPE", 'The "target" argument must be an instance of Buffer or Uint8Array. Received ' + describe(target));
      }
      var ts = targetStart === undefined ? 0 : targetStart, te = targetEnd === undefined ? target.length : targetEnd;
      var ss = sourceStart === undefined ? 0 : sourceStart, se = sourceEnd === undefined ? this.length : sourceEnd;
      if (ts < 0 || te > target.length || ss < 0 || se > this.length) {
        throw rangeError("ERR_OUT_OF_RANGE", "The value of an index argument is out of range");
      }
      return compareBytes(this, ss, Math.max(ss, se), target, ts, Math.max(ts, te));
    }
    // slice shares memory with the buffer, as subarray does (unlike
    // Uint8Array's slice, which copies).
    slice(start, end) {
      return this.subarray(start, end);
    }
    indexOf(value, byteOffset, enc) {
      return search(this, value, byteOffset, enc, true);
    }
    lastIndexOf(value, byteOffset, enc) {
      return search(this, value, byteOffset, enc, false);
    }
    includes(value, byteOffset, enc) {
      return search(this, value, byteOffset, enc, true) !== -1;
    }
    fill(value, offset, end, enc) {
      if (typeof offset === "string") {
        enc = offset;
        offset = 0;
        end = this.length;
      } else if (typeof end === "string") {
        enc = end;
        end = this.length;
      }
      offset = offset === undefined ? 0 : offset;
      end = end === undefined ? this.length : end;
      if (offset < 0 || end > this.length) {
        throw rangeError("ERR_OUT_OF_RANGE", 'The value of "offset" or "end" is out of range');
      }
      var pattern;
      if (typeof value === "number") {
        pattern = [value & 255];
      } else if (typeof value === "boolean") {
        pattern = [value ? 1 : 0];
      } else if (typeof value === "string") {
        pattern = stringBytes(value, enc);
        if (pattern.length === 0) {
          pattern = [0];
        }
      } else if (value instanceof Uint8Array) {
        pattern = value;
      } else {
        pattern = [0];
      }
      for (var i = offset, j = 0; i < end; i++, j++) {
        this[i] = pattern[j % pattern.length];
      }
      return this;
    }
    copy(target, targetStart, sourceStart, sourceEnd) {
      var ts = targetStart === undefined ? 0 : targetStart;
      var ss = sourceStart === undefined ? 0 : sourceStart;
      var se = sourceEnd === undefined ? this.length : Math.min(sourceEnd, this.length);
      if (ts < 0 || ss < 0) {
        throw rangeError("ERR_OUT_OF_RANGE", "The value of an index argument is out of range");
      }
      var n = Math.max(0, Math.min(se - ss, target.length - ts));
      if (n > 0) {
        target.set(this.subarray(ss, ss + n), ts);
      }
      return n;
    }
    write(string, offset, length, enc) {
      if (typeof offset === "string") {
        enc = offset;
        offset = 0;
        length = undefined;
      } else if (typeof length === "string") {
        enc = length;
        length = undefined;
      }
      offset = offset === undefined ? 0 : offset;
      if (offset < 0 || offset > this.length) {
        throw rangeError("ERR_OUT_OF_RANGE", 'The value of "offset" is out of range. It must be >= 0 && <= ' + this.length + ". Received " + offset);
      }
      var room = this.length - offset;
      if (length !== undefined && length < room) {
        room = Math.max(0, length);
      }
      var e = encoding(enc), bytes = stringBytes(String(string), e), n = Math.min(room, bytes.length);
      if (e === "utf8") {
        while (n > 0 && n < bytes.length && (bytes[n] & 0xc0) === 0x80) {
          n--; // no partial characters
        }
      }
      for (var i = 0; i < n; i++) {
        this[offset + i] = bytes[i];
      }
      return n;
    }
    // Typed reads and writes.
    readUInt8(o) { return rd(this, o, 1, false, false); }
    readInt8(o) { return rd(this, o, 1, false, true); }
    readUInt16LE(o) { return rd(this, o, 2, true, false); }
    readUInt16BE(o) { return rd(this, o, 2, false, false); }
    readInt16LE(o) { return rd(this, o, 2, true, true); }
    readInt16BE(o) { return rd(this, o, 2, false, true); }
    readUInt32LE(o) { return rd(this, o, 4, true, false); }
    readUInt32BE(o) { return rd(this, o, 4, false, false); }
    readInt32LE(o) { return rd(this, o, 4, true, true); }
    readInt32BE(o) { return rd(this, o, 4, false, true); }
    readUIntLE(o, n) { return rd(this, o, checkByteLength(n), true, false); }
    readUIntBE(o, n) { return rd(this, o, checkByteLength(n), false, false); }
    readIntLE(o, n) { return rd(this, o, checkByteLength(n), true, true); }
    readIntBE(o, n) { return rd(this, o, checkByteLength(n), false, true); }
    readFloatLE(o) { return readFloat(this, checkOffset(this, o, 4), 4, true); }
    readFloatBE(o) { return readFloat(this, checkOffset(this, o, 4), 4, false); }
    readDoubleLE(o) { return readFloat(this, checkOffset(this, o, 8), 8, true); }
    readDoubleBE(o) { return readFloat(this, checkOffset(this, o, 8), 8, false); }
    readBigUInt64LE(o) { return read64(this, o, true, false); }
    readBigUInt64BE(o) { return read64(this, o, false, false); }
    readBigInt64LE(o) { return read64(this, o, true, true); }
    readBigInt64BE(o) { return read64(this, o, false, true); }
    writeUInt8(v, o) { return wr(this, v, o, 1, false, false); }
    writeInt8(v, o) { return wr(this, v, o, 1, false, true); }
    writeUInt16LE(v, o) { return wr(this, v, o, 2, true, false); }
    writeUInt16BE(v, o) { return wr(this, v, o, 2, false, false); }
    writeInt16LE(v, o) { return wr(this, v, o, 2, true, true); }
    writeInt16BE(v, o) { return wr(this, v, o, 2, false, true); }
    writeUInt32LE(v, o) { return wr(this, v, o, 4, true, false); }
    writeUInt32BE(v, o) { return wr(this, v, o, 4, false, false); }
    writeInt32LE(v, o) { return wr(this, v, o, 4, true, true); }
    writeInt32BE(v, o) { return wr(this, v, o, 4, false, true); }
    writeUIntLE(v, o, n) { return wr(this, v, o, checkByteLength(n), true, false); }
    writeUIntBE(v, o, n) { return wr(this, v, o, checkByteLength(n), false, false); }
    writeIntLE(v, o, n) { return wr(this, v, o, checkByteLength(n), true, true); }
    writeIntBE(v, o, n) { return wr(this, v, o, checkByteLength(n), false, true); }
    writeFloatLE(v, o) { return writeFloat(this, v, checkOffset(this, o, 4), 4, true); }
    writeFloatBE(v, o) { return writeFloat(this, v, checkOffset(this, o, 4), 4, false); }
    writeDoubleLE(v, o) { return writeFloat(this, v, checkOffset(this, o, 8), 8, true); }
    writeDoubleBE(v, o) { return writeFloat(this, v, checkOffset(this, o, 8), 8, false); }
    writeBigUInt64LE(v, o) { return write64(this, v, o, true, false); }
    writeBigUInt64BE(v, o) { return write64(this, v, o, false, false); }
    writeBigInt64LE(v, o) { return write64(this, v, o, true, true); }
    writeBigInt64BE(v, o) { return write64(this, v, o, false, true); }
    swap16() {
      return swap(this, 2);
    }
    swap32() {
      return swap(this, 4);
    }
    swap64() {
      return swap(this, 8);
    }
  }

  function fromBytes(bytes) {
    var b = new Buffer(bytes.length);
    for (var i = 0; i < bytes.length; i++) {
      b[i] = bytes[i]; // a Uint8Array store truncates as Node does
    }
    return b;
  }
  function compareBytes(a, as, ae, b, bs, be) {
    var n = Math.min(ae - as, be - bs);
    for (var i = 0; i < n; i++) {
      if (a[as + i] !== b[bs + i]) {
        return a[as + i] < b[bs + i] ? -1 : 1;
      }
    }
    return ae - as < be - bs ? -1 : ae - as > be - bs ? 1 : 0;
  }
  function search(buf, value, byteOffset, enc, forward) {
    if (typeof byteOffset === "string") {
      enc = byteOffset;
      byteOffset = undefined;
    }
    var needle;
    if (typeof value === "number") {
      needle = [value & 255];
    } else if (typeof value === "string") {
      needle = stringBytes(value, enc);
    } else if (value instanceof Uint8Array) {
      needle = value;
    } else {
      throw typeError("ERR_INVALID_ARG_TYPE", 'The "value" argument must be one of type number or string or an instance of Buffer or Uint8Array. Received ' + describe(value));
    }
    var len = buf.length, last = len - needle.length, from;
    if (byteOffset === undefined || byteOffset === null || isNaN(+byteOffset)) {
      from = forward ? 0 : last;
    } else {
      from = Math.trunc(+byteOffset);
      if (from < 0) {
        from += len;
      }
    }
    if (forward) {
      for (var i = Math.max(0, from); i <= last; i++) {
        if (matchAt(buf, needle, i)) return i;
      }
    } else {
      for (var j = Math.min(from, last); j >= 0; j--) {
        if (matchAt(buf, needle, j)) return j;
      }
    }
    return -1;
  }
  function matchAt(buf, needle, i) {
    for (var k = 0; k < needle.length; k++) {
      if (buf[i + k] !== needle[k]) return false;
    }
    return true;
  }
  function swap(buf, n) {
    if (buf.length % n !== 0) {
      throw rangeError("ERR_INVALID_BUFFER_SIZE", "Buffer size must be a multiple of " + 8 * n + "-bits");
    }
    for (var i = 0; i < buf.length; i += n) {
      for (var a = i, b = i + n - 1; a < b; a++, b--) {
        var t = buf[a];
        buf[a] = buf[b];
        buf[b] = t;
      }
    }
    return buf;
  }

  // Typed reads and writes.
  function checkOffset(buf, offset, n) {
    if (offset === undefined) {
      offset = 0;
    }
    if (typeof offset !== "number") {
      throw typeError("ERR_INVALID_ARG_TYPE", 'The "offset" argument must be of type number. Received ' + describe(offset));
    }
    if (offset !== Math.floor(offset)) {
      throw rangeError("ERR_OUT_OF_RANGE", 'The value of "offset" is out of range. It must be an integer. Received ' + offset);
    }
    if (offset < 0 || offset + n > buf.length) {
      if (buf.length - n < 0) {
        throw rangeError("ERR_BUFFER_OUT_OF_BOUNDS", "Attempt to access memory outside buffer bounds");
      }
      throw rangeError("ERR_OUT_OF_RANGE", 'The value of "offset" is out of range. It must be >= 0 and <= ' + (buf.length - n) + ". Received " + offset);
    }
    return offset;
  }
  function checkByteLength(n) {
    if (typeof n !== "number") {
      throw typeError("ERR_INVALID_ARG_TYPE", 'The "byteLength" argument must be of type number. Received ' + describe(n));
    }
    if (!(n >= 1 && n <= 6) || n !== Math.floor(n)) {
      throw rangeError("ERR_OUT_OF_RANGE", 'The value of "byteLength" is out of range. It must be >= 1 and <= 6. Received ' + n);
    }
    return n;
  }
  function checkValue(value, min, max) {
    value = +value;
    if (!(value >= min && value <= max)) {
      throw rangeError("ERR_OUT_OF_RANGE", 'The value of "value" is out of range. It must be >= ' + min + " and <= " + max + ". Received " + value);
    }
    return value;
  }
  function readU(buf, o, n, le) {
    var v = 0;
    for (var i = 0; i < n; i++) {
      v = v * 256 + buf[le ? o + n - 1 - i : o + i];
    }
    return v;
  }
  function toSigned(v, n) {
    var half = Math.pow(2, 8 * n - 1);
    return v >= half ? v - 2 * half : v;
  }
  function writeU(buf, v, o, n, le) {
    for (var i = 0; i < n; i++) {
      buf[le ? o + i : o + n - 1 - i] = v % 256;
      v = Math.floor(v / 256);
    }
    return o + n;
  }
  var scratch = new DataView(new ArrayBuffer(8));
  function readFloat(buf, o, n, le) {
    for (var i = 0; i < n; i++) {
      scratch.setUint8(i, buf[o + i]);
    }
    return n === 4 ? scratch.getFloat32(0, le) : scratch.getFloat64(0, le);
  }
  function writeFloat(buf, v, o, n, le) {
    if (n === 4) {
      scratch.setFloat32(0, +v, le);
    } else {
      scratch.setFloat64(0, +v, le);
    }
    for (var i = 0; i < n; i++) {
      buf[o + i] = scratch.getUint8(i);
    }
    return o + n;
  }

  function rd(buf, offset, n, le, signed) {
    var v = readU(buf, checkOffset(buf, offset, n), n, le);
    return signed ? toSigned(v, n) : v;
  }
  function wr(buf, value, offset, n, le, signed) {
    var half = Math.pow(2, 8 * n - 1);
    value = Math.floor(signed ? checkValue(value, -half, half - 1) : checkValue(value, 0, 2 * half - 1));
    return writeU(buf, value < 0 ? value + 2 * half : value, checkOffset(buf, offset, n), n, le);
  }
  var two32 = BigInt(4294967296);
  function read64(buf, offset, le, signed) {
    var o = checkOffset(buf, offset, 8);
    var lo = readU(buf, le ? o : o + 4, 4, le), hi = readU(buf, le ? o + 4 : o, 4, le);
    var v = BigInt(hi) * two32 + BigInt(lo);
    return signed ? BigInt.asIntN(64, v) : v;
  }
  function write64(buf, value, offset, le, signed) {
    if (typeof value !== "bigint") {
      throw typeError("ERR_INVALID_ARG_TYPE", 'The "value" argument must be of type bigint. Received ' + describe(value));
    }
    if ((signed ? BigInt.asIntN(64, value) : BigInt.asUintN(64, value)) !== value) {
      throw rangeError("ERR_OUT_OF_RANGE", 'The value of "value" is out of range. Received ' + value + "n");
    }
    var o = checkOffset(buf, offset, 8), u = BigInt.asUintN(64, value);
    writeU(buf, Number(u % two32), le ? o : o + 4, 4, le);
    writeU(buf, Number(u / two32), le ? o + 4 : o, 4, le);
    return o + 8;
  }

  // Node's lower-case aliases (readUint8 for readUInt8), by assignment
  // as Node and the browser package define their methods.
  var P = Buffer.prototype, names = Object.getOwnPropertyNames(P);
  for (var i = 0; i < names.length; i++) {
    if (names[i].indexOf("UInt") >= 0) {
      P[names[i].replace("UInt", "Uint")] = P[names[i]];
    }
  }
  Buffer.poolSize = 8192;
  return Buffer;
})()
