package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"time"
	"unsafe"
)

// readChunk is how much of a segment one read syscall fetches.
const readChunk = 256 << 10

// errTorn and errChecksum say why a record was rejected.
var (
	errTorn     = errors.New("record runs past the end of the segment")
	errChecksum = errors.New("checksum mismatch")
)

// segReader walks the records of one segment file with pread, never
// reading past a limit the caller gives, so it never sees bytes the
// writer has not committed (which a failed write may still cut off).
type segReader struct {
	f      *os.File
	first  uint64 // first sequence number of the segment; 0 when none is open
	seq    uint64 // sequence number of the record at off
	off    int64  // offset of the record at seq
	buf    []byte // file bytes from bufOff
	bufOff int64
	next   uint64 // sequence number Read returns next
	// size of the record last returned by record, for skip
	recLen int64
}

// attach positions the reader at the first record of f.
func (r *segReader) attach(f *os.File, first uint64) {
	r.f, r.first, r.seq, r.off = f, first, first, segHeaderSize
	r.buf, r.bufOff, r.recLen = r.buf[:0], 0, 0
}

func (r *segReader) close() {
	if r.f != nil {
		r.f.Close()
	}
	r.f, r.first, r.buf = nil, 0, r.buf[:0]
}

// record returns the append time and payload of the record at r.off,
// verified against its checksum. The payload aliases the read buffer
// until the next call. limit is the segment's committed size.
func (r *segReader) record(limit int64) (int64, []byte, error) {
	if limit-r.off < recHeaderSize {
		return 0, nil, errTorn
	}
	if err := r.fill(recHeaderSize, limit); err != nil {
		return 0, nil, err
	}
	h := r.buf[r.off-r.bufOff:]
	n := int64(binary.LittleEndian.Uint32(h[0:4]))
	if n > limit-r.off-recHeaderSize {
		return 0, nil, errTorn
	}
	if err := r.fill(recHeaderSize+n, limit); err != nil {
		return 0, nil, err
	}
	h = r.buf[r.off-r.bufOff:]
	p := h[recHeaderSize : recHeaderSize+n]
	if recordCRC(h, p) != binary.LittleEndian.Uint32(h[4:8]) {
		return 0, nil, errChecksum
	}
	r.recLen = recHeaderSize + n
	return int64(binary.LittleEndian.Uint64(h[8:16])), p, nil
}

// skip moves past the record last returned by record.
func (r *segReader) skip() {
	r.off += r.recLen
	r.seq++
	r.recLen = 0
}

// fill makes sure buf holds need bytes from r.off, reading a chunk (but
// nothing at or past limit) when it does not.
func (r *segReader) fill(need, limit int64) error {
	if r.off >= r.bufOff && r.off+need <= r.bufOff+int64(len(r.buf)) {
		return nil
	}
	size := min(max(need, readChunk), limit-r.off)
	if int64(cap(r.buf)) < size {
		r.buf = make([]byte, size)
	}
	r.buf = r.buf[:size]
	r.bufOff = r.off
	n, err := r.f.ReadAt(r.buf, r.off)
	r.buf = r.buf[:n]
	if int64(n) < need {
		if err == nil || err == io.EOF {
			err = errTorn
		}
		return err
	}
	return nil
}

// Read returns up to max records (max < 1 means 1) after the last one
// read, stopping early once their data exceeds maxBytes (≤ 0: no limit;
// the first record is returned even if it alone is larger). It blocks
// until at least one record is available or ctx ends (or, with a live
// reader, until it joins it: see ReadBuffered), but returns what is
// available even when ctx has already ended. After Open, reading starts
// at the first record not acked. Records read but never acked are read
// again after a restart.
func (s *Spool) Read(ctx context.Context, max, maxBytes int) ([]Record, error) {
	return s.ReadBuffered(ctx, nil, max, maxBytes)
}

// oversized reports whether a reused buffer of capacity c is much larger
// than a read needs (need bytes): a read during a moment's backlog grows
// it to a megabyte or more, and kept, the reader's buffers would ratchet
// the heap (and the RSS, which follows the collector's goal) up to their
// largest read one stall at a time; replaced, the heap returns to what
// steady reads use.
func oversized(c int, need int64) bool {
	return c > 64<<10 && int64(c) > 4*need
}

// recordSize is a Record's size, for oversized.
const recordSize = int(unsafe.Sizeof(Record{}))

// Buffer is memory for ReadBuffered to reuse. The zero value is ready.
type Buffer struct {
	recs []Record
	data []byte
}

// Lines returns the Data of recs as one slice, without copying, when
// they are a run of records of the last read into b (consecutive, none
// left out): those lie next to each other in b's memory, so a run can
// go out in one write. ok is false for anything else.
func (b *Buffer) Lines(recs []Record) (lines []byte, ok bool) {
	if len(recs) == 0 {
		return nil, true
	}
	first, last := recs[0], recs[len(recs)-1]
	start, end := first.off, last.off+len(last.Data)
	if start < 0 || end > len(b.data) || start > end {
		return nil, false
	}
	n := 0
	for _, r := range recs {
		if r.off != start+n {
			return nil, false
		}
		n += len(r.Data)
	}
	return b.data[start:end:end], true
}

// ReadBuffered is Read, holding the records and their Data in buf's
// memory (a nil buf is Read): the records are valid until buf is passed
// to ReadBuffered again. With a live reader (live.go) it returns, with
// no records, when it has joined the live reader and nothing more is
// committed yet, so the caller learns of the join without waiting.
//
// Why buffers: a delivery loop that reads a chunk every few
// milliseconds then allocates nothing per chunk; fresh megabyte buffers
// each time were most of the daemon's garbage, and the runtime handed
// their pages back to the kernel and faulted them in again per chunk.
func (s *Spool) ReadBuffered(ctx context.Context, buf *Buffer, max, maxBytes int) ([]Record, error) {
	if max < 1 {
		max = 1
	}
	if buf == nil {
		buf = new(Buffer)
	}
	joined := false
	for {
		// The reader lock is not held while waiting, so Ack and Close
		// from other goroutines never wait for new data.
		s.readMu.Lock()
		limit := uint64(math.MaxUint64)
		if s.live != nil {
			limit = s.live.from - 1 // the records from there on are the live reader's
		}
		recs, err := s.readAvailable(&s.rd, limit, buf, max, maxBytes)
		joining := err == nil && len(recs) == 0 && s.live != nil && s.joinLocked()
		s.readMu.Unlock()
		if err != nil || len(recs) > 0 {
			return recs, err
		}
		if joining {
			joined = true
			continue // more may be waiting after the live reader's records
		}
		if joined {
			return nil, nil // the caller learns of the join without waiting for more
		}
		select {
		case <-s.wake:
		case <-s.stop:
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// readAvailable reads committed records up to position limit into buf
// without waiting, with reader rd: the spool's own (s.rd), or a live
// reader's.
func (s *Spool) readAvailable(rd *segReader, limit uint64, buf *Buffer, max, maxBytes int) ([]Record, error) {
	head := rd == &s.rd
	var (
		out   []Record
		data  []byte
		bytes int
	)
	for len(out) < max && (maxBytes <= 0 || bytes < maxBytes || len(out) == 0) {
		// Find the reader's segment and how far it may read in it.
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		if rd.next < s.segs[0].first {
			rd.next = s.segs[0].first // max_bytes dropped what was unread
		}
		end := min(s.committed, limit)
		if rd.next > end {
			s.mu.Unlock()
			break
		}
		i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].first > rd.next }) - 1
		seg := s.segs[i]
		last, sealed := s.committed, i < len(s.segs)-1
		if sealed {
			last = s.segs[i+1].first - 1
		}
		segLast := last // damage skips to the segment's end
		last = min(last, limit)
		avail := end - rd.next + 1
		s.mu.Unlock()

		err := s.seek(rd, seg, rd.next)
		for err == nil && rd.next <= last && len(out) < max && (maxBytes <= 0 || bytes < maxBytes || len(out) == 0) {
			var t int64
			var p []byte
			if t, p, err = rd.record(seg.size); err != nil {
				break
			}
			if data == nil {
				// One buffer for all payloads of this Read: sized for
				// the records there are, what this segment can still
				// give, and the limits, guessing from the first one's
				// size.
				est := min(seg.size-rd.off, 4<<20, int64(min(uint64(max-len(out)), avail))*int64(len(p)+recHeaderSize))
				if maxBytes > 0 {
					est = min(est, int64(maxBytes)+int64(len(p)))
				}
				data = buf.data[:0]
				if int64(cap(data)) < est || oversized(cap(data), est) {
					data = make([]byte, 0, est)
				}
			}
			if out == nil {
				// As many records as are there and the limits let in,
				// guessing from the first one's size: a delivery chunk
				// (max 10,000, 1 MiB) of ~1 KB records holds about a
				// thousand, and the Records stay in memory until acked.
				n := min(uint64(max), avail)
				if maxBytes > 0 && len(p) > 0 {
					n = min(n, uint64(maxBytes/len(p))+1)
				}
				out = buf.recs[:0]
				if uint64(cap(out)) < n || oversized(cap(out)*recordSize, int64(n)*int64(recordSize)) {
					out = make([]Record, 0, n)
				}
			}
			data = append(data, p...)
			// Data is fixed up below to point into the final data buffer.
			out = append(out, Record{Pos: Position(rd.next), Time: time.Unix(0, t), Data: p})
			bytes += len(p)
			rd.skip()
			rd.next++
		}
		if err != nil {
			s.mu.Lock()
			dropped := s.segs[0].first > seg.first
			s.mu.Unlock()
			if dropped {
				// max_bytes removed the segment under us; the next pass
				// jumps to the oldest remaining record.
				rd.close()
				continue
			}
			if !sealed {
				return nil, fmt.Errorf("spool: %s: record %d at offset %d: %v: restart sensorgate to cut the damaged tail off (records after it are lost): %w",
					s.segPath(seg.first), rd.next, rd.off, err, ErrCorrupt)
			}
			// A sealed segment was complete and synced when sealed, so
			// this is damage on the medium. Skip to the next segment
			// rather than block delivery forever. (With a live reader,
			// records past the head's limit are skipped, and counted, by
			// whichever reader reaches the damage.)
			skipTo := min(segLast, limit)
			lost := skipTo - rd.next + 1
			s.log.Error().Str("segment", s.segPath(seg.first)).Uint64("record", rd.next).
				Int64("offset", rd.off).Uint64("lost_records", lost).AnErr("reason", err).
				Msg("spool: damaged record in a sealed segment; skipping the rest of the segment (check the disk)")
			s.mu.Lock()
			s.corrupt += lost
			s.mu.Unlock()
			rd.close()
			rd.next = skipTo + 1
		}
	}
	buf.recs, buf.data = out, data
	if len(out) == 0 {
		if head {
			s.mu.Lock()
			s.publishReadLocked()
			s.mu.Unlock()
		}
		return nil, nil
	}
	off := 0
	for i := range out {
		n := len(out[i].Data)
		out[i].Data = data[off : off+n : off+n]
		out[i].off = off
		off += n
	}
	s.mu.Lock()
	// Drop records max_bytes removed while we were reading them: they are
	// already counted as dropped and must not be delivered as well.
	if first := s.segs[0].first; out[0].Pos < Position(first) {
		k := sort.Search(len(out), func(i int) bool { return out[i].Pos >= Position(first) })
		out = out[k:]
		if len(out) == 0 {
			// The reader moved on; there may be more to read right now.
			s.mu.Unlock()
			return s.readAvailable(rd, limit, buf, max, maxBytes)
		}
	}
	if !head {
		// Append times are kept for the oldest pending record's age,
		// which is the head's; the live reader's records are newer.
		s.mu.Unlock()
		return out, nil
	}
	for _, r := range out {
		if len(s.readTimes) == 0 || s.readBase+uint64(len(s.readTimes)) != uint64(r.Pos) {
			// Start over after a gap (records skipped as damaged), so
			// readTimes[i] stays the time of record readBase+i.
			s.readTimes, s.readBase = s.readTimes[:0], uint64(r.Pos)
		}
		s.readTimes = append(s.readTimes, r.Time.UnixNano())
	}
	s.pruneTimesLocked()
	s.publishReadLocked()
	s.mu.Unlock()
	return out, nil
}

// publishReadLocked tells Stats where the next unread record's header is,
// when the reader is positioned right at it.
func (s *Spool) publishReadLocked() {
	s.readNext, s.readSeg, s.readOff = s.rd.next, 0, 0
	if s.rd.f != nil && s.rd.seq == s.rd.next {
		s.readSeg, s.readOff = s.rd.first, s.rd.off
	}
}

// seek positions rd at record seq in seg, opening the segment and
// stepping over earlier records as needed.
func (s *Spool) seek(rd *segReader, seg segment, seq uint64) error {
	if rd.first != seg.first || rd.seq > seq {
		rd.close()
		f, err := os.Open(s.segPath(seg.first))
		if err != nil {
			return err
		}
		rd.attach(f, seg.first)
		var hdr [segHeaderSize]byte
		if _, err := f.ReadAt(hdr[:], 0); err != nil {
			return err
		}
		var want [segHeaderSize]byte
		putSegHeader(want[:], seg.first)
		if hdr != want {
			return errors.New("bad segment header")
		}
	}
	for rd.seq < seq {
		if _, _, err := rd.record(seg.size); err != nil {
			return err
		}
		rd.skip()
	}
	return nil
}

// Ack marks every record up to and including upTo as delivered: they are
// not read again, also not after a restart, and their segments are
// deleted. With fsync=always the ack position is synced before Ack
// returns; with an interval it is synced with the next interval. Acking
// a position at or below the current one is a no-op; acking past the
// last record read is an error.
func (s *Spool) Ack(upTo Position) error {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	seq := uint64(upTo)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if seq <= s.ackSeq {
		s.mu.Unlock()
		return nil
	}
	if seq >= s.rd.next {
		s.mu.Unlock()
		return fmt.Errorf("spool: ack of position %d is beyond the last record read (%d): ack only positions Read returned", seq, s.rd.next-1)
	}
	s.mu.Unlock()
	if err := s.writeAck(seq, s.interval == 0); err != nil {
		return err
	}
	s.mu.Lock()
	s.ackSeq = seq
	if s.interval > 0 {
		s.ackDirty = true
	}
	n := 0
	for n < len(s.segs)-1 && s.segs[n+1].first-1 <= seq {
		s.total -= s.segs[n].size
		n++
	}
	var gone []uint64
	for _, seg := range s.segs[:n] {
		gone = append(gone, seg.first)
	}
	s.segs = slices.Delete(s.segs, 0, n)
	s.pruneTimesLocked()
	s.mu.Unlock()
	for _, first := range gone {
		s.removeSegment(first)
	}
	return nil
}

// pruneTimesLocked forgets append times of records no longer pending.
func (s *Spool) pruneTimesLocked() {
	first := max(s.ackSeq+1, s.segs[0].first)
	if first <= s.readBase {
		return
	}
	k := min(first-s.readBase, uint64(len(s.readTimes)))
	s.readTimes = s.readTimes[k:]
	s.readBase += k
	if len(s.readTimes) == 0 {
		s.readTimes = s.readTimes[:0:0]
	}
}
