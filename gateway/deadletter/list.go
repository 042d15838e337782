package deadletter

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
)

// Replay outcomes, as marks in the store and in replay results.
const (
	StatusReplayed = "replayed" // the message became points (or re-sent lines)
	StatusFailed   = "failed"   // it still cannot become points; the letter stays
	StatusSkipped  = "skipped"  // replayed before; replay again with force
)

// Letter is a stored dead letter: its id (1, 2, 3, … in the order
// letters arrived; never reused, also not when the oldest are dropped)
// and what its replays came to.
type Letter struct {
	ID uint64 `json:"id"`
	gateway.DeadLetter
	// ReplayedAt is when a replay last turned it into points, nil if never.
	ReplayedAt *time.Time `json:"replayed_at,omitempty"`
	// Attempts counts replays; LastError is why the latest failed one
	// failed (cleared by a successful one).
	Attempts  int    `json:"replay_attempts,omitempty"`
	LastError string `json:"last_replay_error,omitempty"`
}

// Filter selects dead letters; zero fields match everything.
type Filter struct {
	Reason gateway.Reason
	Source string
	DevEUI string
	// Since and Until bound the time the letter was dead-lettered
	// (Since inclusive, Until exclusive).
	Since, Until time.Time
	// Replayed, when set, keeps only letters that were (true) or were
	// not (false) replayed successfully.
	Replayed *bool
	// IDs, when given, keeps only those letters.
	IDs []uint64
	// After keeps only letters with a greater id (a cursor for paging
	// oldest first).
	After uint64
	// Before keeps only letters with a smaller id (0: no bound), the
	// cursor for paging newest first.
	Before uint64
	// Newest lists newest first; the default is oldest first.
	Newest bool
	// Limit keeps the first Limit matches in the order asked (0: all).
	Limit int
}

func (f *Filter) match(l *Letter) bool {
	switch {
	case l.ID <= f.After,
		f.Before > 0 && l.ID >= f.Before,
		f.Reason != "" && l.Reason != f.Reason,
		f.Source != "" && l.Source != f.Source,
		f.DevEUI != "" && l.DevEUI != f.DevEUI,
		!f.Since.IsZero() && l.Time.Before(f.Since),
		!f.Until.IsZero() && !l.Time.Before(f.Until),
		f.Replayed != nil && *f.Replayed != (l.ReplayedAt != nil):
		return false
	}
	return true
}

// skip tells from a segment's summary that none of its letters match.
func (f *Filter) skip(seg *segment) bool {
	switch {
	case seg.letters == 0,
		seg.lastID <= f.After,
		f.Before > 0 && seg.firstID >= f.Before,
		f.Reason != "" && seg.reasons&reasonBit(reasonCode(f.Reason)) == 0,
		!f.Since.IsZero() && seg.maxT < f.Since.UnixNano(),
		!f.Until.IsZero() && seg.minT >= f.Until.UnixNano():
		return true
	}
	return false
}

// skipChunk tells from an index entry that none of its chunk's letters
// match.
func (f *Filter) skipChunk(e *indexEntry) bool {
	return f.Before > 0 && e.minID >= f.Before ||
		f.Reason != "" && e.reasons&reasonBit(reasonCode(f.Reason)) == 0 ||
		!f.Since.IsZero() && e.maxT < f.Since.UnixNano() ||
		!f.Until.IsZero() && e.minT >= f.Until.UnixNano() ||
		f.Source != "" && !e.bloom.has(strHash(f.Source)) ||
		f.DevEUI != "" && !e.bloom.has(strHash(f.DevEUI)^0x9e3779b9)
}

// List returns the dead letters that match f, in the order it asks, with
// their replay marks applied. It first waits for the letters queued
// before it to be written (not while writes fail). It reads only the
// segments whose summary may match and, within them, from the offset
// index on: with a limit, a listing reads about as much as it returns,
// oldest or newest first, whatever the store's size. Damaged records are
// skipped.
func (s *File) List(ctx context.Context, f Filter) ([]Letter, error) {
	return collect(ctx, f, s.Each)
}

// Get returns one dead letter by id.
func (s *File) Get(ctx context.Context, id uint64) (Letter, bool, error) {
	ls, err := s.List(ctx, Filter{IDs: []uint64{id}})
	if err != nil || len(ls) == 0 {
		return Letter{}, false, err
	}
	return ls[0], true, nil
}

// snapshot copies the segments' state for a reader; the writer only
// appends to index arrays beyond a copy's length.
func (s *File) snapshot() []segment {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]segment, len(s.segs))
	for i, seg := range s.segs {
		out[i] = *seg
	}
	if n := len(out); n > 0 {
		// The writer updates the active segment's last index entry in
		// place (its times, reasons and sources grow with each letter),
		// under mu: a listing reads its own copy. Older entries and
		// older segments do not change.
		out[n-1].index = slices.Clone(out[n-1].index)
	}
	return out
}

// withMarks applies letter l's replay marks.
func (s *File) withMarks(l *Letter) {
	s.mu.Lock()
	m := s.marks[l.ID]
	if m != nil {
		l.Attempts, l.LastError = m.attempts, m.lastError
		if !m.replayedAt.IsZero() {
			at := m.replayedAt
			l.ReplayedAt = &at
		}
	}
	s.mu.Unlock()
}

// lister reads letters of one listing; it keeps one file open at a time.
type lister struct {
	s     *File
	f     *Filter
	emit  func(Letter) error
	n     int   // letters emitted
	err   error // what emit returned: the listing stops
	file  *os.File
	fpath string
	buf   []byte
}

// Each calls fn with each dead letter that matches f, in the order f
// asks, as List returns them, without holding them all: a caller may
// stream any number. An error from fn stops it and is returned.
func (s *File) Each(ctx context.Context, f Filter, fn func(Letter) error) error {
	if err := s.wait(ctx, false); err != nil {
		return err
	}
	return s.each(ctx, f, fn)
}

func (s *File) list(ctx context.Context, f Filter) ([]Letter, error) {
	return collect(ctx, f, s.each)
}

// collect gathers what each (Each or each) emits.
func collect(ctx context.Context, f Filter, each func(context.Context, Filter, func(Letter) error) error) ([]Letter, error) {
	var out []Letter
	err := each(ctx, f, func(l Letter) error {
		out = append(out, l)
		return nil
	})
	return out, err
}

func (s *File) each(ctx context.Context, f Filter, fn func(Letter) error) error {
	segs := s.snapshot()
	ls := &lister{s: s, f: &f, emit: fn}
	defer ls.close()
	var err error
	if len(f.IDs) > 0 {
		err = ls.byIDs(ctx, segs)
	} else {
		for i := range segs {
			seg := &segs[i]
			if f.Newest {
				seg = &segs[len(segs)-1-i]
			}
			if f.skip(seg) {
				continue
			}
			if err = ls.segment(ctx, seg); err != nil || ls.full() {
				break
			}
		}
	}
	if ls.err != nil {
		return ls.err
	}
	return err
}

// add emits a matching letter.
func (ls *lister) add(l Letter) {
	if ls.err == nil {
		ls.err = ls.emit(l)
		ls.n++
	}
}

func (ls *lister) full() bool { return ls.err != nil || ls.f.Limit > 0 && ls.n >= ls.f.Limit }

func (ls *lister) close() {
	if ls.file != nil {
		ls.file.Close()
		ls.file = nil
	}
}

// open opens seg's file; false if it is gone (dropped meanwhile).
func (ls *lister) open(seg *segment) (bool, error) {
	if ls.fpath == seg.path && ls.file != nil {
		return true, nil
	}
	ls.close()
	f, err := os.Open(seg.path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("deadletter: %w", err)
	}
	ls.file, ls.fpath = f, seg.path
	return true, nil
}

// segment lists seg's matches chunk by chunk (the stretches between index
// entries), in the filter's order.
func (ls *lister) segment(ctx context.Context, seg *segment) error {
	ok, err := ls.open(seg)
	if !ok || err != nil {
		return err
	}
	n := len(seg.index)
	start := 0
	if ls.f.After > 0 {
		// The last chunk that can hold ids after the cursor.
		start = max(sort.Search(n, func(i int) bool { return seg.index[i].minID > ls.f.After })-1, 0)
	}
	for k := start; k < n; k++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := k
		if ls.f.Newest {
			c = n - 1 - (k - start)
		}
		if ls.f.skipChunk(&seg.index[c]) {
			continue
		}
		var got []Letter
		err := ls.read(seg, c, func(l Letter) bool {
			if ls.f.match(&l) {
				got = append(got, l)
			}
			return true
		})
		if err != nil {
			return err
		}
		if ls.f.Newest {
			slices.Reverse(got)
		}
		for _, l := range got {
			ls.add(l)
			if ls.full() {
				return nil
			}
		}
	}
	return nil
}

// read decodes the letters of chunk c of seg, marks applied, until each
// returns false. A chunk holds the ids from its index entry's up to the
// next entry's; records outside that, or not after the previous one, are
// copies Open did not count (a retried write) and are passed over.
func (ls *lister) read(seg *segment, c int, each func(Letter) bool) error {
	from, to := seg.index[c].off, seg.size
	lo, hi := seg.index[c].minID, seg.lastID+1
	if c+1 < len(seg.index) {
		to, hi = seg.index[c+1].off, seg.index[c+1].minID
	}
	sc := newScanner(ls.file, from, to, indexEvery+4<<10)
	sc.buf = ls.buf[:0]
	defer func() {
		ls.s.listRead.Add(sc.read)
		ls.buf = sc.buf[:0] // the next chunk reuses it
	}()
	last := uint64(0)
	for {
		rec, ok := sc.next()
		if !ok {
			break
		}
		if rec.kind != kindLetter || rec.id < lo || rec.id >= hi || rec.id <= last {
			continue
		}
		last = rec.id
		if !ls.maybe(&rec) {
			continue
		}
		l := Letter{ID: rec.id}
		if err := decodeLetter(rec.js, &l.DeadLetter); err != nil {
			continue // checksummed, so written so: not ours to fail on
		}
		ls.s.withMarks(&l)
		if !each(l) {
			return nil
		}
	}
	if sc.err != nil {
		return fmt.Errorf("deadletter: read %s: %w", seg.path, sc.err)
	}
	return nil
}

// maybe tells from a record's fixed fields whether its letter can match,
// so most letters a filter passes over are not decoded. Equal hashes may
// still differ in the strings, which match decides after decoding.
func (ls *lister) maybe(rec *record) bool {
	f := ls.f
	code := reasonCode(f.Reason)
	return !(f.Reason != "" && code != otherReason && rec.reason != code ||
		!f.Since.IsZero() && rec.t < f.Since.UnixNano() ||
		!f.Until.IsZero() && rec.t >= f.Until.UnixNano() ||
		f.Source != "" && rec.src != strHash(f.Source) ||
		f.DevEUI != "" && rec.dev != strHash(f.DevEUI))
}

// rawField ends a letter's JSON as encoding/json writes it: Raw is the
// last field of gateway.DeadLetter.
var rawField = []byte(`,"raw":`)

// decodeLetter decodes a letter's JSON. The raw message, base64 and most
// of the bytes, is split off and decoded directly: encoding/json scans a
// string byte by byte first, which made a 64 KiB letter cost about as
// much as reading it from disk. Quotes inside strings are escaped, so the
// last `,"raw":` is the field's.
func decodeLetter(js []byte, dl *gateway.DeadLetter) error {
	i := bytes.LastIndex(js, rawField)
	if i < 0 || len(js) < i+len(rawField)+2 || js[len(js)-1] != '}' {
		return json.Unmarshal(js, dl)
	}
	v := js[i+len(rawField) : len(js)-1]
	var raw []byte
	switch {
	case string(v) == "null":
	case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && bytes.IndexByte(v[1:len(v)-1], '\\') < 0:
		b64 := v[1 : len(v)-1]
		raw = make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
		n, err := base64.StdEncoding.Decode(raw, b64)
		if err != nil {
			return json.Unmarshal(js, dl)
		}
		raw = raw[:n]
	default:
		return json.Unmarshal(js, dl)
	}
	head := make([]byte, 0, i+1)
	head = append(append(head, js[:i]...), '}')
	if err := json.Unmarshal(head, dl); err != nil {
		return err
	}
	dl.Raw = raw
	return nil
}

// byIDs looks each id up through the summaries and the offset index.
func (ls *lister) byIDs(ctx context.Context, segs []segment) error {
	ids := slices.Clone(ls.f.IDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if ls.f.Newest {
		slices.Reverse(ids)
	}
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Segments without letters (replay marks only) lie between the
		// others, so a binary search over the ids would not hold: a
		// store has tens of segments, not thousands.
		var seg *segment
		for i := range segs {
			if segs[i].letters > 0 && segs[i].firstID <= id && id <= segs[i].lastID {
				seg = &segs[i]
				break
			}
		}
		if seg == nil {
			continue
		}
		ok, err := ls.open(seg)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		c := max(sort.Search(len(seg.index), func(k int) bool { return seg.index[k].minID > id })-1, 0)
		var found *Letter
		err = ls.read(seg, c, func(l Letter) bool {
			if l.ID == id {
				found = &l
			}
			return l.ID < id
		})
		if err != nil {
			return err
		}
		if found != nil && ls.f.match(found) {
			ls.add(*found)
			if ls.full() {
				break
			}
		}
	}
	return nil
}

// ReadAll reads every dead letter of the store at path (a directory, or a
// store of an earlier version at path+".jsonl" not yet migrated),
// oldest first, without replay marks. It changes nothing, so it may read
// a store a running daemon writes; damaged records are skipped.
func ReadAll(path string) ([]gateway.DeadLetter, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		var out []gateway.DeadLetter
		_, err := readLegacy(path+".jsonl", func(_ uint64, dl *gateway.DeadLetter, _ *markJSON) error {
			if dl != nil {
				out = append(out, *dl)
			}
			return nil
		})
		return out, err
	}
	s, err := openStore(path, Options{}, true)
	if err != nil {
		return nil, err
	}
	letters, err := s.list(context.Background(), Filter{})
	out := make([]gateway.DeadLetter, len(letters))
	for i, l := range letters {
		out[i] = l.DeadLetter
	}
	return out, err
}
