package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/tlsconfig"
)

// Timeouts of a session; not settings, because no deployment has a reason
// to change them.
const (
	// drainTimeout bounds how long in-flight handlers may take to finish
	// at shutdown before their context is cancelled.
	drainTimeout = 10 * time.Second
	// disconnectQuiesce is how long paho may take to send DISCONNECT.
	disconnectQuiesce = 250 // ms
	connectTimeout    = 10 * time.Second
	keepAlive         = 30 * time.Second
	// redeliverMin is the first wait before a session is restarted so the
	// broker redelivers messages the pipeline refused.
	redeliverMin = time.Second
)

// Source is an MQTT feed: one paho client with a persistent session,
// subscribed to the configured topics, acknowledging each message only once
// the handler took it (or it is stored as a dead letter).
//
// Messages are handled concurrently by Config.MaxInFlight workers, so the
// handler must be safe for concurrent use; at most MaxInFlight messages are
// received and not yet acknowledged at any time, which bounds memory during
// a backlog however much the broker has queued. Messages of one device are
// handled in the order the broker sent them (orderKey).
type Source struct {
	cfg       Config
	parser    *Parser        // nil when handleMsg is set
	handleMsg MessageHandler // replaces parser and handler call, if set
	dl        gateway.DeadLetters
	log       zerolog.Logger
	// msgLog is for per-message problems: sampled, so a broken feed or a
	// down sink does not flood the log.
	msgLog zerolog.Logger

	// unordered is set when messages are handled in no particular order
	// (orderKey).
	unordered bool

	// connected are called on each connection (OnConnect).
	connected []func()

	// tls is the client TLS configuration of a TLS broker URL, nil for
	// plain TCP and WebSocket.
	tls *tls.Config

	running atomic.Bool
	ready   atomic.Bool
}

var _ gateway.Source = (*Source)(nil)

// MessageHandler takes a message in place of the format's parser, for
// feeds whose messages are not uplinks by themselves: a Gateway Bridge
// event is one gateway's copy of a raw LoRaWAN frame, which needs session
// keys, frame counters and the other gateways' copies (gateway/lorawan,
// which this package must not import; cmd supplies the handler). It
// returns nil once the message is durable (taken by h, kept as a dead
// letter, or counted and dropped on purpose), and the source acknowledges
// it; an error leaves it unacknowledged for redelivery. It is called
// concurrently, and may keep payload.
type MessageHandler func(ctx context.Context, topic string, payload []byte, h gateway.Handler) error

// Option changes how New builds a Source.
type Option func(*Source)

// WithMessageHandler hands every message to mh instead of parsing it as
// the configured format; format gateway-bridge requires it.
func WithMessageHandler(mh MessageHandler) Option {
	return func(s *Source) { s.handleMsg = mh }
}

// New checks cfg, applies its defaults (QoS 1, client id derived from the
// name, MaxInFlight, ReconnectMax) and returns a Source that connects when
// Run is called. dl keeps messages that cannot be parsed.
func New(cfg Config, dl gateway.DeadLetters, log zerolog.Logger, opts ...Option) (*Source, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dl == nil {
		return nil, fmt.Errorf("mqtt source %q: no dead-letter store given: malformed messages could not be kept", cfg.Name)
	}
	log = log.With().Str("source", cfg.Name).Str("broker", RedactBroker(cfg.Broker)).Logger()
	s := &Source{
		cfg:    cfg,
		dl:     dl,
		log:    log,
		msgLog: log.Sample(&zerolog.BurstSampler{Burst: 10, Period: time.Minute}),
	}
	for _, o := range opts {
		o(s)
	}
	// Without a device in the topic there is nothing to order by. A raw
	// frame's topic names the gateway, not the device, and the frame
	// handler waits out its de-duplication window: ordered per gateway,
	// the next frames would queue behind that wait and miss their own.
	s.unordered = cfg.Format == FormatGatewayBridge ||
		cfg.Format == FormatJSON && !strings.HasPrefix(cfg.JSON.DeviceID, "topic:")
	if s.handleMsg == nil {
		parser, err := NewParser(cfg, nil)
		if err != nil {
			return nil, err
		}
		s.parser = parser
	}
	if u, err := url.Parse(cfg.Broker); err == nil && tlsconfig.Scheme(u.Scheme) {
		tc, err := cfg.TLS.Client(u.Hostname())
		if err != nil {
			return nil, fmt.Errorf("mqtt source %q: %w", cfg.Name, err)
		}
		s.tls = tc
		if cfg.TLS.InsecureSkipVerify {
			log.Warn().Msg("tls.insecure_skip_verify is on: the broker's certificate is not checked, so anyone on the network path can read and change this feed; use tls.ca_file instead")
		}
	}
	if cfg.Format == FormatTTSV3 && *cfg.QoS > 0 {
		log.Warn().Int("qos", *cfg.QoS).Msg("The Things Stack's MQTT server offers QoS 0 only: uplinks published while sensorgate is disconnected are lost; use a TTS webhook or a ChirpStack-style broker where that matters")
	}
	return s, nil
}

// OnConnect has f called on every connection, the first and each
// reconnection, as the broker accepted it: the moment a persistent
// session's queued messages start to arrive, before the first of them is
// handed on. Call it before Run; f must not block. Each call adds one.
func (s *Source) OnConnect(f func()) { s.connected = append(s.connected, f) }

// Ready reports whether the source is connected and the broker accepted its
// subscriptions, for readiness checks.
func (s *Source) Ready() bool { return s.ready.Load() }

// Run connects (retrying while the broker is unreachable), subscribes, and
// hands every message to h until ctx is cancelled. It then stops taking
// messages, lets in-flight handlers finish (their context stays alive for
// up to 10 s more), disconnects cleanly, keeping the persistent session,
// and returns nil.
//
// Messages the handler refuses stay unacknowledged. The broker redelivers
// unacknowledged messages only when the client reconnects, so after a
// refusal Run restarts the session, after a backoff that grows to
// Config.ReconnectMax while refusals continue.
//
// Run must not be called again while it runs: one client id is one session.
func (s *Source) Run(ctx context.Context, h gateway.Handler) error {
	if h == nil {
		return fmt.Errorf("mqtt source %q: Run without a handler", s.cfg.Name)
	}
	if !s.running.CompareAndSwap(false, true) {
		return fmt.Errorf("mqtt source %q: already running: one client id can have one session only", s.cfg.Name)
	}
	defer s.running.Store(false)

	backoff := redeliverMin
	for {
		sess := s.start(ctx, h)
		select {
		case <-ctx.Done():
			sess.stop()
			return nil
		case <-sess.refused:
		}
		// Keep handling other messages while waiting, so a short sink
		// outage costs one reconnect, not one per message.
		s.log.Info().Stringer("after", backoff).Msg("the pipeline refused messages; restarting the session so the broker redelivers them")
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			sess.stop()
			return nil
		case <-t.C:
		}
		sess.stop()
		backoff = min(2*backoff, s.cfg.ReconnectMax)
		if sess.clean.Load() {
			backoff = redeliverMin // the refusals were followed by successes
		}
	}
}

// start connects a new client; the returned session handles messages until
// stop.
func (s *Source) start(ctx context.Context, h gateway.Handler) *session {
	hctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	n := s.cfg.MaxInFlight
	sess := &session{
		src:     s,
		h:       h,
		ctx:     hctx,
		cancel:  func() { cancel(errStopped) },
		ready:   make(chan delivery, n),
		done:    make([]bool, n),
		free:    make(chan struct{}, 1),
		lanes:   make(map[string][]delivery),
		closing: make(chan struct{}),
		refused: make(chan struct{}, 1),
	}
	sess.gate.Store(newGate(len(s.connected) == 0))
	// As many workers as the window: every message taken can be in a
	// handler at once, which is what fills the spool's group commits.
	sess.wg.Add(n)
	for range n {
		go sess.work()
	}
	sess.client = paho.NewClient(s.clientOptions(sess))
	// With ConnectRetry the token completes only once connected (or on
	// Disconnect); OnConnect subscribes, so there is nothing to wait for.
	sess.client.Connect()
	return sess
}

// orderKey is the part of topic that names the device: through the
// segment after "device" (ChirpStack) or "devices" (The Things Stack), so
// a device's up and up/normalized messages share it; else the whole
// topic (a sensor's own topic). Messages with the same key are handled in
// order. "" means no order is needed or knowable: gateway-bridge frames
// (gateway/lorawan checks frame counters and merges copies itself) and
// JSON feeds whose device id is in the message.
func (s *Source) orderKey(topic string) string {
	if s.unordered {
		return ""
	}
	rest := topic
	for {
		seg, after, more := strings.Cut(rest, "/")
		if !more {
			return topic
		}
		if seg == "device" || seg == "devices" {
			dev, _, _ := strings.Cut(after, "/")
			return topic[:len(topic)-len(after)+len(dev)]
		}
		rest = after
	}
}

// clientOptions are paho's settings for the delivery contract (ARCHITECTURE §6):
// persistent session under a stable client id, manual acknowledgement,
// reconnection with capped backoff.
//
// OrderMatters(true) makes paho call onMessage on its one dispatch
// goroutine, in the order messages arrived, and wait for it: that is what
// lets onMessage apply backpressure. With false, paho starts a goroutine
// per message and keeps reading the connection, so a broker that sends a
// persistent session's queue faster than it is handled fills memory with
// messages and goroutines (Mosquitto 2.0.11 draining a 100k backlog with
// max_inflight_messages 100: 15,000 to 40,000 goroutines, 400 MB RSS).
// Acknowledgements do not pass through the dispatch goroutine, so blocking
// it does not hold them up. SetMessageChannelDepth has no effect since
// paho 1.3 and MaxResumePubInFlight concerns our own publishes; neither
// bounds what is received.
func (s *Source) clientOptions(sess *session) *paho.ClientOptions {
	c := s.cfg
	o := paho.NewClientOptions().
		AddBroker(c.Broker).
		SetClientID(c.ClientID).
		SetProtocolVersion(4). // MQTT 3.1.1; no silent fallback to 3.1
		SetCleanSession(c.Clean).
		SetAutoAckDisabled(true).
		SetOrderMatters(true). // see above
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(min(connectRetryMax, c.ReconnectMax)).
		SetMaxReconnectInterval(c.ReconnectMax).
		SetConnectTimeout(connectTimeout).
		SetKeepAlive(keepAlive).
		SetResumeSubs(false). // OnConnect subscribes on every connection
		// Queued messages of a persistent session arrive right after
		// CONNACK, before SUBSCRIBE is answered; the default handler
		// takes them, and subscriptions register no handler of their own.
		SetDefaultPublishHandler(sess.onMessage).
		SetOnConnectHandler(sess.onConnect).
		SetConnectionLostHandler(sess.onLost).
		SetConnectionNotificationHandler(sess.onNotification)
	if s.tls != nil {
		o.SetTLSConfig(s.tls)
	}
	if u, err := url.Parse(c.Broker); err == nil && u.Scheme != "ws" && u.Scheme != "wss" {
		o.SetCustomOpenConnectionFn(openBuffered)
	}
	if *c.QoS < 2 {
		o.SetStore(nopStore{})
	}
	if c.Username != "" {
		o.SetUsername(c.Username)
	}
	if c.Password != "" {
		o.SetPassword(c.Password)
	}
	return o
}

// errStopped is why an in-flight handler's context ends when it did not
// finish within drainTimeout of shutdown.
var errStopped = errors.New("mqtt: source stopped")
