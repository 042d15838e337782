package mqtt

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sensorgate/sensorgate/gateway"
)

// session is one paho client's lifetime within Source.Run. Every callback
// paho makes into it, and every worker, is counted in wg, so stop can wait
// for all of them: nothing the session runs outlives it.
//
// Messages flow from paho's one dispatch goroutine (onMessage) to a fixed
// pool of workers. Each message gets a sequence number as paho hands it
// over and holds a place in a window of MaxInFlight numbers until it is
// done (acknowledged, or left for redelivery). A message may start only
// while its number is within the window of the oldest one not done, so
// when the window is full onMessage blocks, paho stops reading the
// connection, TCP stops the broker, and at most MaxInFlight messages are
// in memory however big the broker's queue is.
//
// Messages of one device (orderKey) are handled one after the other, in
// the order the broker sent them, so frame-counter checks downstream see
// them in sequence; different devices run in parallel on every core. A
// message waiting for its device's previous one is overtaken by others,
// but by fewer than MaxInFlight: the window stops the rest.
type session struct {
	src    *Source
	h      gateway.Handler
	client paho.Client
	// ctx is the handlers' context: not cancelled with Run's, so messages
	// in flight at shutdown finish and are acknowledged, but cancelled
	// drainTimeout after stop began.
	ctx    context.Context
	cancel context.CancelFunc

	ready chan delivery // messages a worker may start; never full (cap = window)
	// The window: next is the number the next message gets, low the
	// oldest not done; done[n%len(done)] marks numbers done above low.
	// free is signalled when low moves.
	winMu sync.Mutex
	next  uint64
	low   uint64
	done  []bool
	free  chan struct{}
	// lanes holds, per order key with a message being handled, the
	// messages of that key waiting behind it, oldest first.
	laneMu sync.Mutex
	lanes  map[string][]delivery

	mu      sync.Mutex
	closed  bool
	wg      sync.WaitGroup
	closing chan struct{} // closed when stop begins

	// refused is signalled when the handler refused a message, which only
	// a new session gets redelivered. clean records a later success.
	refused chan struct{}
	clean   atomic.Bool

	// gate holds messages back until the OnConnect callbacks of their
	// connection ran: a persistent session's queued messages (or a kept
	// subscription's) arrive right after CONNACK, while paho starts the
	// OnConnect handler in a goroutine of its own. Open (closed channel)
	// when the source has no callbacks. gateMu orders onConnect and onLost.
	gate   atomic.Pointer[chan struct{}]
	gateMu sync.Mutex
}

// newGate returns a shut gate, or an open one when open.
func newGate(open bool) *chan struct{} {
	g := make(chan struct{})
	if open {
		close(g)
	}
	return &g
}

// delivery is a message on its way to a worker, with its order key ("" for
// none) and sequence number.
type delivery struct {
	key string
	seq uint64
	m   paho.Message
}

// enter registers a callback; false once stop began.
func (s *session) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// stop stops taking messages, waits for the callbacks and workers in
// progress (cancelling their context after drainTimeout) and disconnects.
// Messages not handled stay unacknowledged in the broker's session.
func (s *session) stop() {
	s.mu.Lock()
	s.closed = true
	close(s.closing)
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	t := time.NewTimer(drainTimeout)
	select {
	case <-done:
		t.Stop()
	case <-t.C:
		s.src.log.Warn().Stringer("timeout", drainTimeout).Msg("in-flight messages did not finish in time; cancelling them (they stay unacknowledged and are redelivered)")
		s.cancel()
		<-done
	}
	s.cancel()
	s.client.Disconnect(disconnectQuiesce)
	s.src.ready.Store(false)
}

// onMessage is paho's handler for every message. With OrderMatters(true)
// paho calls it on its one dispatch goroutine, so blocking here is the
// backpressure: paho stops reading the connection until the window has
// room. The message goes to an idle worker, or queues behind the message
// of the same device being handled.
func (s *session) onMessage(_ paho.Client, m paho.Message) {
	select {
	case <-*s.gate.Load():
	case <-s.closing:
		return // stopping: unacknowledged, the broker redelivers it
	}
	seq, ok := s.admit()
	if !ok {
		return // stopping: unacknowledged, the broker redelivers it
	}
	d := delivery{key: s.src.orderKey(m.Topic()), seq: seq, m: m}
	if d.key != "" {
		s.laneMu.Lock()
		if waiting, busy := s.lanes[d.key]; busy {
			s.lanes[d.key] = append(waiting, d)
			s.laneMu.Unlock()
			return
		}
		s.lanes[d.key] = nil // busy, nothing waiting
		s.laneMu.Unlock()
	}
	s.ready <- d // has room: at most a window of messages is admitted
}

// admit waits until the window has room and numbers the next message;
// false once stop began.
func (s *session) admit() (uint64, bool) {
	for {
		select {
		case <-s.closing:
			return 0, false
		default:
		}
		s.winMu.Lock()
		if seq := s.next; seq-s.low < uint64(len(s.done)) {
			s.next++
			s.winMu.Unlock()
			return seq, true
		}
		s.winMu.Unlock()
		select {
		case <-s.free:
		case <-s.closing:
			return 0, false
		}
	}
}

// finish marks message seq done and moves the window past every done
// message at its start.
func (s *session) finish(seq uint64) {
	n := uint64(len(s.done))
	s.winMu.Lock()
	s.done[seq%n] = true
	moved := false
	for s.low < s.next && s.done[s.low%n] {
		s.done[s.low%n] = false
		s.low++
		moved = true
	}
	s.winMu.Unlock()
	if moved {
		select {
		case s.free <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// work is one worker: it handles a message, then the messages queued
// behind it on the same key, until none is left; then it waits for the
// next. At stop it finishes the message in hand and returns; the messages
// not begun stay unacknowledged for the broker to redeliver.
func (s *session) work() {
	defer s.wg.Done()
	for {
		var d delivery
		select {
		case <-s.closing:
			return
		case d = <-s.ready:
		}
		for {
			s.handle(d.m)
			s.finish(d.seq)
			if d.key == "" {
				break
			}
			next, ok := s.nextInLane(d.key)
			if !ok {
				break
			}
			d = next
			select {
			case <-s.closing:
				return
			default:
			}
		}
	}
}

// nextInLane takes the oldest message waiting on key, or marks the key
// idle when none is.
func (s *session) nextInLane(key string) (delivery, bool) {
	s.laneMu.Lock()
	defer s.laneMu.Unlock()
	waiting := s.lanes[key]
	if len(waiting) == 0 {
		delete(s.lanes, key)
		return delivery{}, false
	}
	d := waiting[0]
	waiting[0] = delivery{}
	s.lanes[key] = waiting[1:]
	return d, true
}

// handle parses one message (or passes it to the source's MessageHandler)
// and acknowledges it once it is durable: taken by the handler, or stored
// as a dead letter when it cannot be parsed.
func (s *session) handle(m paho.Message) {
	src := s.src
	if src.handleMsg != nil {
		if err := src.handleMsg(s.ctx, m.Topic(), m.Payload(), s.h); err != nil {
			src.msgLog.Warn().Err(err).Str("topic", m.Topic()).Msg("the message was not taken; leaving it unacknowledged for redelivery")
			s.signalRefused(m)
			return
		}
		m.Ack()
		s.clean.Store(true)
		return
	}
	up, err := src.parser.Parse(m.Topic(), m.Payload())
	if err != nil {
		dl := DeadLetterOf(src.cfg.Name, m.Topic(), m.Payload(), err)
		if perr := src.dl.Put(s.ctx, dl); perr != nil {
			src.msgLog.Error().Err(perr).Str("topic", m.Topic()).Str("reason", string(dl.Reason)).Str("problem", err.Error()).
				Msg("cannot store an unparsable message as a dead letter; leaving it unacknowledged for redelivery")
			s.signalRefused(m)
			return
		}
		src.msgLog.Warn().Str("topic", m.Topic()).Str("reason", string(dl.Reason)).Str("dev_eui", dl.DevEUI).Str("problem", err.Error()).
			Msg("unparsable message kept as a dead letter")
		m.Ack()
		return
	}
	if err := s.h(s.ctx, up); err != nil {
		src.msgLog.Warn().Err(err).Str("topic", m.Topic()).Str("dev_eui", up.DevEUI.String()).
			Msg("the pipeline did not take the uplink; leaving it unacknowledged for redelivery")
		s.signalRefused(m)
		return
	}
	m.Ack()
	s.clean.Store(true)
}

// signalRefused asks Run for a new session, so the broker redelivers. A
// QoS 0 message is never redelivered, so it asks for nothing.
func (s *session) signalRefused(m paho.Message) {
	if m.Qos() == 0 {
		return
	}
	s.clean.Store(false)
	select {
	case s.refused <- struct{}{}:
	default:
	}
}

// onConnect subscribes to every topic on every connection: with a clean
// session the broker forgot them, and with a persistent one subscribing
// again is harmless.
func (s *session) onConnect(c paho.Client) {
	if !s.enter() {
		return
	}
	defer s.wg.Done()
	src := s.src
	s.gateMu.Lock()
	for _, f := range src.connected {
		f() // queued messages may arrive before SUBACK; the gate holds them until now
	}
	select {
	case <-*s.gate.Load():
	default:
		close(*s.gate.Load())
	}
	s.gateMu.Unlock()
	subs := src.cfg.Subscriptions()
	filters := make(map[string]byte, len(subs))
	for _, t := range subs {
		filters[t] = byte(*src.cfg.QoS)
	}
	tok := c.SubscribeMultiple(filters, nil)
	select {
	case <-tok.Done():
	case <-s.closing:
		return
	}
	if err := tok.Error(); err != nil {
		src.log.Error().Err(err).Strs("topics", subs).Msg("connected, but subscribing failed; will retry on the next connection")
		return
	}
	ok := true
	if st, isSub := tok.(*paho.SubscribeToken); isSub {
		for topic, granted := range st.Result() {
			switch {
			case granted == 0x80:
				ok = false
				src.log.Error().Str("topic", topic).Msg("the broker refused the subscription: check the topic filter and the broker's ACL for this user")
			case int(granted) < *src.cfg.QoS:
				src.log.Warn().Str("topic", topic).Int("qos", *src.cfg.QoS).Int("granted", int(granted)).
					Msg("the broker granted a lower QoS than requested: messages may be lost while disconnected")
			}
		}
	}
	src.ready.Store(ok)
	src.log.Info().Strs("topics", subs).Str("client_id", src.cfg.ClientID).Bool("clean_session", src.cfg.Clean).Msg("connected to MQTT broker and subscribed")
}

// onLost logs a lost connection; paho reconnects by itself.
func (s *session) onLost(c paho.Client, err error) {
	s.src.ready.Store(false)
	if len(s.src.connected) > 0 {
		// Shut the gate for the next connection, unless that is up
		// already (paho runs this handler in a goroutine of its own, so
		// it may come after the reconnection's OnConnect), or the gate
		// is still shut (a message waiting at it must be let through by
		// the next OnConnect, not left behind a new gate).
		s.gateMu.Lock()
		select {
		case <-*s.gate.Load():
			if !c.IsConnectionOpen() {
				s.gate.Store(newGate(false))
			}
		default:
		}
		s.gateMu.Unlock()
	}
	s.src.log.Warn().Err(err).Msg("connection to MQTT broker lost; reconnecting")
}

// onNotification logs failed connection attempts, which paho otherwise
// retries silently.
func (s *session) onNotification(_ paho.Client, n paho.ConnectionNotification) {
	if f, ok := n.(paho.ConnectionNotificationFailed); ok {
		s.src.msgLog.Warn().Err(f.Reason).Stringer("retry_max", s.src.cfg.ReconnectMax).Msg("cannot connect to MQTT broker; retrying")
	}
}
