package devices

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzFrameSet: a set built counter by counter (addOne's running
// figures) has the figures of a recount (derive), and never more than
// maxFrameBlocks blocks.
func FuzzFrameSet(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 2})
	f.Add([]byte{0, 0, 0x40, 0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s frameSet
		for len(b) >= 4 {
			s.addOne(binary.BigEndian.Uint32(b))
			b = b[4:]
		}
		got := s
		s.derive()
		if got.count != s.count || got.inner != s.inner || (s.count > 0 && (got.lo != s.lo || got.hi != s.hi)) || len(s.blocks) > maxFrameBlocks {
			t.Fatalf("running %+v, recount %+v", got, s)
		}
	})
}

// FuzzHealthJournal: replaying whatever bytes a journal file holds (a
// power cut's torn tail, another program's file) never panics and
// observes at most one frame per whole record.
func FuzzHealthJournal(f *testing.F) {
	var rec [journalRecord]byte
	f.Add(rec[:])
	f.Add(append(validRecord(EUI{1}, 7), 1, 2, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), journalPrefix+"0000000000000001")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		h := NewHealth(0)
		h.Share()
		n, err := h.replayJournal(path)
		if err != nil || n > len(b)/journalRecord {
			t.Fatalf("%d frames from %d bytes, %v", n, len(b), err)
		}
	})
}

// validRecord is one journal record as append writes it.
func validRecord(e EUI, fcnt uint32) []byte {
	dir, _ := os.MkdirTemp("", "journal")
	defer os.RemoveAll(dir)
	j := &healthJournal{dir: dir}
	if j.rotate() != nil {
		return nil
	}
	j.append(e, time.Unix(1_780_000_000, 0), fcnt)
	j.close()
	b, _ := os.ReadFile(journalName(dir, 1))
	return b
}
