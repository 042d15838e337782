package lorawan

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
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
// update too. Call it before the first frame.
func (f *Frames) UseCounterStore(cs CounterStore) {
	f.sync = newCounterSync(cs)
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
}

const storedCounterLen = 1 + 4 + 8 + 4 + 8 + 8

func sessionFP(s *devices.Session) (fp [8]byte) {
	k := s.MICKey()
	sum := sha256.Sum256(append([]byte("sensorgate fcnt session\x00"), k[:]...))
	copy(fp[:], sum[:])
	return fp
}

func (c storedCounter) encode() []byte {
	b := make([]byte, 0, storedCounterLen)
	b = append(b, 1)
	b = append(b, c.addr[:]...)
	b = append(b, c.fp[:]...)
	b = binary.BigEndian.AppendUint32(b, c.last)
	b = binary.BigEndian.AppendUint64(b, c.window)
	return binary.BigEndian.AppendUint64(b, uint64(c.seen))
}

// decodeCounter reads a stored state; anything else (empty, another
// version, damaged) is no state: the frame is then taken as the device's
// first, as after a restart without a store.
func decodeCounter(b []byte) (storedCounter, bool) {
	var c storedCounter
	if len(b) != storedCounterLen || b[0] != 1 {
		return c, false
	}
	copy(c.addr[:], b[1:5])
	copy(c.fp[:], b[5:13])
	c.last = binary.BigEndian.Uint32(b[13:17])
	c.window = binary.BigEndian.Uint64(b[17:25])
	c.seen = int64(binary.BigEndian.Uint64(b[25:33]))
	return c, true
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

// claim decides on full (the 32-bit FCnt of a frame whose MIC matched the
// session) against the stored state, as match does against the local one.
func claim(stored []byte, addr devices.DevAddr, fp [8]byte, full uint32, now time.Time, cfg FrameConfig) (storedCounter, claimVerdict) {
	c, ok := decodeCounter(stored)
	nowMS := now.UnixMilli()
	fresh := storedCounter{addr: addr, fp: fp, last: full, window: 1, seen: nowMS}
	if !ok || c.addr != addr || c.fp != fp {
		return fresh, claimAccepted
	}
	if full > c.last {
		w := uint64(1)
		if full-c.last < replayWindow {
			w = c.window<<(full-c.last) | 1
		}
		return storedCounter{addr: addr, fp: fp, last: full, window: w, seen: nowMS}, claimAccepted
	}
	d := c.last - full
	if d < replayWindow && c.window&(1<<d) == 0 {
		c.window |= 1 << d
		return c, claimAccepted
	}
	since := time.Duration(nowMS-c.seen) * time.Millisecond
	if cfg.FCntReset == FCntResetAcceptLow && full <= cfg.FCntResetMax && since >= cfg.FCntResetGap {
		return fresh, claimAccepted
	}
	// Taken already, while the device is talking: a copy another
	// gateway's path brought to another instance. Dropped like a late
	// copy here; a replay inside this minute is refused all the same.
	if d < replayWindow && since < lateKeep {
		return c, claimDuplicate
	}
	return c, claimReplay
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

// storeCounter claims acc's counter in the store before the uplink goes
// on. handled is true when the store says the frame was already taken:
// a copy another instance handled (dropped) or a replay (dead-lettered).
// An error leaves the frame unacknowledged, to be judged on redelivery.
func (f *Frames) storeCounter(ctx context.Context, fr Frame, acc *accepted) (handled bool, err error) {
	if f.sync == nil {
		return false, nil
	}
	s := acc.dev.Session
	addr, fp, now := s.DevAddr, sessionFP(s), f.now()
	var (
		verdict claimVerdict
		result  storedCounter
		prev    []byte
	)
	err = f.sync.do(ctx, acc.dev.EUI, func(stored []byte) []byte {
		prev = stored
		result, verdict = claim(stored, addr, fp, acc.fcnt, now, f.cfg)
		if verdict != claimAccepted {
			return nil
		}
		return result.encode()
	})
	if err != nil {
		acc.rollbck()
		return false, err
	}
	if verdict != claimAccepted {
		acc.rollbck()
	}
	acc.st.mu.Lock()
	switch {
	case !acc.st.has:
		acc.st.counter = counter{addr: addr, micKey: s.MICKey(), has: true, last: result.last, window: result.window, seen: time.UnixMilli(result.seen)}
	case acc.st.addr == addr && acc.st.micKey == s.MICKey():
		acc.st.merge(result)
	}
	acc.st.mu.Unlock()
	switch verdict {
	case claimDuplicate:
		f.count("duplicates_other_instance")
		return true, nil
	case claimReplay:
		f.count("replays")
		return true, f.deadLetter(ctx, fr, acc.dev, &gateway.Rejection{Reason: gateway.ReasonReplay,
			Err: fmt.Errorf("device %s: FCnt %d was accepted before (by this instance before a restart, or by another sharing the registry; highest stored %d): a replayed frame, or the device restarted its counter",
				acc.dev.Name, acc.fcnt, result.last)})
	}
	acc.claimed, acc.prevStored = true, prev
	return false, nil
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
