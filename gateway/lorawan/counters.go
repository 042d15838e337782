package lorawan

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

// CounterStore keeps frame-counter state beyond this process, so that a
// recorded frame replayed after a restart, or to another instance sharing
// the store, is rejected. *devices.Store implements it (SQLite and
// PostgreSQL).
type CounterStore interface {
	// UpdateCounters calls update once per EUI with its stored state (nil
	// when there is none) and stores what update returns (nil keeps the
	// row), atomically against every other UpdateCounters on those EUIs in
	// any process sharing the store; it returns once the result is
	// durable.
	UpdateCounters(ctx context.Context, euis []devices.EUI, update func(eui devices.EUI, state []byte) []byte) error
}

// UseCounterStore makes f persist every accepted frame counter in cs
// before the uplink goes on (so before a source acknowledges it), and
// check each frame against the stored state, which other instances
// update too. instance names this handler among all that share the store,
// stable across its restarts: an MQTT source's client id, under which the
// broker redelivers what it had not acknowledged ("" for a source that
// cannot redeliver, such as UDP). Call it before the first frame.
func (f *Frames) UseCounterStore(cs CounterStore, instance string) {
	f.sync = newCounterSync(cs)
	f.inst = instanceTag(instance)
}

// instanceTag is the short form of an instance name kept with each claim;
// 0 is no name.
func instanceTag(instance string) uint32 {
	if instance == "" {
		return 0
	}
	sum := sha256.Sum256([]byte("sensorgate fcnt instance\x00" + instance))
	if t := binary.BigEndian.Uint32(sum[:4]); t != 0 {
		return t
	}
	return 1
}

// storedCounter is the persisted form of a device's counter state.
type storedCounter struct {
	addr devices.DevAddr
	// fp identifies the session's MIC key without holding it: the key
	// itself never leaves the registry's key columns.
	fp     [8]byte
	last   uint32
	window uint64
	seen   int64 // unix ms of the last accepted counter
	// recs are the latest accepted frames, oldest first (nrecs of them).
	recs  [maxClaimRecs]claimRec
	nrecs int
}

// claimRec is one accepted frame of the stored state: the uplink time the
// instance that took it wrote, so that the copies other gateways brought
// to other instances are written at that same time (as uplink_gateway
// points of the one uplink), and which instance took it, so that a
// redelivery to that instance after it died between the claim and the
// spool is handled again in full rather than dropped as a copy.
type claimRec struct {
	fcnt uint32
	at   int64  // the uplink's time, unix ns
	inst uint32 // instanceTag of the claimer, 0 if it has none
	// sum is frameSum of the PHYPayload taken: a gateway's copy is the
	// same bytes, a frame with the counter and other bytes is a replay
	// even within the minute.
	sum uint64
	// claimed is when the claim was stored (unix ms, the claimer's
	// clock): a record is kept for lateKeep, the time a copy is one.
	claimed int64
}

// frameSum identifies a PHYPayload in a claim record.
func frameSum(phy []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(phy)
	return h.Sum64()
}

// maxClaimRecs bounds the records kept per device. A record lives for
// lateKeep (a copy later than that is a replay), so a device sending a
// few frames a minute (duty cycle) has a few; one sending faster (a test,
// a misconfigured device) has at most as many as the replay window.
const maxClaimRecs = replayWindow

const (
	storedCounterV1Len = 1 + 4 + 8 + 4 + 8 + 8
	claimRecLen        = 4 + 8 + 4 + 8 + 8
)

func sessionFP(s *devices.Session) (fp [8]byte) {
	k := s.MICKey()
	sum := sha256.Sum256(append([]byte("sensorgate fcnt session\x00"), k[:]...))
	copy(fp[:], sum[:])
	return fp
}

func (c storedCounter) encode() []byte {
	b := make([]byte, 0, storedCounterV1Len+1+c.nrecs*claimRecLen)
	b = append(b, 2)
	b = append(b, c.addr[:]...)
	b = append(b, c.fp[:]...)
	b = binary.BigEndian.AppendUint32(b, c.last)
	b = binary.BigEndian.AppendUint64(b, c.window)
	b = binary.BigEndian.AppendUint64(b, uint64(c.seen))
	b = append(b, byte(c.nrecs))
	for _, r := range c.recs[:c.nrecs] {
		b = binary.BigEndian.AppendUint32(b, r.fcnt)
		b = binary.BigEndian.AppendUint64(b, uint64(r.at))
		b = binary.BigEndian.AppendUint32(b, r.inst)
		b = binary.BigEndian.AppendUint64(b, r.sum)
		b = binary.BigEndian.AppendUint64(b, uint64(r.claimed))
	}
	return b
}

// decodeCounter reads a stored state (version 1, without records, or 2);
// anything else (empty, another version, damaged) is no state: the frame
// is then taken as the device's first, as after a restart without a store.
func decodeCounter(b []byte) (storedCounter, bool) {
	var c storedCounter
	if len(b) < storedCounterV1Len || (b[0] != 1 && b[0] != 2) || (b[0] == 1 && len(b) != storedCounterV1Len) {
		return c, false
	}
	copy(c.addr[:], b[1:5])
	copy(c.fp[:], b[5:13])
	c.last = binary.BigEndian.Uint32(b[13:17])
	c.window = binary.BigEndian.Uint64(b[17:25])
	c.seen = int64(binary.BigEndian.Uint64(b[25:33]))
	if b[0] == 1 {
		return c, true
	}
	rest := b[storedCounterV1Len:]
	if len(rest) < 1 || int(rest[0]) > maxClaimRecs || len(rest) != 1+int(rest[0])*claimRecLen {
		return storedCounter{}, false
	}
	c.nrecs = int(rest[0])
	for i := range c.recs[:c.nrecs] {
		r := rest[1+i*claimRecLen:]
		c.recs[i] = claimRec{fcnt: binary.BigEndian.Uint32(r), at: int64(binary.BigEndian.Uint64(r[4:])), inst: binary.BigEndian.Uint32(r[12:]),
			sum: binary.BigEndian.Uint64(r[16:]), claimed: int64(binary.BigEndian.Uint64(r[24:]))}
	}
	return c, true
}

// rec finds full's record.
func (c *storedCounter) rec(full uint32) (claimRec, bool) {
	for i := c.nrecs - 1; i >= 0; i-- {
		if c.recs[i].fcnt == full {
			return c.recs[i], true
		}
	}
	return claimRec{}, false
}

// keep records r, replacing full's record if there is one (its time
// stays: copies may have been written at it), after forgetting the
// records claimed over lateKeep before r and, when all are younger, the
// oldest. It returns the record kept.
func (c *storedCounter) keep(r claimRec) claimRec {
	for i := range c.recs[:c.nrecs] {
		if c.recs[i].fcnt == r.fcnt {
			c.recs[i].inst, c.recs[i].sum, c.recs[i].claimed = r.inst, r.sum, r.claimed
			return c.recs[i]
		}
	}
	old := 0
	for old < c.nrecs && r.claimed-c.recs[old].claimed >= lateKeep.Milliseconds() {
		old++
	}
	if old == 0 && c.nrecs == maxClaimRecs {
		old = 1
	}
	if old > 0 {
		copy(c.recs[:], c.recs[old:c.nrecs])
		for i := c.nrecs - old; i < c.nrecs; i++ {
			c.recs[i] = claimRec{}
		}
		c.nrecs -= old
	}
	c.recs[c.nrecs] = r
	c.nrecs++
	return r
}

// claimVerdict is the store's word on a frame the local state accepted.
type claimVerdict int

const (
	claimAccepted claimVerdict = iota
	// claimDuplicate: a frame taken already (by another instance, or
	// before a restart), within lateKeep of the device's last accepted
	// one: a copy from another gateway.
	claimDuplicate
	claimReplay
)

// claimResult is claim's answer: the state to store (when accepted), the
// verdict, and full's record in the state, if it has one.
type claimResult struct {
	state   storedCounter
	verdict claimVerdict
	rec     claimRec
	hasRec  bool
}

// claim decides on r.fcnt (the 32-bit FCnt of a frame whose MIC matched
// the session) against the stored state, as match does against the local
// one; r is the record to keep if the frame is accepted.
func claim(stored []byte, addr devices.DevAddr, fp [8]byte, r claimRec, now time.Time, cfg FrameConfig) claimResult {
	full := r.fcnt
	c, ok := decodeCounter(stored)
	nowMS := now.UnixMilli()
	r.claimed = nowMS
	fresh := storedCounter{addr: addr, fp: fp, last: full, window: 1, seen: nowMS}
	accepted := func(c storedCounter) claimResult {
		kept := c.keep(r)
		return claimResult{state: c, verdict: claimAccepted, rec: kept, hasRec: true}
	}
	if !ok || c.addr != addr || c.fp != fp {
		return accepted(fresh)
	}
	if full > c.last {
		w := uint64(1)
		if full-c.last < replayWindow {
			w = c.window<<(full-c.last) | 1
		}
		c.last, c.window, c.seen = full, w, nowMS
		return accepted(c)
	}
	d := c.last - full
	if d < replayWindow && c.window&(1<<d) == 0 {
		c.window |= 1 << d
		return accepted(c)
	}
	since := time.Duration(nowMS-c.seen) * time.Millisecond
	if cfg.FCntReset == FCntResetAcceptLow && full <= cfg.FCntResetMax && since >= cfg.FCntResetGap {
		return accepted(fresh)
	}
	res := claimResult{state: c, verdict: claimReplay}
	res.rec, res.hasRec = c.rec(full)
	// Taken already, while the device is talking: a copy another
	// gateway's path brought to another instance, when it is the same
	// bytes (or the record is gone). Only its reception is written.
	if d < replayWindow && since < lateKeep && (!res.hasRec || res.rec.sum == r.sum) {
		res.verdict = claimDuplicate
	}
	return res
}

// release undoes an accepted claim whose uplink was not taken, so that
// the redelivered frame is accepted again: prev is the state the claim
// replaced.
func release(stored []byte, prev []byte, full uint32) []byte {
	c, ok := decodeCounter(stored)
	if !ok {
		return nil
	}
	if c.last == full {
		if prev == nil {
			return []byte{} // the claim created the state: none again
		}
		return prev
	}
	if d := c.last - full; full < c.last && d < replayWindow {
		c.window &^= 1 << d
		return c.encode()
	}
	return nil
}

// counterSync batches the claims of concurrent frames into one
// transaction of the store (a group commit): a frame waits for at most
// the transaction in flight plus its own, and the store's commit cost is
// shared by all frames that arrived meanwhile.
type counterSync struct {
	cs   CounterStore
	reqs chan *claimReq
	// flusher admits one batch at a time: the waiting request that gets
	// it runs the next batch.
	flusher chan struct{}
}

// claimReq is one frame's claim (or release, when undo is set).
type claimReq struct {
	eui  devices.EUI
	fn   func(stored []byte) []byte
	done chan error
}

// maxClaimBatch bounds one transaction.
const maxClaimBatch = 512

func newCounterSync(cs CounterStore) *counterSync {
	return &counterSync{cs: cs, reqs: make(chan *claimReq, maxClaimBatch), flusher: make(chan struct{}, 1)}
}

// do runs fn on eui's stored state in the next batch and waits for it to
// be durable. The waiting requests run the batches themselves, so no
// goroutine outlives the frames. Once queued, a request is waited for even
// when ctx ends: the batch may store it, and the caller must know.
func (s *counterSync) do(ctx context.Context, eui devices.EUI, fn func(stored []byte) []byte) error {
	r := &claimReq{eui: eui, fn: fn, done: make(chan error, 1)}
	queued := false
	for {
		if !queued {
			select {
			case s.reqs <- r:
				queued = true
				continue
			case s.flusher <- struct{}{}: // the queue is full: empty it
				s.flush(ctx)
				<-s.flusher
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		select {
		case err := <-r.done:
			return err
		case s.flusher <- struct{}{}:
			s.flush(ctx)
			<-s.flusher
		}
	}
}

func (s *counterSync) flush(ctx context.Context) {
	var batch []*claimReq
	for len(batch) < maxClaimBatch {
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
			continue
		default:
		}
		break
	}
	if len(batch) == 0 {
		return
	}
	byEUI := map[devices.EUI][]*claimReq{}
	var euis []devices.EUI
	for _, r := range batch {
		if _, ok := byEUI[r.eui]; !ok {
			euis = append(euis, r.eui)
		}
		byEUI[r.eui] = append(byEUI[r.eui], r)
	}
	err := s.cs.UpdateCounters(context.WithoutCancel(ctx), euis, func(eui devices.EUI, stored []byte) []byte {
		var out []byte
		for _, r := range byEUI[eui] {
			if next := r.fn(stored); next != nil {
				stored, out = next, next
			}
		}
		return out
	})
	if err != nil {
		err = fmt.Errorf("lorawan: frame counters not stored: %w", err)
	}
	for _, r := range batch {
		r.done <- err
	}
}

// releaseTimeout bounds undoing a stored counter when the uplink was not
// taken (also at shutdown, when the frame's context has ended).
const releaseTimeout = 5 * time.Second

// stored is the store's word on a frame, as storeCounter acts on it.
type stored int

const (
	// storedTaken: the claim is stored; the uplink goes on at the time
	// storeCounter returns.
	storedTaken stored = iota
	// storedRetaken: this instance took the frame before it restarted
	// and the broker redelivers it: the uplink goes on again in full, at
	// the stored time (its points are the same), and the claim stays
	// when it is not taken this time either.
	storedRetaken
	// storedCopy: another instance took the frame (or this one, before
	// this copy came): only this copy's receptions are written, at the
	// stored time.
	storedCopy
	// storedHandled: a replay, dead-lettered, or a copy whose frame's
	// record is gone, dropped.
	storedHandled
)

// storeCounter claims acc's counter in the store before the uplink goes
// on, recording at, the uplink's time. It returns what to do with the
// frame and the time its points take (the one stored with the claim).
// An error leaves the frame unacknowledged, to be judged on redelivery.
func (f *Frames) storeCounter(ctx context.Context, fr Frame, acc *accepted, at time.Time) (stored, time.Time, error) {
	if f.sync == nil {
		return storedTaken, at, nil
	}
	s := acc.dev.Session
	addr, fp, now := s.DevAddr, sessionFP(s), f.now()
	var (
		res  claimResult
		prev []byte
	)
	err := f.sync.do(ctx, acc.dev.EUI, func(st []byte) []byte {
		prev = st
		res = claim(st, addr, fp, claimRec{fcnt: acc.fcnt, at: at.UnixNano(), inst: f.inst, sum: frameSum(fr.PHYPayload)}, now, f.cfg)
		if res.verdict != claimAccepted {
			return nil
		}
		return res.state.encode()
	})
	if err != nil {
		acc.rollbck()
		return storedHandled, at, err
	}
	retaken := res.verdict == claimDuplicate && res.hasRec && f.inst != 0 && res.rec.inst == f.inst
	if res.verdict != claimAccepted && !retaken {
		acc.rollbck()
	}
	acc.st.mu.Lock()
	switch {
	case !acc.st.has:
		r := res.state
		acc.st.counter = counter{addr: addr, micKey: s.MICKey(), has: true, last: r.last, window: r.window, seen: time.UnixMilli(r.seen)}
	case acc.st.addr == addr && acc.st.micKey == s.MICKey():
		acc.st.merge(res.state)
	}
	acc.st.mu.Unlock()
	if res.hasRec {
		at = time.Unix(0, res.rec.at).UTC()
	}
	switch {
	case retaken:
		f.count("uplinks_retaken")
		return storedRetaken, at, nil
	case res.verdict == claimDuplicate && !res.hasRec:
		// A copy of a frame whose record is gone (taken over a minute
		// ago, or past maxClaimRecs frames in a minute): its uplink's
		// time is unknown, so its reception is dropped.
		f.count("copies_unmatched")
		return storedHandled, at, nil
	case res.verdict == claimDuplicate:
		f.count("duplicates_other_instance")
		return storedCopy, at, nil
	case res.verdict == claimReplay:
		f.count("replays")
		return storedHandled, at, f.deadLetter(ctx, fr, acc.dev, &gateway.Rejection{Reason: gateway.ReasonReplay,
			Err: fmt.Errorf("device %s: FCnt %d was accepted before (by this instance before a restart, or by another sharing the registry; highest stored %d): a replayed frame, or the device restarted its counter",
				acc.dev.Name, acc.fcnt, res.state.last)})
	}
	acc.claimed, acc.prevStored = true, prev
	return storedTaken, at, nil
}

// storedCopyTime asks the store about a frame the local state refused as
// taken already (acc.maybeCopy): whether it is another gateway's copy of
// a frame taken within lateKeep (by another instance, whose claim the
// local state merged), and the uplink time stored with it. Nothing is
// stored.
func (f *Frames) storedCopyTime(ctx context.Context, fr Frame, acc accepted) (time.Time, bool, error) {
	s := acc.dev.Session
	addr, fp, now := s.DevAddr, sessionFP(s), f.now()
	var res claimResult
	err := f.sync.do(ctx, acc.dev.EUI, func(st []byte) []byte {
		res = claim(st, addr, fp, claimRec{fcnt: acc.fcnt, sum: frameSum(fr.PHYPayload)}, now, f.cfg)
		return nil
	})
	if err != nil || res.verdict != claimDuplicate || !res.hasRec {
		return time.Time{}, false, err
	}
	return time.Unix(0, res.rec.at).UTC(), true, nil
}

// unstoreCounter undoes storeCounter for an uplink that was not taken, so
// its redelivery is accepted. Failing that, the redelivered frame is
// dropped as a copy (within lateKeep) or dead-lettered as a replay: it is
// logged.
func (f *Frames) unstoreCounter(ctx context.Context, acc accepted) {
	if f.sync == nil || !acc.claimed {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	err := f.sync.do(ctx, acc.dev.EUI, func(stored []byte) []byte { return release(stored, acc.prevStored, acc.fcnt) })
	if err != nil {
		f.log.Error().Err(err).Str("dev_eui", acc.dev.EUI.String()).Uint32("f_cnt", acc.fcnt).
			Msg("stored frame counter not undone for an uplink that was not taken: its redelivery will be refused")
	}
}

// merge takes in the stored state r (which may include frames other
// instances accepted) without forgetting what this instance accepted
// meanwhile; the caller holds the state's lock.
func (c *counter) merge(r storedCounter) {
	seen := time.UnixMilli(r.seen)
	switch {
	case r.last > c.last:
		w := r.window
		if d := r.last - c.last; d < replayWindow {
			w |= c.window << d
		}
		c.last, c.window = r.last, w
		if seen.After(c.seen) {
			c.seen = seen
		}
	default:
		if d := c.last - r.last; d < replayWindow {
			c.window |= r.window << d
		}
	}
}
