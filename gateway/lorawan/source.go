package lorawan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
)

// Source is a Semtech UDP packet-forwarder feed: it listens where the
// gateways' serv_port_up/serv_port_down point, answers PUSH_DATA and
// PULL_DATA as the protocol asks, and hands every de-duplicated uplink to
// the handler. UDP cannot redeliver, so an uplink the handler does not
// take is lost: it is logged and counted (lorawan.uplinks_lost).
type Source struct {
	cfg      Config
	frames   *Frames
	counters *gateway.Counters
	log      zerolog.Logger
	msgLog   zerolog.Logger

	running atomic.Bool
	lis     *gateway.Listening
}

var _ gateway.Source = (*Source)(nil)

// New checks cfg, applies its defaults and returns a Source that listens
// when Run is called. devs finds sessions by DevAddr (*devices.Registry);
// dl keeps frames that cannot become uplinks; counters may be nil.
func New(cfg Config, devs DevAddrLookup, dl gateway.DeadLetters, counters *gateway.Counters, log zerolog.Logger) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	frames, err := NewFrames(cfg.Name, cfg.FrameConfig, devs, dl, counters, log)
	if err != nil {
		return nil, err
	}
	log = log.With().Str("source", cfg.Name).Logger()
	return &Source{
		cfg: cfg, frames: frames, counters: counters, log: log,
		msgLog: log.Sample(&zerolog.BurstSampler{Burst: 20, Period: time.Minute}),
		lis:    gateway.NewListening(),
	}, nil
}

// Frames returns the source's frame handler (for its counters in tests).
func (s *Source) Frames() *Frames { return s.frames }

// Ready is closed once the source listens; Addr is valid from then on.
func (s *Source) Ready() <-chan struct{} { return s.lis.Ready() }

// Addr is the address the source listens on (with the port the kernel
// chose for ":0"), nil before Ready.
func (s *Source) Addr() net.Addr { return s.lis.Addr() }

// Run listens until ctx ends, then stops reading, finishes the frames
// already received (for at most DrainTimeout) and returns nil. It returns
// an error only when it cannot listen.
func (s *Source) Run(ctx context.Context, h gateway.Handler) error {
	if err := gateway.StartRun(fmt.Sprintf("lorawan source %q", s.cfg.Name), h, &s.running); err != nil {
		return err
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("lorawan source %q: listen on %s: %w (is another process, e.g. a network server, bound to it?)", s.cfg.Name, s.cfg.Listen, err)
	}
	defer pc.Close()
	s.lis.Listen(pc.LocalAddr())
	s.log.Info().Str("listen", s.lis.Addr().String()).Msg("semtech-udp source listening")

	// Frames already received are finished after shutdown begins: their
	// gateways got a PUSH_ACK, and nothing will send them again.
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	stopRead := context.AfterFunc(ctx, func() { _ = pc.SetReadDeadline(time.Now()) })
	defer stopRead()

	var wg sync.WaitGroup
	sem := make(chan struct{}, s.cfg.MaxInFlight)
	buf := make([]byte, 65536)
	for ctx.Err() == nil {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				break
			}
			s.msgLog.Warn().Err(err).Msg("udp read failed")
			continue
		}
		frames := s.datagram(hctx, pc, from, buf[:n])
		for _, fr := range frames {
			// Frames of a datagram already acknowledged are handled even
			// when shutdown has begun, unless the pipeline is saturated.
			select {
			case sem <- struct{}{}:
			default:
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					s.count("uplinks_lost")
					continue
				}
			}
			wg.Add(1)
			go func(fr Frame) {
				defer wg.Done()
				defer func() { <-sem }()
				if err := s.frames.Handle(hctx, fr, h); err != nil {
					s.count("uplinks_lost")
					s.msgLog.Error().Err(err).Str("gateway_id", fr.Gateway.ID).Msg("uplink lost: the pipeline did not take it and UDP cannot redeliver")
				}
			}(fr)
		}
	}

	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	t := time.NewTimer(s.cfg.DrainTimeout)
	defer t.Stop()
	select {
	case <-drained:
	case <-t.C:
		s.log.Warn().Stringer("drain_timeout", s.cfg.DrainTimeout).Msg("frames still in flight at the drain timeout are given up")
		cancelHandlers()
		<-drained
	}
	return nil
}

// datagram answers one datagram and returns its frames. Frames come back
// in the copy of the datagram's bytes they were parsed from, since buf is
// reused for the next read.
func (s *Source) datagram(ctx context.Context, pc net.PacketConn, from net.Addr, b []byte) []Frame {
	p, err := parsePacket(b)
	if err != nil {
		s.count("udp_ignored")
		s.msgLog.Debug().Err(err).Str("from", from.String()).Msg("datagram ignored")
		return nil
	}
	if a := p.ack(); a != nil {
		// Acknowledged at once: the ACK tells the forwarder the network
		// path works, not that the data is stored (PROTOCOL.TXT).
		if _, err := pc.WriteTo(a, from); err != nil {
			s.msgLog.Warn().Err(err).Str("from", from.String()).Msg("udp ack not sent")
		}
	}
	switch p.id {
	case idPullData:
		s.count("udp_pull_data")
		return nil
	case idPushData:
		s.count("udp_push_data")
	default:
		s.count("udp_tx_ack")
		return nil
	}
	body := append([]byte(nil), p.body...)
	frames, crcErrors, bad, err := parsePushData(p.gateway, body)
	if crcErrors > 0 {
		s.countN("crc_errors", uint64(crcErrors))
	}
	if err != nil {
		s.malformed(ctx, body, err)
		return nil
	}
	for _, b := range bad {
		s.malformed(ctx, b.raw, b.err)
	}
	return frames
}

// malformed keeps a datagram or rxpk that is not the protocol as a dead
// letter; if even that fails, the data is lost and said so.
func (s *Source) malformed(ctx context.Context, raw []byte, err error) {
	if err := s.frames.deadLetter(ctx, Frame{Raw: raw}, nil, &gateway.Rejection{Reason: gateway.ReasonMalformed, Err: err}); err != nil {
		s.count("uplinks_lost")
		s.msgLog.Error().Err(err).Msg("malformed packet lost")
	}
}

func (s *Source) count(name string) { s.countN(name, 1) }

func (s *Source) countN(name string, n uint64) {
	if s.counters != nil {
		s.counters.Add("lorawan."+name, n)
	}
}
