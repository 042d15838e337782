package sandbox

import (
	"testing"
	"time"
)

// TestWorkerStats: Stats says, per worker slot, how many codec versions
// its worker has compiled and how many have decoded there; a version
// compiled at load but never called counts as compiled only, a second
// call of a version counts once, and a worker's replacement starts from
// nothing.
func TestWorkerStats(t *testing.T) {
	p := newPool(t, Config{Workers: 2, ScriptTimeout: 10 * time.Second, CallTimeout: 40 * time.Second})
	codecs := manyCodecs(t, 3)
	loaded := make([]*Codec, len(codecs))
	for i, mc := range codecs {
		c, err := p.Load(mc.name, mc.src)
		if err != nil {
			t.Fatalf("load %s: %v", mc.name, err)
		}
		loaded[i] = c
	}
	decode := func(i int) {
		t.Helper()
		res, err := loaded[i].Decode(codecs[i].in)
		if err != nil {
			t.Fatalf("%s: %v", codecs[i].name, err)
		}
		res.Record.Release()
	}
	// Codec 0 on one worker, then on the other: each call finds one slot
	// free, the one the test does not hold.
	first := <-p.idle
	decode(0)
	decode(0)
	second := <-p.idle
	p.release(first)
	decode(0)
	decode(1)
	p.release(second)

	st := p.Stats()
	if len(st.Workers) != 2 {
		t.Fatalf("Stats lists %d workers, want 2: %+v", len(st.Workers), st.Workers)
	}
	byPID := map[int]WorkerStats{}
	for _, w := range st.Workers {
		byPID[w.PID] = w
	}
	if len(byPID) != 2 || st.Workers[0].Slot != 0 || st.Workers[1].Slot != 1 {
		t.Fatalf("workers %+v: want slots 0 and 1, two processes", st.Workers)
	}
	// Runs per slot: codec 0 (twice) on second's worker while first was
	// held; codecs 0 and 1 on first's while second was.
	want := map[int]int{second.idx: 1, first.idx: 2}
	compiled := 0
	for _, w := range st.Workers {
		if w.Run != want[w.Slot] {
			t.Errorf("slot %d: %d versions run, want %d", w.Slot, w.Run, want[w.Slot])
		}
		if w.Compiled < w.Run {
			t.Errorf("slot %d: %d run but %d compiled", w.Slot, w.Run, w.Compiled)
		}
		compiled += w.Compiled
	}
	// Loading compiled each of the three in one worker; the calls
	// compiled codec 0 in the other and maybe 1 (if loaded elsewhere).
	if compiled < 4 || compiled > 5 {
		t.Errorf("%d versions compiled in all, want 4 or 5 (3 at load, codec 0 again, codec 1 maybe)", compiled)
	}

	// A replaced worker: its successor has compiled and run nothing yet.
	held := holdSlotsB(p)
	pid := held[0].p.cmd.Process.Pid
	held[0].p.retire()
	for _, s := range held {
		p.releaseSlot(s)
	}
	// The slot comes back once its replacement has started (releaseSlot).
	again := holdSlotsB(p)
	st = p.Stats()
	for _, s := range again {
		p.release(s)
	}
	if len(st.Workers) != 2 || byPIDOf(st, held[0].idx) == pid || byPIDOf(st, held[0].idx) == 0 {
		t.Fatalf("slot %d's worker (%d) not replaced: %+v", held[0].idx, pid, st.Workers)
	}
	for _, w := range st.Workers {
		if w.Slot == held[0].idx && (w.Compiled != 0 || w.Run != 0) {
			t.Errorf("replacement of slot %d: %+v, want nothing compiled or run", w.Slot, w)
		}
	}
}

// byPIDOf is the PID of slot idx's worker in st, 0 if none is listed.
func byPIDOf(st Stats, idx int) int {
	for _, w := range st.Workers {
		if w.Slot == idx {
			return w.PID
		}
	}
	return 0
}
