package sandbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// The protocol between the daemon and a worker: one request, then its
// answer, over the worker's stdin and stdout. A frame is a 4-byte
// little-endian length n, then n bytes: a type byte and the body. Bodies
// are built with the append helpers below (uvarints, length-prefixed
// strings, raw float64); no JSON, since a decode's IPC must cost little
// next to the decode itself.

// Request types (daemon to worker).
const (
	reqHello  byte = 1 + iota // limits; the worker answers ansReady
	reqLoad                   // compile a codec: hash, file name, source
	reqDecode                 // decode: hash, fport, time, bytes, variables
	reqBatch                  // decodes of one codec: hash, count, then each input; one answer frame each, in order
)

// Answer types (worker to daemon).
const (
	ansReady  byte = 1 + iota // hello done; limits set
	ansLoaded                 // style, normalize
	ansResult                 // warnings, record, samples
	ansError                  // error kind, message (and a rejection's parts)
)

// frameHeader is the length prefix's size.
const frameHeader = 4

// errFrame is a frame that breaks the protocol: cut short, too long, of
// an unknown type, or with a body that does not parse.
var errFrame = errors.New("sandbox: malformed frame")

// writeFrame sends buf, which was built by beginFrame and appends, as one
// frame.
func writeFrame(w io.Writer, buf []byte) error {
	binary.LittleEndian.PutUint32(buf, uint32(len(buf)-frameHeader))
	_, err := w.Write(buf)
	return err
}

// beginFrame resets buf to a frame header and type byte.
func beginFrame(buf []byte, typ byte) []byte {
	return append(buf[:0], 0, 0, 0, 0, typ)
}

// beginNextFrame starts another frame after those already in buf, so
// several answers go out in one write; finishFrame sets its length.
func beginNextFrame(buf []byte, typ byte) ([]byte, int) {
	return append(buf, 0, 0, 0, 0, typ), len(buf)
}

// finishFrame sets the length of the frame starting at start.
func finishFrame(buf []byte, start int) {
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(buf)-start-frameHeader))
}

// readFrame reads one frame into buf (grown as needed) and returns its
// type and body. A frame longer than max is refused before its body is
// read, so a peer cannot make the reader allocate more than max.
func readFrame(r io.Reader, buf []byte, max int) (typ byte, body, newBuf []byte, err error) {
	var hdr [frameHeader]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, buf, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n == 0 || uint64(n) > uint64(max) {
		return 0, nil, buf, fmt.Errorf("%w: %d bytes, limit %d", errFrame, n, max)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, buf, err
	}
	return buf[0], buf[1:], buf, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	return binary.AppendVarint(b, t.UnixNano())
}

func appendFloat(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// reader takes a body apart; the first problem sticks in err, and every
// later read returns zero values, so a parse reads on and checks once.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errFrame
	}
	r.b = nil
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// bytes returns a slice of the body (not a copy).
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

func (r *reader) string() string { return string(r.bytes()) }

func (r *reader) fixed(n int) []byte {
	if len(r.b) < n {
		r.fail()
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *reader) float() float64 {
	s := r.fixed(8)
	if s == nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(s))
}

func (r *reader) time() time.Time {
	if r.byte() == 0 {
		return time.Time{}
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return time.Time{}
	}
	r.b = r.b[n:]
	return time.Unix(0, v).UTC()
}

// count reads a list length, refusing one the rest of the body cannot
// hold at min bytes per element, so a bogus length allocates nothing.
func (r *reader) count(min int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)/min) {
		r.fail()
		return 0
	}
	return int(n)
}

// end checks that the body was read completely.
func (r *reader) end() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d bytes left over", errFrame, len(r.b))
	}
	return r.err
}
