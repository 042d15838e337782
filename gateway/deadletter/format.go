package deadletter

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"

	"github.com/sensorgate/sensorgate/gateway"
)

// On-disk format (integers little-endian).
//
//	directory  <state_dir>/deadletters/
//	segment    <first letter id, 20 digits>.dl, records back to back
//	record
//	  magic   4 B   0xFF 'D' 'L' '1'
//	  length  uint32  bytes of the body
//	  crc     uint32  CRC-32C over length and body
//	  body    kind byte ('L' letter, 'M' replay mark) | id uint64 |
//	          time int64 (Unix ns: the letter's, or the mark's) |
//	          reason byte (index in knownReasons, 255 other) |
//	          source hash uint32 | dev_eui hash uint32 (FNV-1a) | JSON
//
// The fixed fields let Open build its summaries and a listing filter by
// time, reason, source and device without decoding JSON.
// Every record checks itself, so a torn or damaged one anywhere is skipped:
// the reader looks for the next magic whose record checks. The bodies are
// JSON, which is valid UTF-8 and so never holds a 0xFF byte: a message's
// raw bytes (base64 in the JSON) cannot forge a record boundary.
const (
	recHeaderSize = 12
	bodyPrefix    = 26 // kind, id and meta
	segSuffix     = ".dl"
	segNameDigits = 20

	kindLetter byte = 'L'
	kindMark   byte = 'M'

	// maxBody bounds a record's length field, so a damaged length cannot
	// make the reader allocate or skip gigabytes.
	maxBody = 64 << 20
)

var magic = [4]byte{0xFF, 'D', 'L', '1'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// meta are a record's fixed fields after its id.
type meta struct {
	t        int64
	reason   byte
	src, dev uint32
}

// letterMeta is a letter's meta.
func letterMeta(dl *gateway.DeadLetter) meta {
	return meta{t: dl.Time.UnixNano(), reason: reasonCode(dl.Reason), src: strHash(dl.Source), dev: strHash(dl.DevEUI)}
}

// strHash is FNV-1a, for the source and dev_eui fields and their bloom
// bits.
func strHash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// appendRecord appends one framed record to dst.
func appendRecord(dst []byte, kind byte, id uint64, m meta, js []byte) []byte {
	var hdr [recHeaderSize + bodyPrefix]byte
	copy(hdr[:4], magic[:])
	binary.LittleEndian.PutUint32(hdr[4:8], uint32(bodyPrefix+len(js)))
	hdr[12] = kind
	binary.LittleEndian.PutUint64(hdr[13:21], id)
	binary.LittleEndian.PutUint64(hdr[21:29], uint64(m.t))
	hdr[29] = m.reason
	binary.LittleEndian.PutUint32(hdr[30:34], m.src)
	binary.LittleEndian.PutUint32(hdr[34:38], m.dev)
	c := crc32.Update(0, castagnoli, hdr[4:8])
	c = crc32.Update(c, castagnoli, hdr[12:])
	c = crc32.Update(c, castagnoli, js)
	binary.LittleEndian.PutUint32(hdr[8:12], c)
	dst = append(dst, hdr[:]...)
	return append(dst, js...)
}

// recordSize is the framed size of a record with js as its JSON.
func recordSize(js []byte) int64 { return int64(recHeaderSize + bodyPrefix + len(js)) }

// segName is the file name of a segment whose first letter gets id first;
// the fixed width makes lexical order id order.
func segName(first uint64) string {
	return fmt.Sprintf("%0*d%s", segNameDigits, first, segSuffix)
}

// parseSegName returns the id a segment file name carries, or false for
// any other file.
func parseSegName(name string) (uint64, bool) {
	if len(name) != segNameDigits+len(segSuffix) || !strings.HasSuffix(name, segSuffix) {
		return 0, false
	}
	id, err := strconv.ParseUint(name[:segNameDigits], 10, 64)
	if err != nil || id == 0 {
		return 0, false
	}
	return id, true
}

// record is one decoded record; js is valid until the scanner's next call.
type record struct {
	kind byte
	id   uint64
	meta
	js   []byte
	off  int64 // where it starts in the file
	size int64 // framed size
}

// scanner reads the records of r between two offsets, skipping what does
// not check: each damaged run of bytes up to the next valid record (or the
// end) counts once in bad, its bytes in badBytes.
type scanner struct {
	r        io.ReaderAt
	end      int64
	bufOff   int64  // file offset of buf[0]
	buf      []byte // file bytes [bufOff, bufOff+len(buf))
	pos      int    // next byte to look at, in buf
	chunk    int
	err      error // a read error (not EOF)
	bad      int
	badBytes int64
	read     int64 // bytes read
	// tail is the length of the run of damaged bytes at the end of the
	// range (a torn last record after a crash), 0 if the range ends with
	// a whole record.
	tail int64
}

func newScanner(r io.ReaderAt, start, end int64, chunk int) *scanner {
	return &scanner{r: r, end: end, bufOff: start, chunk: chunk}
}

// avail makes at least n bytes from pos available if the range holds
// them, and returns how many are.
func (s *scanner) avail(n int) int {
	have := len(s.buf) - s.pos
	if have >= n || s.err != nil {
		return have
	}
	left := s.end - (s.bufOff + int64(len(s.buf)))
	if left <= 0 {
		return have
	}
	// Keep the unread bytes, read more after them.
	want := max(n, s.chunk)
	if int64(want-have) > left {
		want = have + int(left)
	}
	nb := s.buf[:0]
	if cap(s.buf) < want {
		nb = make([]byte, 0, want)
	}
	nb = append(nb, s.buf[s.pos:]...)
	s.bufOff += int64(s.pos)
	s.pos = 0
	read := want - len(nb)
	nb = nb[:want]
	m, err := s.r.ReadAt(nb[have:have+read], s.bufOff+int64(have))
	nb = nb[:have+m]
	s.read += int64(m)
	if err != nil && err != io.EOF {
		s.err = err
	} else if m < read {
		// The file is shorter than the range said (cut meanwhile).
		s.end = s.bufOff + int64(len(nb))
	}
	s.buf = nb
	return len(s.buf) - s.pos
}

// next returns the next valid record; false at the end of the range or on
// a read error (s.err).
func (s *scanner) next() (record, bool) {
	badStart := int64(-1)
	for {
		if s.avail(recHeaderSize+bodyPrefix) < recHeaderSize+bodyPrefix {
			rest := int64(len(s.buf) - s.pos)
			if badStart < 0 && rest > 0 {
				badStart = s.bufOff + int64(s.pos)
			}
			if badStart >= 0 && s.err == nil {
				s.bad++
				s.tail = s.bufOff + int64(len(s.buf)) - badStart
				s.badBytes += s.tail
			}
			s.pos = len(s.buf)
			return record{}, false
		}
		h := s.buf[s.pos:]
		n := binary.LittleEndian.Uint32(h[4:8])
		if [4]byte(h[:4]) == magic && n >= bodyPrefix && n <= maxBody {
			size := recHeaderSize + int(n)
			if s.avail(size) >= size {
				h = s.buf[s.pos:]
				c := crc32.Update(0, castagnoli, h[4:8])
				c = crc32.Update(c, castagnoli, h[recHeaderSize:size])
				if c == binary.LittleEndian.Uint32(h[8:12]) {
					rec := record{kind: h[12], id: binary.LittleEndian.Uint64(h[13:21]),
						meta: meta{t: int64(binary.LittleEndian.Uint64(h[21:29])), reason: h[29],
							src: binary.LittleEndian.Uint32(h[30:34]), dev: binary.LittleEndian.Uint32(h[34:38])},
						js: h[recHeaderSize+bodyPrefix : size], off: s.bufOff + int64(s.pos), size: int64(size)}
					if badStart >= 0 {
						s.bad++
						s.badBytes += rec.off - badStart
					}
					s.pos += size
					return rec, true
				}
			}
		}
		if s.err != nil {
			return record{}, false
		}
		// Not a record here: resync on the next magic.
		if badStart < 0 {
			badStart = s.bufOff + int64(s.pos)
		}
		s.pos++
		for {
			if i := bytes.IndexByte(s.buf[s.pos:], magic[0]); i >= 0 {
				s.pos += i
				break
			}
			s.pos = len(s.buf)
			if s.avail(1) == 0 {
				break
			}
		}
	}
}
