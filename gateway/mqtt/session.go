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
// paho makes into it is counted in wg, so stop can wait for all of them:
// nothing the session runs outlives it.
type session struct {
	src    *Source
	h      gateway.Handler
	client paho.Client
	// ctx is the handlers' context: not cancelled with Run's, so messages
	// in flight at shutdown finish and are acknowledged, but cancelled
	// drainTimeout after stop began.
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{} // bounds concurrent handlers

	mu      sync.Mutex
	closed  bool
	wg      sync.WaitGroup
	closing chan struct{} // closed when stop begins

	// refused is signalled when the handler refused a message, which only
	// a new session gets redelivered. clean records a later success.
	refused chan struct{}
	clean   atomic.Bool
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

// stop stops taking messages, waits for the callbacks in progress
// (cancelling their context after drainTimeout) and disconnects. Messages
// not handled stay unacknowledged in the broker's session.
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
		s.src.log.Warn().Dur("timeout", drainTimeout).Msg("in-flight messages did not finish in time; cancelling them (they stay unacknowledged and are redelivered)")
		s.cancel()
		<-done
	}
	s.cancel()
	s.client.Disconnect(disconnectQuiesce)
	s.src.ready.Store(false)
}

// onMessage is paho's handler for every message; with OrderMatters(false)
// paho calls it on a goroutine of its own per message.
func (s *session) onMessage(_ paho.Client, m paho.Message) {
	if !s.enter() {
		return // stopping: unacknowledged, the broker redelivers it
	}
	defer s.wg.Done()
	select {
	case s.sem <- struct{}{}:
	case <-s.closing:
		return
	}
	defer func() { <-s.sem }()
	s.handle(m)
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
		dl := gateway.DeadLetter{
			Time:   time.Now().UTC(),
			Source: src.cfg.Name,
			Topic:  m.Topic(),
			Reason: gateway.ReasonMalformed,
			Detail: err.Error(),
			Raw:    m.Payload(),
		}
		if perr := src.dl.Put(s.ctx, dl); perr != nil {
			src.msgLog.Error().Err(perr).Str("topic", m.Topic()).Str("problem", err.Error()).
				Msg("cannot store a malformed message as a dead letter; leaving it unacknowledged for redelivery")
			s.signalRefused(m)
			return
		}
		src.msgLog.Warn().Str("topic", m.Topic()).Str("problem", err.Error()).Msg("malformed message kept as a dead letter")
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
	filters := make(map[string]byte, len(src.cfg.Topics))
	for _, t := range src.cfg.Topics {
		filters[t] = byte(*src.cfg.QoS)
	}
	tok := c.SubscribeMultiple(filters, nil)
	select {
	case <-tok.Done():
	case <-s.closing:
		return
	}
	if err := tok.Error(); err != nil {
		src.log.Error().Err(err).Strs("topics", src.cfg.Topics).Msg("connected, but subscribing failed; will retry on the next connection")
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
	src.log.Info().Strs("topics", src.cfg.Topics).Str("client_id", src.cfg.ClientID).Bool("clean_session", src.cfg.Clean).Msg("connected to MQTT broker and subscribed")
}

// onLost logs a lost connection; paho reconnects by itself.
func (s *session) onLost(_ paho.Client, err error) {
	s.src.ready.Store(false)
	s.src.log.Warn().Err(err).Msg("connection to MQTT broker lost; reconnecting")
}

// onNotification logs failed connection attempts, which paho otherwise
// retries silently.
func (s *session) onNotification(_ paho.Client, n paho.ConnectionNotification) {
	if f, ok := n.(paho.ConnectionNotificationFailed); ok {
		s.src.msgLog.Warn().Err(f.Reason).Dur("retry_max", s.src.cfg.ReconnectMax).Msg("cannot connect to MQTT broker; retrying")
	}
}
