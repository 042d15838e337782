package spool

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"strconv"
	"strings"
)

// On-disk format (all integers little-endian).
//
//	segment file  <first seq, 20 digits>.seg
//	  header  16 B: magic "SGSPOOL1" | first seq uint64
//	  records ...
//	record
//	  length  uint32  payload bytes
//	  crc     uint32  CRC-32C over length, time and payload
//	  time    int64   append time, Unix nanoseconds
//	  payload length bytes
//	ack file  "ack", two 20-byte slots at offsets 0 and 512 (separate
//	  sectors, so a torn write hits one): magic "SGACK001" | seq uint64 |
//	  CRC-32C of the first 16 bytes. The valid slot with the higher seq wins.
const (
	segMagic      = "SGSPOOL1"
	segHeaderSize = 16
	recHeaderSize = 16
	segSuffix     = ".seg"
	segNameDigits = 20

	ackFileName  = "ack"
	lockFileName = "lock"
	ackMagic     = "SGACK001"
	ackSlotSize  = 20
	ackSlot1Off  = 512
)

// castagnoli is the CRC-32C table; the polynomial has hardware support on
// amd64 and arm64, so checksumming costs little next to the copy.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segName is the file name of the segment whose first record is seq; the
// fixed width makes lexical order sequence order.
func segName(first uint64) string {
	return fmt.Sprintf("%0*d%s", segNameDigits, first, segSuffix)
}

// parseSegName returns the first sequence number a segment file name
// carries, or false for any other file.
func parseSegName(name string) (uint64, bool) {
	if len(name) != segNameDigits+len(segSuffix) || !strings.HasSuffix(name, segSuffix) {
		return 0, false
	}
	seq, err := strconv.ParseUint(name[:segNameDigits], 10, 64)
	if err != nil || seq == 0 {
		return 0, false
	}
	return seq, true
}

func (s *Spool) segPath(first uint64) string { return filepath.Join(s.dir, segName(first)) }

// putSegHeader writes a segment header into b (len ≥ segHeaderSize).
func putSegHeader(b []byte, first uint64) {
	copy(b, segMagic)
	binary.LittleEndian.PutUint64(b[8:16], first)
}

// putRecHeader fills hdr for payload p appended at unix-nano time t.
func putRecHeader(hdr *[recHeaderSize]byte, p []byte, t int64) {
	binary.LittleEndian.PutUint32(hdr[0:4], uint32(len(p)))
	binary.LittleEndian.PutUint64(hdr[8:16], uint64(t))
	binary.LittleEndian.PutUint32(hdr[4:8], recordCRC(hdr[:], p))
}

// recordCRC covers the length and time as well as the payload, so a
// damaged header is caught, not only damaged data.
func recordCRC(hdr []byte, p []byte) uint32 {
	c := crcSmall(0, hdr[0:4])
	c = crcSmall(c, hdr[8:16])
	return crc32.Update(c, castagnoli, p)
}

// crcSmall is crc32.Update for a few bytes. Slices given to crc32.Update
// escape to the heap, which would cost Append an allocation for its
// stack-allocated header; a table loop over 12 bytes costs nothing.
func crcSmall(crc uint32, b []byte) uint32 {
	crc = ^crc
	for _, v := range b {
		crc = castagnoli[byte(crc)^v] ^ (crc >> 8)
	}
	return ^crc
}

// putAckSlot encodes an ack slot for seq into b (len ≥ ackSlotSize).
func putAckSlot(b []byte, seq uint64) {
	copy(b, ackMagic)
	binary.LittleEndian.PutUint64(b[8:16], seq)
	binary.LittleEndian.PutUint32(b[16:20], crc32.Checksum(b[:16], castagnoli))
}

// parseAckSlot decodes an ack slot; false if it is torn, blank or foreign.
func parseAckSlot(b []byte) (uint64, bool) {
	if len(b) < ackSlotSize || string(b[:8]) != ackMagic {
		return 0, false
	}
	if crc32.Checksum(b[:16], castagnoli) != binary.LittleEndian.Uint32(b[16:20]) {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[8:16]), true
}
