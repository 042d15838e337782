package lorawan

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

// lateKeep is how long a handled frame is remembered, so a copy that a
// slow backhaul delivers after the dedup window is dropped as a duplicate
// instead of dead-lettered as a replay.
const lateKeep = time.Minute

// Frames turns raw frames into uplinks: session lookup, MIC, 32-bit FCnt,
// replay check, decryption and multi-gateway de-duplication. One Frames
// serves one source; it is safe for concurrent use, and its counter state
// lives in memory (a restart forgets it: see epochSearch).
type Frames struct {
	source   string
	cfg      FrameConfig
	devs     DevAddrLookup
	dl       gateway.DeadLetters
	counters *gateway.Counters
	log      zerolog.Logger
	// msgLog is for per-frame problems: sampled, so a noisy neighbour
	// network or a replay storm does not flood the log.
	msgLog zerolog.Logger
	now    func() time.Time
	// sync persists accepted counters (UseCounterStore); nil keeps them
	// in memory only. inst is this handler's instanceTag.
	sync *counterSync
	inst uint32

	mu sync.Mutex
	// state has one entry per registered device with a session whose
	// DevAddr a frame carried: bounded by the registry, since frames of
	// other addresses never get one.
	state   map[devices.EUI]*fcntState
	pending map[string]*group      // PHYPayload -> copies gathering in the window
	recent  map[string]recentEntry // PHYPayload -> the handled frame, until lateKeep after
	recentQ []recentEntry          // recent in insertion order, for pruning
	recentH int                    // recentQ[:recentH] is pruned
	evicted uint64                 // recent entries forgotten early, past DedupMaxFrames
}

type recentEntry struct {
	key   string
	until time.Time
	g     *group
}

// group gathers the copies of one frame during the dedup window.
type group struct {
	frames   []Frame   // dropped once handled: a later copy needs only taken
	received time.Time // local time of the first copy
	done     chan struct{}
	err      error
	// taken is the uplink the copies became (or the one another instance
	// made of the frame): a copy arriving after the window is written as
	// its reception at taken's time. Nil when the frame was dropped or
	// dead-lettered. Set before done is closed.
	taken *takenFrame
}

// NewFrames returns the frame handler of the source named source. dl keeps
// frames that cannot become uplinks (replay, bad_mic, malformed, and
// unknown_device under unknown_devices: reject); counters may be nil.
func NewFrames(source string, cfg FrameConfig, devs DevAddrLookup, dl gateway.DeadLetters, counters *gateway.Counters, log zerolog.Logger) (*Frames, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("lorawan source %q: %w", source, err)
	}
	if devs == nil || dl == nil {
		return nil, errors.New("lorawan: NewFrames needs a device registry and a dead-letter store")
	}
	log = log.With().Str("source", source).Logger()
	return &Frames{
		source: source, cfg: cfg.withDefaults(), devs: devs, dl: dl, counters: counters,
		log: log, msgLog: log.Sample(&zerolog.BurstSampler{Burst: 20, Period: time.Minute}),
		now:   time.Now,
		state: map[devices.EUI]*fcntState{}, pending: map[string]*group{}, recent: map[string]recentEntry{},
	}, nil
}

// Handle takes one gateway's copy of a frame. The first copy waits the
// dedup window for the others, then the merged uplink goes to h; every
// copy's Handle returns h's result (or nil once a rejected frame is a dead
// letter), so an MQTT source may acknowledge each copy on nil. A copy
// arriving after its frame was handled goes to h as that uplink's
// reception only (Uplink.GatewayCopies): one uplink_gateway point at the
// uplink's time.
func (f *Frames) Handle(ctx context.Context, fr Frame, h gateway.Handler) error {
	f.count("frames")
	key := string(fr.PHYPayload)
	now := f.now()
	f.mu.Lock()
	f.pruneRecent(now)
	if r, late := f.recent[key]; late {
		f.mu.Unlock()
		f.count("late_duplicates")
		return f.lateCopy(ctx, r.g, fr, h)
	}
	if g, ok := f.pending[key]; ok {
		g.frames = append(g.frames, fr)
		f.mu.Unlock()
		f.count("duplicates")
		select {
		case <-g.done:
			return g.err
		case <-ctx.Done():
			return fmt.Errorf("lorawan: frame copy from gateway %s not handled: %w", fr.Gateway.ID, ctx.Err())
		}
	}
	g := &group{frames: []Frame{fr}, received: now, done: make(chan struct{})}
	f.pending[key] = g
	f.mu.Unlock()

	t := time.NewTimer(f.cfg.DedupWindow)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		f.mu.Lock()
		delete(f.pending, key)
		f.mu.Unlock()
		g.err = fmt.Errorf("lorawan: frame not handled: %w", ctx.Err())
		close(g.done)
		return g.err
	}
	f.mu.Lock()
	delete(f.pending, key)
	frames := g.frames
	g.frames = nil
	f.remember(key, g, f.now())
	f.mu.Unlock()

	g.taken, g.err = f.handleGroup(ctx, frames, g.received, h)
	if g.err != nil {
		// Not taken: a redelivered copy must be handled again, not
		// dropped as late.
		f.mu.Lock()
		if r, ok := f.recent[key]; ok && r.g == g {
			delete(f.recent, key)
		}
		f.mu.Unlock()
	}
	close(g.done)
	return g.err
}

// lateCopy handles a copy of a frame handled already (g): once g is
// done, its reception is written as an uplink_gateway point of g's
// uplink, at its time. A copy of a frame that was dropped or
// dead-lettered is dropped.
func (f *Frames) lateCopy(ctx context.Context, g *group, fr Frame, h gateway.Handler) error {
	select {
	case <-g.done:
	case <-ctx.Done():
		return fmt.Errorf("lorawan: frame copy from gateway %s not handled: %w", fr.Gateway.ID, ctx.Err())
	}
	if g.err != nil {
		return g.err
	}
	if g.taken == nil {
		return nil
	}
	return f.writeCopies(ctx, f.copiesOf(*g.taken, []Frame{fr}), h)
}

// takenFrame is what the group of a handled frame keeps for copies that
// come later (for up to lateKeep, up to DedupMaxFrames of them): the
// uplink's device, counter and time, not its payload or receptions.
type takenFrame struct {
	eui      devices.EUI
	name     string
	fcnt     uint32
	at       time.Time
	local    bool
	fport    uint8
	hasFPort bool
}

func takenOf(up gateway.Uplink) *takenFrame {
	return &takenFrame{eui: up.DevEUI, name: up.DeviceName, fcnt: up.FCnt, at: up.Time, local: up.LocalTime, fport: up.FPort, hasFPort: up.HasFPort}
}

// copiesOf is the uplink of frames' receptions only, for a frame another
// handler took (t): the pipeline writes their uplink_gateway points, at
// t's time.
func (f *Frames) copiesOf(t takenFrame, frames []Frame) gateway.Uplink {
	first := frames[0]
	return gateway.Uplink{
		Source: f.source, Topic: first.Topic, DevEUI: t.eui, DeviceName: t.name,
		FCnt: t.fcnt, HasFCnt: true, FPort: t.fport, HasFPort: t.hasFPort, ID: counterID(t.eui, t.fcnt),
		Time: t.at, LocalTime: t.local, GatewayCopies: true, Raw: first.Raw,
		Radio: gateway.Radio{Frequency: first.Frequency, DR: first.DR, SF: first.SF, Bandwidth: first.Bandwidth, Gateways: mergeGateways(frames)},
	}
}

// writeCopies hands an uplink of receptions only to h.
func (f *Frames) writeCopies(ctx context.Context, cp gateway.Uplink, h gateway.Handler) error {
	if err := h(ctx, cp); err != nil {
		f.count("uplinks_not_taken")
		return err
	}
	f.count("copies_written")
	return nil
}

// handleGroup handles the merged copies of one frame. It returns the
// uplink later copies of the frame belong to (without its payload and
// receptions), nil if the frame did not become one.
func (f *Frames) handleGroup(ctx context.Context, frames []Frame, received time.Time, h gateway.Handler) (*takenFrame, error) {
	up, acc, err := f.uplink(frames, received)
	if errors.Is(err, errDropped) {
		return nil, nil
	}
	var rej *gateway.Rejection
	if errors.As(err, &rej) {
		if rej.Reason == gateway.ReasonReplay && f.askStore(acc) {
			// The local state may have merged another instance's claim of
			// this frame: the store tells a copy from a replay.
			at, isCopy, err := f.storedCopyTime(ctx, frames[0], acc)
			if err != nil {
				return nil, err
			}
			if isCopy {
				f.count("duplicates_other_instance")
				up := f.frameUplink(frames, acc, received)
				up.Time = at
				t := takenOf(up)
				return t, f.writeCopies(ctx, f.copiesOf(*t, frames), h)
			}
			f.count("replays")
		}
		return nil, f.deadLetter(ctx, frames[0], acc.dev, rej)
	}
	if err != nil {
		return nil, err
	}
	how, at, err := f.storeCounter(ctx, frames[0], &acc, up.Time) // counters.go
	switch {
	case err != nil:
		return nil, err
	case how == storedHandled:
		return nil, nil
	case how == storedCopy:
		up.Time = at
		t := takenOf(up)
		return t, f.writeCopies(ctx, f.copiesOf(*t, frames), h)
	}
	up.Time = at
	if err := h(ctx, up); err != nil {
		acc.rollbck()
		if how == storedTaken {
			f.unstoreCounter(ctx, acc)
		}
		f.count("uplinks_not_taken")
		return nil, err
	}
	f.count("uplinks")
	return takenOf(up), nil
}

// askStore reports whether a frame the local state refused as a replay
// may be another gateway's copy of a frame another instance took, which
// only the shared store can tell.
func (f *Frames) askStore(acc accepted) bool { return acc.maybeCopy && f.sync != nil }

// uplink turns the copies of one frame (the same PHYPayload from one or
// more gateways) into an uplink, committing its frame counter. The error
// is errDropped for frames that are counted and dropped, or a
// *gateway.Rejection for frames that become dead letters. Handle calls it
// after the dedup window; tests and benchmarks call it directly.
func (f *Frames) uplink(frames []Frame, received time.Time) (gateway.Uplink, accepted, error) {
	first := frames[0]
	p, counter, err := parse(first.PHYPayload)
	if err != nil {
		if counter != "" {
			f.count(counter)
		}
		return gateway.Uplink{}, accepted{}, err
	}
	cands := f.devs.LookupDevAddr(p.addr)
	if len(cands) == 0 {
		f.count("unknown_dev_addr")
		f.msgLog.Debug().Str("dev_addr", p.addr.String()).Str("gateway_id", first.Gateway.ID).Msg("frame of a DevAddr no session has")
		if f.cfg.UnknownDevices == UnknownReject {
			return gateway.Uplink{}, accepted{}, &gateway.Rejection{Reason: gateway.ReasonUnknownDevice,
				Err: fmt.Errorf("no device in the registry has a session with DevAddr %s: add it (dev_addr and keys) to the devices file", p.addr)}
		}
		return gateway.Uplink{}, accepted{}, errDropped
	}
	acc, v, detail := f.match(&p, cands, f.now())
	switch v {
	case noMatch:
		f.count("bad_mic")
		return gateway.Uplink{}, accepted{}, &gateway.Rejection{Reason: gateway.ReasonBadMIC,
			Err: fmt.Errorf("DevAddr %s FCnt %d: the MIC matches none of the %d session(s) with this address: check the device's keys in the devices file (or another network uses the address)", p.addr, p.fcnt, len(cands))}
	case replay:
		if !f.askStore(acc) {
			f.count("replays") // else counted once the store has said (handleGroup)
		}
		return gateway.Uplink{}, acc, &gateway.Rejection{Reason: gateway.ReasonReplay, Err: errors.New(detail)}
	}
	if acc.reset {
		f.count("fcnt_resets")
		f.log.Warn().Str("dev_addr", p.addr.String()).Str("dev_eui", acc.dev.EUI.String()).Str("device", acc.dev.Name).
			Uint32("f_cnt", acc.fcnt).Msg("frame counter restart accepted (fcnt_reset: accept-low)")
	}
	up := f.frameUplink(frames, acc, received)
	if p.mac.FPort != nil {
		up.FPort, up.HasFPort = *p.mac.FPort, true
		s := acc.dev.Session
		key := s.AppSKey
		if up.FPort == 0 {
			key = s.NwkEncKey()
		}
		plain, err := DecryptFRMPayload(key, p.addr, acc.fcnt, true, p.frmPayload())
		if err != nil {
			acc.rollbck()
			return gateway.Uplink{}, accepted{}, err
		}
		if up.FPort == 0 {
			// MAC commands for the network server, not application data:
			// counted, never decoded as a sensor payload.
			f.count("mac_command_frames")
		} else {
			up.Payload = plain
		}
	}
	return up, acc, nil
}

// frameUplink is the uplink of the copies of a frame acc matched, without
// its payload: device, counter, receptions and time.
func (f *Frames) frameUplink(frames []Frame, acc accepted, received time.Time) gateway.Uplink {
	first := frames[0]
	up := gateway.Uplink{
		Source: f.source, Topic: first.Topic, DevEUI: acc.dev.EUI, DeviceName: acc.dev.Name,
		FCnt: acc.fcnt, HasFCnt: true, ID: counterID(acc.dev.EUI, acc.fcnt), Raw: first.Raw,
		Radio: gateway.Radio{Frequency: first.Frequency, DR: first.DR, SF: first.SF, Bandwidth: first.Bandwidth, Gateways: mergeGateways(frames)},
	}
	up.Time = earliest(frames)
	if up.Time.IsZero() {
		up.Time, up.LocalTime = received, true
	}
	return up
}

// mergeGateways lists each gateway once (its strongest copy), sorted by
// ID so the same frame always yields the same points.
func mergeGateways(frames []Frame) []gateway.GatewayRx {
	out := make([]gateway.GatewayRx, 0, len(frames))
	for _, fr := range frames {
		g := fr.Gateway
		dup := false
		for i := range out {
			if out[i].ID == g.ID {
				dup = true
				if g.RSSI > out[i].RSSI || (g.RSSI == out[i].RSSI && g.SNR > out[i].SNR) {
					out[i] = g
				}
			}
		}
		if !dup {
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// earliest is the earliest gateway time of the copies, zero if none has one.
// A gateway time of 1970 or before is a GPS clock without a fix, not a
// time: such a copy counts as one without a time. Sensorgate is the
// network server of raw frames, so its own receive time (LocalTime) is the
// network server's time, not a stand-in for a broken one.
func earliest(frames []Frame) time.Time {
	var t time.Time
	for _, fr := range frames {
		if fr.Time.After(unixEpoch) && (t.IsZero() || fr.Time.Before(t)) {
			t = fr.Time
		}
	}
	return t
}

var unixEpoch = time.Unix(0, 0)

func (f *Frames) deadLetter(ctx context.Context, fr Frame, dev *devices.Device, rej *gateway.Rejection) error {
	dl := gateway.DeadLetter{Time: f.now(), Source: f.source, Topic: fr.Topic, Reason: rej.Reason, Detail: rej.Err.Error(), Raw: fr.Raw}
	ev := f.msgLog.Warn().Str("gateway_id", fr.Gateway.ID).Str("reason", string(rej.Reason)).Err(rej.Err)
	if dev != nil {
		dl.DevEUI = dev.EUI.String()
		ev = ev.Str("dev_eui", dl.DevEUI).Str("dev_addr", dev.Session.DevAddr.String())
	}
	ev.Msg("frame dead-lettered")
	if err := f.dl.Put(ctx, dl); err != nil {
		return fmt.Errorf("lorawan: keep dead letter (%s): %w", rej.Reason, err)
	}
	// Counted once stored, so a reader who sees the count finds the letter.
	f.count("dead_letters." + string(rej.Reason))
	return nil
}

// remember marks key as handled until lateKeep from now; f.mu is held.
// Past DedupMaxFrames the oldest entries are forgotten early: anyone can
// send a Semtech UDP source frames, and a flood must not grow the table.
func (f *Frames) remember(key string, g *group, now time.Time) {
	for len(f.recent) >= f.cfg.DedupMaxFrames && f.recentH < len(f.recentQ) {
		e := f.recentQ[f.recentH]
		if r, ok := f.recent[e.key]; ok && !r.until.After(e.until) {
			delete(f.recent, e.key)
			f.evicted++
		}
		f.recentQ[f.recentH] = recentEntry{}
		f.recentH++
	}
	until := now.Add(lateKeep)
	f.recent[key] = recentEntry{until: until, g: g}
	f.recentQ = append(f.recentQ, recentEntry{key: key, until: until})
}

// Config is the frame policy in use, defaults applied.
func (f *Frames) Config() FrameConfig { return f.cfg }

// DedupStats returns how many handled frames are remembered and how many
// were forgotten early because the table was full.
func (f *Frames) DedupStats() (entries int, evicted uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.recent), f.evicted
}

// pruneRecent forgets handled frames older than lateKeep; f.mu is held.
func (f *Frames) pruneRecent(now time.Time) {
	for ; f.recentH < len(f.recentQ) && now.After(f.recentQ[f.recentH].until); f.recentH++ {
		e := f.recentQ[f.recentH]
		if r, ok := f.recent[e.key]; ok && !r.until.After(e.until) {
			delete(f.recent, e.key)
		}
		f.recentQ[f.recentH] = recentEntry{}
	}
	// Compact once half the queue is pruned: amortized O(1) per frame.
	if f.recentH > 64 && f.recentH*2 > len(f.recentQ) {
		n := copy(f.recentQ, f.recentQ[f.recentH:])
		f.recentQ, f.recentH = f.recentQ[:n], 0
	}
}

func (f *Frames) count(name string) {
	if f.counters != nil {
		f.counters.Inc("lorawan." + name)
	}
}
