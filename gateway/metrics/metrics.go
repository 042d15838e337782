package metrics

import (
	"context"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/deadletter"
	"github.com/sensorgate/sensorgate/gateway/influx"
	"github.com/sensorgate/sensorgate/gateway/spool"
)

// namespace prefixes every sensorgate family.
const namespace = "sensorgate"

// Label values for what falls outside a closed set: a source name that is
// not in the config (a replay tool, a test) or a model the decoder
// registry does not know. They keep the series count bounded.
const (
	otherLabel   = "other"
	unknownModel = "unknown"
)

// Results of sensorgate_uplinks_total.
const (
	ResultWritten    = "written"     // its points are in the spool
	ResultDeadLetter = "dead_letter" // it became a dead letter
)

// Reasons are the dead-letter reasons, the closed set of the reason label.
var Reasons = []gateway.Reason{
	gateway.ReasonMalformed, gateway.ReasonUnknownDevice, gateway.ReasonUnknownModel, gateway.ReasonDecode,
	gateway.ReasonNormalize, gateway.ReasonRejected, gateway.ReasonReplay, gateway.ReasonBadMIC, gateway.ReasonEncrypted,
	gateway.ReasonUnknownDeviceLimit, gateway.ReasonDeviceMismatch, gateway.ReasonBadTime,
}

// StateTable is one in-memory table that grows with input (device health,
// unknown devices, the raw-frame dedup table…): its size, and how many
// entries it evicted to stay within its limit.
type StateTable struct {
	Name      string
	Entries   int
	Limit     int
	Evictions uint64
}

// Source is one configured source as the metrics see it.
type Source struct {
	Name string
	// Ready reports a broker connection (MQTT sources); nil for sources
	// that have none (a UDP listener), which get no connected gauge.
	Ready func() bool
}

// Options are the parts the metrics read. A nil function leaves its
// families out.
type Options struct {
	// Sources are the config's sources, in config order.
	Sources []Source
	// Spool, Influx and Counters are read at scrape time.
	Spool    func() spool.Stats
	Influx   func() influx.WriteStats
	Counters func() map[string]uint64
	// Devices counts registered and unknown devices at scrape time.
	Devices func() (registered, unknown int)
	// State lists the bounded state tables at scrape time.
	State func() []StateTable
	// Gateways lists every tracked gateway's health at scrape time.
	Gateways func() []GatewayState
	// KnownModel bounds the model label: a model it does not know is
	// counted as "unknown".
	KnownModel func(model string) bool
	// Now is the clock of the throughput window (tests set it).
	Now func() time.Time

	// DeadLetterStore is the dead-letter store's sizes and losses, read
	// at scrape time.
	DeadLetterStore func() deadletter.Stats
	// HealthSync is the exchange of device health between instances; ok
	// is false on a single instance (no families then).
	HealthSync func() (devices.HealthShareStats, bool)
	// Instance, when set (instances sharing a registry), is the instance
	// label of every family, so that one Prometheus tells the instances'
	// figures apart whatever its scrape target labels (with honor_labels
	// false Prometheus keeps it as exported_instance).
	Instance string
}

// Metrics holds the registry and the counters fed per message.
type Metrics struct {
	opt      Options
	reg      *prometheus.Registry
	sources  map[string]*sourceCounters
	other    *sourceCounters
	decode   *prometheus.CounterVec
	dead     *prometheus.CounterVec
	rate     window
	observed atomic.Uint64
	letters  atomic.Uint64 // dead letters stored, all labels
	started  time.Time
	// registerer adds the instance label, when there is one.
	registerer prometheus.Registerer
}

// sourceCounters are one source's uplink counters, resolved once so the
// Observer does no label lookup per message.
type sourceCounters struct {
	written, deadLetter prometheus.Counter
}

var _ gateway.Observer = (*Metrics)(nil)

// New builds the registry with sensorgate's families, Go runtime and
// process collectors included.
func New(opt Options) *Metrics {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	m := &Metrics{opt: opt, reg: prometheus.NewRegistry(), sources: map[string]*sourceCounters{}, started: opt.Now()}
	uplinks := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "uplinks_total",
		Help: "Uplinks the pipeline took, by source and result (written: points spooled; dead_letter: kept as a dead letter).",
	}, []string{"source", "result"})
	m.decode = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "decode_errors_total",
		Help: "Uplinks whose payload the decoder rejected, by decoder model.",
	}, []string{"model"})
	m.dead = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "dead_letters_total",
		Help: "Messages taken as dead letters, by source and reason (each is then on disk, or counted in sensorgate_dead_letters_lost_total).",
	}, []string{"source", "reason"})
	for _, s := range append(slices.Clone(opt.Sources), Source{Name: otherLabel}) {
		sc := &sourceCounters{
			written:    uplinks.WithLabelValues(s.Name, ResultWritten),
			deadLetter: uplinks.WithLabelValues(s.Name, ResultDeadLetter),
		}
		if s.Name == otherLabel {
			m.other = sc
		} else {
			m.sources[s.Name] = sc
			// Zero series from the start, so rate() and alerts see the
			// first dead letter as an increase rather than a new series.
			for _, r := range Reasons {
				m.dead.WithLabelValues(s.Name, string(r))
			}
		}
	}
	m.registerer = m.reg
	if opt.Instance != "" {
		m.registerer = prometheus.WrapRegistererWith(prometheus.Labels{"instance": opt.Instance}, m.reg)
	}
	m.registerer.MustRegister(uplinks, m.decode, m.dead, &stateCollector{m: m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry is the registry, for tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// MustRegister adds further collectors, labelled like the rest.
func (m *Metrics) MustRegister(c ...prometheus.Collector) { m.registerer.MustRegister(c...) }

// Handler serves the registry in the Prometheus text (or OpenMetrics)
// format. Errors of a collector are served as far as possible and logged
// by the scraper, not the daemon.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
		// A scrape that hangs on a slow disk must not pile up.
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

func (m *Metrics) source(name string) *sourceCounters {
	if sc, ok := m.sources[name]; ok {
		return sc
	}
	return m.other
}

// Observe implements gateway.Observer: one counter increment per uplink,
// and a label lookup only for decode errors.
func (m *Metrics) Observe(up gateway.Uplink, seen gateway.Seen) {
	if up.Kind != gateway.KindUplink {
		return // events are counted by the pipeline (sensorgate_pipeline_events_total)
	}
	sc := m.source(up.Source)
	if rej := seen.Rejection; rej == nil {
		sc.written.Inc()
	} else {
		sc.deadLetter.Inc()
		if rej.Reason == gateway.ReasonDecode {
			m.decode.WithLabelValues(m.model(seen.Model)).Inc()
		}
	}
	m.observed.Add(1)
	m.rate.add(m.opt.Now().Unix())
}

// model bounds the decode-error label to the models KnownModel knows.
func (m *Metrics) model(model string) string {
	if model == "" || (m.opt.KnownModel != nil && !m.opt.KnownModel(model)) {
		return unknownModel
	}
	return model
}

// Throughput is the status page's view of the pipeline: uplinks taken
// (written or dead-lettered) in the last minute, per second, and since
// start.
type Throughput struct {
	LastMinute uint64
	PerSecond  float64
	Total      uint64
}

// Throughput returns the uplinks of the last 60 seconds (the current
// second included). Before the daemon ran a minute the rate is over its
// uptime, so a fresh start does not show a rate a sixtieth too low.
func (m *Metrics) Throughput() Throughput {
	now := m.opt.Now()
	n := m.rate.sum(now.Unix())
	span := min(now.Sub(m.started).Seconds(), windowSeconds)
	span = max(span, 1)
	return Throughput{LastMinute: n, PerSecond: float64(n) / span, Total: m.observed.Load()}
}

// DeadLetters wraps a dead-letter store so that every letter stored is
// counted by source and reason: sources and the pipeline store letters
// through it, so letters the pipeline never sees as uplinks (a malformed
// message, lines InfluxDB refused) are counted too.
func (m *Metrics) DeadLetters(next gateway.DeadLetters) gateway.DeadLetters {
	return countingDeadLetters{next: next, m: m}
}

type countingDeadLetters struct {
	next gateway.DeadLetters
	m    *Metrics
}

func (c countingDeadLetters) Put(ctx context.Context, dl gateway.DeadLetter) error {
	if err := c.next.Put(ctx, dl); err != nil {
		return err
	}
	source := dl.Source
	if _, ok := c.m.sources[source]; !ok {
		source = otherLabel
	}
	reason := otherLabel
	for _, r := range Reasons {
		if r == dl.Reason {
			reason = string(r)
			break
		}
	}
	c.m.dead.WithLabelValues(source, reason).Inc()
	c.m.letters.Add(1)
	return nil
}

// DeadLetterCount is how many dead letters were stored through
// DeadLetters since start.
func (m *Metrics) DeadLetterCount() uint64 { return m.letters.Load() }

// windowSeconds is the throughput window.
const windowSeconds = 60

// window counts events per second over the last windowSeconds. Slots are
// reused by second modulo the window; a count landing while its slot is
// being recycled may be lost, which a display rate tolerates better than
// a lock on the message path.
type window struct {
	slots [windowSeconds]struct {
		sec atomic.Int64
		n   atomic.Uint64
	}
}

func (w *window) add(sec int64) {
	s := &w.slots[sec%windowSeconds]
	if old := s.sec.Load(); old != sec && s.sec.CompareAndSwap(old, sec) {
		s.n.Store(0)
	}
	s.n.Add(1)
}

func (w *window) sum(now int64) uint64 {
	var n uint64
	for i := range w.slots {
		s := &w.slots[i]
		if sec := s.sec.Load(); sec > now-windowSeconds && sec <= now {
			n += s.n.Load()
		}
	}
	return n
}

// GatewayState is one gateway's health for /metrics.
type GatewayState struct {
	ID string
	// LastSeen is zero for a configured gateway never heard from.
	LastSeen time.Time
	Silent   bool
}
