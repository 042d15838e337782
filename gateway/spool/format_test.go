package spool

import (
	"bytes"
	"hash/crc32"
	"testing"
)

func TestRecordCRCIsCRC32C(t *testing.T) {
	var hdr [recHeaderSize]byte
	for _, p := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("abc"), 1000)} {
		putRecHeader(&hdr, p, 1234567890123)
		want := crc32.Checksum(append(append(append([]byte(nil), hdr[0:4]...), hdr[8:16]...), p...), crc32.MakeTable(crc32.Castagnoli))
		if got := recordCRC(hdr[:], p); got != want {
			t.Fatalf("recordCRC(%d bytes) = %08x, want CRC-32C %08x", len(p), got, want)
		}
	}
}

func TestSegName(t *testing.T) {
	for _, seq := range []uint64{1, 42, 1<<64 - 1} {
		got, ok := parseSegName(segName(seq))
		if !ok || got != seq {
			t.Fatalf("parseSegName(segName(%d)) = %d, %v", seq, got, ok)
		}
	}
	for _, name := range []string{"lock", "ack", "00000000000000000000.seg", "0000000000000000001x.seg", "00000000000000000001.tmp"} {
		if _, ok := parseSegName(name); ok {
			t.Fatalf("parseSegName(%q) accepted a non-segment", name)
		}
	}
}
