package lorawan

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/brocaar/lorawan"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

// Frame is one gateway's reception of a LoRaWAN PHYPayload, as a feed
// (Semtech UDP, Gateway Bridge MQTT) delivers it.
type Frame struct {
	PHYPayload []byte
	Gateway    gateway.GatewayRx
	Frequency  uint64 // Hz, 0 if unknown
	SF         int    // LoRa spreading factor, 0 if unknown or FSK
	Bandwidth  int    // Hz, 0 if unknown
	DR         int    // data-rate index, -1 if unknown (it depends on the region)
	// Time is the gateway's (GPS) receive time; zero when the gateway has
	// no GPS, and the local time of receipt is used.
	Time time.Time
	// Topic is the MQTT topic of a Gateway Bridge event, "" for UDP.
	Topic string
	// Raw is the message as received, kept for dead letters.
	Raw []byte
}

// DevAddrLookup finds the devices with an ABP session at a DevAddr;
// *devices.Registry implements it.
type DevAddrLookup interface {
	LookupDevAddr(addr devices.DevAddr) []*devices.Device
}

// errDropped marks frames that are counted and dropped, not dead-lettered:
// joins, downlinks, proprietary frames, unknown DevAddrs under "drop".
var errDropped = errors.New("lorawan: frame dropped")

// epochSearch is how many 65536-frame epochs a frame is tried in: from 0
// when sensorgate has no counter state for the device (after a restart),
// so a device past FCnt 65535 is still recognized, and from the epoch of
// the last counter after a long outage. LoRaWAN 1.1 checks only a 16-bit
// MIC here, so it searches one epoch to keep forgeries at 1 in 65536.
const (
	epochSearch10 = 16
	epochSearch11 = 1
)

// fcntState is what sensorgate knows of one device's uplink counter.
type fcntState struct {
	mu sync.Mutex
	counter
}

type counter struct {
	addr   devices.DevAddr // the session the state belongs to: a new session starts over
	micKey devices.Key
	has    bool
	last   uint32    // highest accepted 32-bit FCnt
	seen   time.Time // local time last accepted
	// window has bit i set when FCnt last-i was accepted: a frame that
	// arrives out of order (gateways with different backhaul delays, a
	// feed handling messages concurrently) is taken once, a replay never.
	window uint64
}

// replayWindow is how far below the highest accepted FCnt a frame may
// still arrive, once; older frames are replays.
const replayWindow = 64

// inWindow reports whether full is below c.last, within the window and
// not accepted yet.
func (c *counter) inWindow(full uint32) bool {
	d := c.last - full
	return full < c.last && d < replayWindow && c.window&(1<<d) == 0
}

// accepted is a frame whose MIC matched a device session.
type accepted struct {
	dev     *devices.Device
	fcnt    uint32
	reset   bool // accepted as a counter restart under accept-low
	rollbck func()
	st      *fcntState
	// claimed is set once the counter is stored (UseCounterStore);
	// prevStored is the state it replaced, for unstoreCounter.
	claimed    bool
	prevStored []byte
	// maybeCopy marks a frame the local state refused as taken already
	// within the window, while the device is talking: with a shared
	// store, another gateway's copy of a frame another instance took.
	maybeCopy bool
}

// verdict of matching one frame against the sessions of its DevAddr.
type verdict int

const (
	noMatch verdict = iota
	accept
	replay
)

// parsed is a data uplink after parsing, before the session is known.
type parsed struct {
	phy   lorawan.PHYPayload
	mac   *lorawan.MACPayload
	addr  devices.DevAddr
	fcnt  uint16
	mtype lorawan.MType
}

// parse reads a PHYPayload and keeps only data uplinks; anything else is a
// *gateway.Rejection (malformed) or errDropped with the counter to bump.
func parse(b []byte) (parsed, string, error) {
	var p parsed
	if err := p.phy.UnmarshalBinary(b); err != nil {
		return p, "", &gateway.Rejection{Reason: gateway.ReasonMalformed, Err: fmt.Errorf("PHYPayload %d bytes: %w", len(b), err)}
	}
	p.mtype = p.phy.MHDR.MType
	if p.phy.MHDR.Major != lorawan.LoRaWANR1 {
		return p, "dropped_major", errDropped
	}
	switch p.mtype {
	case lorawan.UnconfirmedDataUp, lorawan.ConfirmedDataUp:
	case lorawan.JoinRequest, lorawan.RejoinRequest:
		return p, "dropped_join", errDropped
	case lorawan.JoinAccept, lorawan.UnconfirmedDataDown, lorawan.ConfirmedDataDown:
		return p, "dropped_downlink", errDropped
	default:
		return p, "dropped_proprietary", errDropped
	}
	mac, ok := p.phy.MACPayload.(*lorawan.MACPayload)
	if !ok {
		return p, "", &gateway.Rejection{Reason: gateway.ReasonMalformed, Err: errors.New("data frame without MACPayload")}
	}
	p.mac = mac
	p.addr = devices.DevAddr(mac.FHDR.DevAddr)
	p.fcnt = uint16(mac.FHDR.FCnt)
	return p, "", nil
}

// micOK checks the uplink MIC with the 32-bit FCnt fcnt. For 1.1 only the
// FNwkSIntKey half can be checked: the other half covers the TX data rate
// and channel index, which only the device's network server knows.
func (p *parsed) micOK(s *devices.Session, fcnt uint32) bool {
	p.mac.FHDR.FCnt = fcnt
	var ok bool
	if s.Is11() {
		ok, _ = p.phy.ValidateUplinkDataMICF(lorawan.AES128Key(s.FNwkSIntKey))
	} else {
		k := lorawan.AES128Key(s.NwkSKey)
		ok, _ = p.phy.ValidateUplinkDataMIC(lorawan.LoRaWAN1_0, 0, 0, 0, k, k)
	}
	return ok
}

// stateOf returns the counter state of dev, new if its session changed.
func (f *Frames) stateOf(dev *devices.Device) *fcntState {
	f.mu.Lock()
	st, ok := f.state[dev.EUI]
	if !ok {
		st = &fcntState{}
		f.state[dev.EUI] = st
	}
	f.mu.Unlock()
	return st
}

// match finds the device that sent p and decides on its frame counter.
// Pass one looks for a counter above the highest accepted one; only when
// no device accepts does pass two ask whether a MIC matches a counter at
// or below it: a late frame within the replay window, a replay, or a
// restart accept-low may take.
func (f *Frames) match(p *parsed, cands []*devices.Device, now time.Time) (accepted, verdict, string) {
	for _, d := range cands {
		s := d.Session
		st := f.stateOf(d)
		st.mu.Lock()
		if st.has && (st.addr != s.DevAddr || st.micKey != s.MICKey()) {
			st.counter = counter{}
		}
		var full uint32
		found := false
		n := epochSearch10
		if s.Is11() {
			n = epochSearch11
		}
		if st.has {
			// The smallest counter above the last one with these 16 bits;
			// then, for a device unheard for over 65536 frames (a long
			// gateway outage), the epochs after it.
			next := st.last&^0xffff | uint32(p.fcnt)
			if next <= st.last {
				next += 1 << 16
			}
			for e := 0; e < n && !found && next >= st.last; e++ {
				full = next
				found = p.micOK(s, full)
				next += 1 << 16
			}
		} else {
			for e := 0; e < n && !found; e++ {
				full = uint32(e)<<16 | uint32(p.fcnt)
				found = p.micOK(s, full)
			}
		}
		if found {
			a := accepted{dev: d, fcnt: full, rollbck: st.commit(s, full, now), st: st}
			st.mu.Unlock()
			return a, accept, ""
		}
		st.mu.Unlock()
	}
	for _, d := range cands {
		s := d.Session
		st := f.stateOf(d)
		st.mu.Lock()
		if !st.has {
			st.mu.Unlock()
			continue
		}
		same := st.last&^0xffff | uint32(p.fcnt)
		low := uint32(p.fcnt)
		var full uint32
		found := false
		if same <= st.last && p.micOK(s, same) {
			full, found = same, true
		} else if low != same && p.micOK(s, low) {
			full, found = low, true
		}
		if !found {
			st.mu.Unlock()
			continue
		}
		if st.inWindow(full) {
			a := accepted{dev: d, fcnt: full, rollbck: st.commit(s, full, now), st: st}
			st.mu.Unlock()
			return a, accept, ""
		}
		if f.cfg.FCntReset == FCntResetAcceptLow && full <= f.cfg.FCntResetMax && now.Sub(st.seen) >= f.cfg.FCntResetGap {
			a := accepted{dev: d, fcnt: full, reset: true, rollbck: st.commit(s, full, now), st: st}
			st.mu.Unlock()
			return a, accept, ""
		}
		detail := fmt.Sprintf("device %s: FCnt %d was accepted before or is over %d below the highest accepted %d (%s ago): a replayed frame, or the device restarted its counter",
			d.Name, full, replayWindow, st.last, now.Sub(st.seen).Round(time.Second))
		if f.cfg.FCntReset == FCntResetAcceptLow {
			detail += fmt.Sprintf("; fcnt_reset accept-low takes a restart only at FCnt ≤ %d after %s of silence", f.cfg.FCntResetMax, f.cfg.FCntResetGap)
		} else {
			detail += "; set fcnt_reset: accept-low to accept counter restarts"
		}
		maybeCopy := full <= st.last && st.last-full < replayWindow && now.Sub(st.seen) < lateKeep
		st.mu.Unlock()
		return accepted{dev: d, fcnt: full, maybeCopy: maybeCopy}, replay, detail
	}
	return accepted{}, noMatch, ""
}

// commit records full as accepted (a new highest counter, a late frame
// within the window, or a restart) and returns the undo, used when the
// uplink was not taken so that a redelivery is not a replay. The caller
// holds st.mu.
func (st *fcntState) commit(s *devices.Session, full uint32, now time.Time) func() {
	if st.inWindow(full) {
		st.window |= 1 << (st.last - full)
		return func() {
			st.mu.Lock()
			if d := st.last - full; st.has && full <= st.last && d < replayWindow {
				st.window &^= 1 << d
			}
			st.mu.Unlock()
		}
	}
	prev := st.counter
	w := uint64(1)
	if st.has && full > st.last && full-st.last < replayWindow {
		w = st.window<<(full-st.last) | 1
	}
	st.counter = counter{addr: s.DevAddr, micKey: s.MICKey(), has: true, last: full, seen: now, window: w}
	return func() {
		st.mu.Lock()
		if st.has && st.last == full && st.addr == s.DevAddr {
			st.counter = prev
		}
		st.mu.Unlock()
	}
}

// DecryptFRMPayload decrypts (or encrypts: it is AES-CTR) an FRMPayload
// with the session key: the AppSKey for FPort 1–255, the NwkSKey (1.0) or
// NwkSEncKey (1.1) for FPort 0. fCnt is the full 32-bit frame counter;
// uplink is false for downlinks. payload is not modified.
//
// The MQTT source calls it for ChirpStack v4 events that carry an
// encrypted payload (a join server holds the AppSKey and the event has
// joinServerContext) when the registry holds the device's AppSKey.
func DecryptFRMPayload(key devices.Key, devAddr devices.DevAddr, fCnt uint32, uplink bool, payload []byte) ([]byte, error) {
	if len(payload) == 0 {
		return nil, nil
	}
	out := make([]byte, len(payload), (len(payload)+15)&^15)
	copy(out, payload)
	out, err := lorawan.EncryptFRMPayload(lorawan.AES128Key(key), uplink, lorawan.DevAddr(devAddr), fCnt, out)
	if err != nil {
		return nil, fmt.Errorf("lorawan: decrypt FRMPayload of %s: %w", devAddr, err)
	}
	return out, nil
}

// frmPayload returns the frame's FRMPayload bytes, still encrypted.
func (p *parsed) frmPayload() []byte {
	if len(p.mac.FRMPayload) != 1 {
		return nil
	}
	if dp, ok := p.mac.FRMPayload[0].(*lorawan.DataPayload); ok {
		return dp.Bytes
	}
	return nil
}

// counterID is the uplink's idempotency key, as the MQTT feeds make it
// when the network server gives none: DevEUI:FCnt.
func counterID(eui devices.EUI, fcnt uint32) string {
	return eui.String() + ":" + strconv.FormatUint(uint64(fcnt), 10)
}
