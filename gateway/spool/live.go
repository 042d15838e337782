package spool

import (
	"errors"
	"math"
)

// A live reader lets the records appended during a backlog be read, and
// delivered, before the backlog ahead of them: after an outage of hours
// the newest readings need not wait the hours the drain takes. It reads
// from the first record not yet committed when it starts (its From); the
// spool's own reader (Read, ReadBuffered) then stops short of From, and
// when it gets there it takes over the live reader's position, so that no
// record is read twice, and the live reader is done (Joined).
//
// Acks stay cumulative and persisted as one position: the live reader's
// records are acked only when the acks reach them, after every record
// before From. A restart before that reads them again (at least once, as
// for any record read and not acked); Close of a live reader that has not
// joined lets the spool's reader read its records again.

// liveReader is the state of a live reader, guarded by readMu.
type liveReader struct {
	from   uint64
	rd     segReader
	joined bool
}

// Live is a live reader of a spool.
type Live struct {
	s *Spool
	l *liveReader
}

// StartLive starts a live reader at the first record not yet committed.
// Only one can run at a time.
func (s *Spool) StartLive() (*Live, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if s.live != nil {
		return nil, errors.New("spool: a live reader is already running")
	}
	s.mu.Lock()
	closed, from := s.closed, s.committed+1
	s.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	l := &liveReader{from: from}
	l.rd.next = from
	s.live = l
	return &Live{s: s, l: l}, nil
}

// From is the position of the live reader's first record: the spool's
// reader returns the records before it.
func (lv *Live) From() Position { return Position(lv.l.from) }

// Joined reports whether the spool's reader has reached From and taken
// over the live reader's position: the live reader reads nothing more,
// and the spool's reader continues after the live reader's last record.
func (lv *Live) Joined() bool {
	lv.s.readMu.Lock()
	defer lv.s.readMu.Unlock()
	return lv.l.joined
}

// Read returns up to max committed records after the last one it read
// (limits as for Read), without waiting: none when there are none yet,
// or once joined. The records are valid until buf is passed again.
func (lv *Live) Read(buf *Buffer, max, maxBytes int) ([]Record, error) {
	if max < 1 {
		max = 1
	}
	if buf == nil {
		buf = new(Buffer)
	}
	s := lv.s
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if lv.l.joined || s.live != lv.l {
		return nil, nil
	}
	return s.readAvailable(&lv.l.rd, math.MaxUint64, buf, max, maxBytes)
}

// Close ends a live reader that has not joined: the spool's reader then
// reads on past From, the live reader's records included.
func (lv *Live) Close() {
	s := lv.s
	s.readMu.Lock()
	defer s.readMu.Unlock()
	lv.l.rd.close()
	if s.live == lv.l {
		s.live = nil
	}
}

// joinLocked hands the live reader's position to the spool's reader,
// which has read every record before From (or found them dropped). The
// caller holds readMu; false when there is no live reader.
func (s *Spool) joinLocked() bool {
	l := s.live
	if l == nil {
		return false
	}
	next := s.rd.next
	s.rd.close()
	s.rd, l.rd = l.rd, segReader{}
	// max_bytes may have dropped the head's reader past the live one's.
	s.rd.next = max(s.rd.next, next)
	l.joined = true
	s.live = nil
	return true
}
