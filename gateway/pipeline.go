package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unique"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/devices"
)

// ErrRejected is wrapped by a Sink whose store refused a message's points
// for good (InfluxDB 400/422: bad lines, field type conflict). Retrying
// cannot help, so the pipeline dead-letters the message instead.
var ErrRejected = errors.New("gateway: points rejected by the store")

// DeviceLookup finds registered devices; *devices.Registry implements it.
type DeviceLookup interface {
	Lookup(eui devices.EUI) (*devices.Device, bool)
	LookupName(name string) (*devices.Device, bool)
}

// DecoderLookup resolves model ids; *decoders.Registry implements it.
type DecoderLookup interface {
	Lookup(model string) (decoders.Decoder, bool)
}

// SourcePolicy is what the pipeline needs to know about a source.
type SourcePolicy struct {
	// AcceptUnknown accepts devices missing from the registry, named and
	// tagged as the network server names them.
	AcceptUnknown bool
	// Map lifts keys of a network-server decoded object (or generic JSON)
	// onto catalogue quantities.
	Map []decoders.Mapping
	// GatewayPoints adds one uplink_gateway point per receiving gateway
	// (fields rssi, snr; the uplink's tags plus gateway_id), at most
	// MaxGatewayPoints: raw frames, where sensorgate is the only place
	// that sees them all, and network-server feeds that list every
	// gateway's reception (ChirpStack rxInfo[], The Things Stack
	// rx_metadata[]).
	GatewayPoints bool
}

// Pipeline turns uplinks into points: device lookup, decoding,
// normalization, point building, then the sink. A message that cannot
// become points becomes a dead letter.
type Pipeline struct {
	Devices     DeviceLookup
	Decoders    DecoderLookup
	Sink        Sink
	DeadLetters DeadLetters
	// Sources holds each source's policy by source name; a source missing
	// here rejects unknown devices and maps nothing.
	Sources map[string]SourcePolicy
	// AllowedTags are the device tag keys copied onto points; anything else
	// stays off, since every tag value multiplies series cardinality.
	AllowedTags []string
	Log         zerolog.Logger
	Counters    *Counters
	// Now is the local clock, for feeds that carry no time (tests set it).
	Now func() time.Time
	// Observer, when set, sees every uplink Handle took, once: device
	// health and unknown-device tracking.
	Observer Observer
	// Decrypt decrypts a payload a feed forwarded still encrypted
	// (Uplink.Encrypted) with the device's AppSKey from the registry;
	// cmd injects lorawan.DecryptFRMPayload, which this package must not
	// import. Nil: such uplinks are dead-lettered.
	Decrypt func(key devices.Key, devAddr devices.DevAddr, fCnt uint32, uplink bool, payload []byte) ([]byte, error)
	// Unknown, when set, decides which unregistered devices a source that
	// accepts them may write (*devices.SeriesGuard): each is a new value
	// of InfluxDB's dev_eui and device tags. A refused uplink is a dead
	// letter (unknown_device_limit).
	Unknown UnknownGuard
	// Gateways gives gateways' configured tags for gateway points, of
	// which GatewayTags are written (like AllowedTags for devices).
	Gateways    GatewayTagger
	GatewayTags []string
	// DecodedAll names the models whose decoded_<model> point keeps every
	// value of the decoder's data, those written as catalogue quantities
	// too (schema 1). Other models' decoded_<model> holds only the values
	// no sample was read from (Sample.Key), so a value is stored once.
	DecodedAll map[string]bool

	views atomic.Pointer[viewCache] // per registered device, see view
	// Dead letters of unknown devices come one per message of a flood:
	// a few a minute are logged, all are counted.
	unknownLog, limitLog sampledLog
}

// UnknownGuard admits the uplinks of devices missing from the registry;
// the error of a refusal tells the operator what to do.
type UnknownGuard interface {
	Admit(source string, eui devices.EUI) error
}

// sampledLog logs the first few of its messages a minute.
type sampledLog struct {
	once    sync.Once
	sampler *zerolog.BurstSampler
}

func (l *sampledLog) logger(log zerolog.Logger) zerolog.Logger {
	l.once.Do(func() { l.sampler = &zerolog.BurstSampler{Burst: 10, Period: time.Minute} })
	return log.Sample(l.sampler)
}

// Clone returns a pipeline with the same configuration and an empty
// cache, for a caller that swaps a dependency for one run (dead-letter
// replay counts points and keeps failures to itself). Copying the struct
// itself would copy the cache's atomic pointer.
//
// Every exported field is copied, found by reflection, so that a field
// added to the configuration cannot be left behind by a hand-kept list
// (decoders.decoded_all once was, and re-decoding then wrote schema 2's
// decoded_<model> for a model configured to keep every value).
func (p *Pipeline) Clone() *Pipeline {
	c := &Pipeline{}
	src, dst := reflect.ValueOf(p).Elem(), reflect.ValueOf(c).Elem()
	for i := range src.NumField() {
		if src.Type().Field(i).IsExported() {
			dst.Field(i).Set(src.Field(i))
		}
	}
	return c
}

// Observer sees each uplink the pipeline took, with what the pipeline
// made of it. Uplinks that were not taken (the sink failed; the source
// will redeliver) are not observed. It is called from concurrent handlers
// on the hot path, so it must be quick and must not block; up and the
// points must not be modified or kept.
type Observer interface {
	Observe(up Uplink, seen Seen)
}

// Seen is what the pipeline learnt of an uplink it took, so observers
// need not look the device up again or read it back out of points.
type Seen struct {
	// Points are the points written; nil for a dead letter.
	Points []Point
	// Rejection is why the uplink became a dead letter; nil when written.
	Rejection *Rejection
	// EUI is the device's DevEUI: the feed's, or the registry's for a
	// feed that names devices only. Zero when no device was resolved.
	EUI devices.EUI
	// Registered is set for a device of the registry.
	Registered bool
	// Name and Model are the device and model tags the points carry
	// (empty when the uplink was refused before they were known).
	Name, Model string
	// Time is the uplink's time as its points carry it: the feed's, or
	// the local clock for a feed without one. Zero when refused before.
	Time time.Time
	// Battery (V) and BatteryLevel (%) are the top-level catalogue
	// quantities battery and batteryLevel, when the uplink carried them.
	Battery, BatteryLevel       float64
	HasBattery, HasBatteryLevel bool
}

// Rejection is why an uplink cannot become points.
type Rejection struct {
	Reason Reason
	Err    error
}

func (r *Rejection) Error() string { return string(r.Reason) + ": " + r.Err.Error() }
func (r *Rejection) Unwrap() error { return r.Err }

func reject(reason Reason, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// Handle implements Handler: nil means the uplink is durable as points or
// as a dead letter, so the source may acknowledge it.
func (p *Pipeline) Handle(ctx context.Context, up Uplink) error {
	if up.Kind != KindUplink {
		return p.handleEvent(ctx, up)
	}
	if up.GatewayCopies {
		return p.gatewayCopies(ctx, up)
	}
	p.count(cUplinks)
	// The points are built in reused memory: Write and Observe are done
	// with them when they return (gateway.Sink, Observer).
	a := arenas.Get().(*arena)
	defer a.release()
	var seen Seen
	pts, warnings, err := p.points(up, a, &seen)
	if err != nil {
		// Declared here, since errors.As puts it on the heap.
		var rej *Rejection
		if errors.As(err, &rej) {
			return p.deadLetter(ctx, up, rej, seen)
		}
		return err
	}
	for _, w := range warnings {
		p.count(cWarnings)
		p.Log.Warn().Str("source", up.Source).Str("dev_eui", up.DevEUI.String()).Str("warning", w).Msg("decoder warning")
	}
	if err := p.Sink.Write(ctx, pts); err != nil {
		if errors.Is(err, ErrRejected) {
			return p.deadLetter(ctx, up, &Rejection{Reason: ReasonRejected, Err: err}, seen)
		}
		return fmt.Errorf("store points of %s: %w", up.DevEUI, err)
	}
	p.count(cUplinksWritten)
	p.countN(cPointsWritten, uint64(len(pts)))
	if p.Observer != nil {
		seen.Points = pts
		p.Observer.Observe(up, seen)
	}
	return nil
}

// gatewayCopies writes the uplink_gateway points of receptions of an
// uplink another handler took (Uplink.GatewayCopies). The uplink itself
// was counted, observed and written where it was taken; a copy whose
// device cannot be resolved (removed meanwhile) has nothing to join and
// is dropped.
func (p *Pipeline) gatewayCopies(ctx context.Context, up Uplink) error {
	policy := p.Sources[up.Source]
	if !policy.GatewayPoints {
		return nil
	}
	dev, err := p.device(up, policy)
	if err != nil {
		var rej *Rejection
		if errors.As(err, &rej) {
			return nil
		}
		return err
	}
	gws, dropped := receptions(up.Radio.Gateways)
	if dropped > 0 && p.Counters != nil {
		p.Counters.Add("uplink_gateways_dropped", uint64(dropped))
	}
	pts := appendGatewayPoints(make([]Point, 0, len(gws)), gws, dev.tags, PointTime(up.Time), nil)
	if len(pts) == 0 {
		return nil
	}
	if err := p.Sink.Write(ctx, pts); err != nil {
		if errors.Is(err, ErrRejected) {
			p.Log.Warn().Str("source", up.Source).Str("dev_eui", up.DevEUI.String()).Err(err).Msg("uplink_gateway points of a frame's late copy refused by the store: dropped")
			return nil
		}
		return fmt.Errorf("store uplink_gateway points of %s: %w", up.DevEUI, err)
	}
	p.countN(cPointsWritten, uint64(len(pts)))
	return nil
}

func (p *Pipeline) deadLetter(ctx context.Context, up Uplink, rej *Rejection, seen Seen) error {
	log := p.Log
	switch rej.Reason {
	case ReasonUnknownDevice:
		log = p.unknownLog.logger(log)
	case ReasonUnknownDeviceLimit:
		log = p.limitLog.logger(log)
	}
	log.Warn().Str("source", up.Source).Str("topic", up.Topic).Str("dev_eui", eui(up.DevEUI)).
		Str("reason", string(rej.Reason)).Err(rej.Err).Msg("message dead-lettered")
	dl := DeadLetter{
		Time: p.now(), Source: up.Source, Topic: up.Topic, DevEUI: eui(up.DevEUI),
		Reason: rej.Reason, Detail: rej.Err.Error(), Raw: up.Raw,
	}
	if err := p.DeadLetters.Put(ctx, dl); err != nil {
		return fmt.Errorf("keep dead letter (%s): %w", rej.Reason, err)
	}
	// Counted once stored, like sensorgate_dead_letters_total: a letter
	// the store refused is redelivered, not a dead letter.
	if p.Counters != nil {
		p.Counters.Inc(deadLetterCounter(rej.Reason))
	}
	if p.Observer != nil {
		seen.Rejection = rej
		p.Observer.Observe(up, seen)
	}
	return nil
}

func eui(e devices.EUI) string {
	if e.IsZero() {
		return ""
	}
	return e.String()
}

func (p *Pipeline) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Pipeline) count(c hotCounter) { p.countN(c, 1) }

func (p *Pipeline) countN(c hotCounter, n uint64) {
	if p.Counters != nil {
		p.Counters.add(c, n)
	}
}

// deadLetterCounters are the counter names of the reasons, joined once.
var deadLetterCounters = func() map[Reason]string {
	m := map[Reason]string{}
	for _, r := range []Reason{ReasonMalformed, ReasonUnknownDevice, ReasonUnknownModel, ReasonDecode, ReasonNormalize, ReasonRejected, ReasonEncrypted, ReasonUnknownDeviceLimit} {
		m[r] = "dead_letters." + string(r)
	}
	return m
}()

func deadLetterCounter(r Reason) string {
	if name, ok := deadLetterCounters[r]; ok {
		return name
	}
	return "dead_letters." + string(r)
}

// Points builds the points of one uplink (ARCHITECTURE §5) without writing them:
// the uplink measurement, catalogue measurements and decoded_<model>. The
// error is a *Rejection when the uplink can never become points. Points
// share Tags slices with each other and with later messages of the
// device: they must not be modified.
func (p *Pipeline) Points(up Uplink) ([]Point, []string, error) {
	if up.Kind != KindUplink {
		if up.Kind == KindIgnored {
			return nil, nil, nil
		}
		if up.Time.IsZero() {
			up.Time = p.now()
		}
		pts, _, err := p.eventPoints(up)
		return pts, nil, err
	}
	var seen Seen
	return p.points(up, nil, &seen)
}

// points is Points building the points in a's memory (nil: allocated),
// filling seen as far as it got.
func (p *Pipeline) points(up Uplink, a *arena, seen *Seen) ([]Point, []string, error) {
	policy := p.Sources[up.Source]
	dev, err := p.device(up, policy)
	seen.EUI, seen.Registered, seen.Name, seen.Model = dev.eui, dev.registered, dev.name, dev.model
	if err != nil {
		return nil, nil, err
	}
	if up.Encrypted {
		if up.Payload, err = p.decrypt(up, dev.session); err != nil {
			return nil, nil, err
		}
	}
	if up.Time.IsZero() {
		up.Time, up.LocalTime = p.now(), true
	}
	if up.LocalTime {
		p.count(cLocalTime)
	}
	up.Time = PointTime(up.Time)
	seen.Time = up.Time

	var (
		rec      *decoders.Record
		data     map[string]any
		samples  []decoders.Sample
		warnings []string
	)
	switch {
	case dev.decoder != nil:
		if len(up.Payload) == 0 {
			// MAC-only uplinks (FPort 0, empty FRMPayload) carry nothing to decode.
			break
		}
		res, err := decodeSafely(dev.decoder, decoders.Input{FPort: up.FPort, Bytes: up.Payload, Time: up.Time, Variables: dev.variables, DevEUI: eui(up.DevEUI)})
		if err != nil {
			return nil, nil, &Rejection{Reason: ReasonDecode, Err: fmt.Errorf("model %s: %w", dev.model, err)}
		}
		rec, data, samples, warnings = res.Record, res.Data, res.Samples, res.Warnings
		// The points copy what they need of the record.
		defer rec.Release()
		if len(policy.Map) > 0 {
			samples = append(samples, res.ApplyMappings(policy.Map)...)
		}
	case up.Object != nil || len(up.Normalized) > 0:
		data = up.Object
		if data != nil {
			samples = decoders.ApplyMappings(data, policy.Map)
		}
		for _, m := range up.Normalized {
			s, w, err := decoders.Normalize(m)
			if err != nil {
				return nil, nil, &Rejection{Reason: ReasonNormalize, Err: err}
			}
			samples, warnings = append(samples, s...), append(warnings, w...)
		}
	}
	samples, w, err := decoders.Check(samples)
	if err != nil {
		return nil, nil, &Rejection{Reason: ReasonNormalize, Err: fmt.Errorf("model %s: %w", dev.model, err)}
	}
	warnings = append(warnings, w...)
	// A sample's own time (Cayenne LPP unix time, a normalized
	// measurement's time) dates its point; one the device's clock cannot
	// have given falls back to the uplink's, with a warning.
	warnings = append(warnings, decoders.CheckTimes(samples, up.Time)...)
	for i := range samples {
		switch s := &samples[i]; {
		case s.Value.Kind != decoders.NumberValue:
		case s.Quantity == "battery" && !seen.HasBattery:
			seen.Battery, seen.HasBattery = s.Value.Num, true
		case s.Quantity == "batteryLevel" && !seen.HasBatteryLevel:
			seen.BatteryLevel, seen.HasBatteryLevel = s.Value.Num, true
		}
	}

	tags := dev.tags
	n := 2 + len(samples) // uplink, samples (at most one point each), decoded_<model>
	var gws []GatewayRx
	if policy.GatewayPoints {
		var dropped int
		if gws, dropped = receptions(up.Radio.Gateways); dropped > 0 && p.Counters != nil {
			p.Counters.Add("uplink_gateways_dropped", uint64(dropped))
		}
		n += len(gws)
	}
	pts := a.points(n)
	pts = append(pts, uplinkPoint(up, tags, receivedBy(up.Radio.Gateways, gws), a))
	pts = appendGatewayPoints(pts, gws, tags, up.Time, a)
	pts = appendSamplePoints(pts, samples, tags, up.Time, a)
	var stored []decoders.Sample // samples whose vendor value stays out of decoded_<model>
	if !p.DecodedAll[dev.model] {
		stored = samples
	}
	if fields := decodedFields(rec, data, stored, a); len(fields) > 0 {
		m := dev.decoded
		if m == "" {
			m = DecodedMeasurement(dev.model)
		}
		pts = append(pts, Point{Measurement: m, Tags: tags, Fields: fields, Time: up.Time})
	}
	return pts, warnings, nil
}

// decodedFields flattens a decoder's output into the decoded_<model>
// point's fields, sorted by key, leaving out the keys a sample of stored
// was read from: their values are in the catalogue's measurements
// already. A key a native decoder wrote twice keeps its later value, as
// it does in the decoder's data.
func decodedFields(rec *decoders.Record, data map[string]any, stored []decoders.Sample, a *arena) []Field {
	var fields []Field
	switch {
	case rec.Len() > 0:
		fields = a.fieldSlice(rec.Len())
		rec.Flat(func(k string, v decoders.Value) {
			if sampledKey(stored, k) {
				return
			}
			switch v.Kind {
			case decoders.NumberValue:
				fields = append(fields, FloatField(k, v.Num))
			case decoders.StringValue:
				fields = append(fields, StringField(k, v.Str))
			case decoders.BoolValue:
				fields = append(fields, BoolField(k, v.Bool))
			}
		})
	case len(data) > 0:
		fields = flattenData(make([]Field, 0, len(data)), "", data)
		if len(stored) > 0 {
			fields = slices.DeleteFunc(fields, func(f Field) bool { return sampledKey(stored, f.Key) })
		}
	}
	if len(fields) < 2 {
		return fields
	}
	slices.SortStableFunc(fields, byFieldKey)
	out := fields[:1]
	for _, f := range fields[1:] {
		if f.Key == out[len(out)-1].Key {
			out[len(out)-1] = f
		} else {
			out = append(out, f)
		}
	}
	return out
}

// sampledKey says whether a sample was read from the decoder's key k. A
// frame carries a handful of samples, so a scan beats building a set.
func sampledKey(samples []decoders.Sample, k string) bool {
	for i := range samples {
		if samples[i].Key == k {
			return true
		}
	}
	return false
}

func byFieldKey(a, b Field) int { return strings.Compare(a.Key, b.Key) }

func byTagKey(a, b Tag) int { return strings.Compare(a.Key, b.Key) }

// resolved is an uplink's device as the pipeline sees it.
type resolved struct {
	eui        devices.EUI // zero for a device named by a feed the registry does not know
	registered bool
	name       string
	model      string
	decoder    decoders.Decoder
	variables  map[string]string
	tags       []Tag            // sorted, the common tags of every point; shared, read only
	session    *devices.Session // the registry's LoRaWAN session, nil if none
	decoded    string           // DecodedMeasurement(model) if known already
}

func (p *Pipeline) device(up Uplink, policy SourcePolicy) (resolved, error) {
	var (
		d   *devices.Device
		ok  bool
		ref devices.Ref // with a refLookup: where the device is, for the view cache
	)
	rl, hasRefs := p.Devices.(refLookup)
	switch {
	case !up.DevEUI.IsZero() && hasRefs:
		ref, ok = rl.Ref(up.DevEUI)
		d = ref.Device
	case !up.DevEUI.IsZero():
		d, ok = p.Devices.Lookup(up.DevEUI)
	case up.DeviceName != "" && hasRefs:
		ref, ok = rl.RefName(up.DeviceName)
		d = ref.Device
	case up.DeviceName != "":
		d, ok = p.Devices.LookupName(up.DeviceName)
	default:
		return resolved{}, reject(ReasonMalformed, "message names no device")
	}
	var r resolved
	var name, euiTag string
	var devTags map[string]string
	switch {
	case ok:
		name, r.model, r.variables, devTags, r.session = d.Name, d.Model, d.Variables, d.Tags, d.Session
		r.eui, r.registered, r.name = d.EUI, true, d.Name
		if r.model != "" {
			if r.decoder, ok = p.Decoders.Lookup(r.model); !ok {
				return r, reject(ReasonUnknownModel, "device %s names model %q, which no decoder provides: fix the devices file or add a codec", name, r.model)
			}
			// The rest is the registry entry's and the source's alone.
			if v, hit := p.cachedView(ref, up.Source); hit {
				r.tags, r.decoded = v.tags, v.decoded
				return r, nil
			}
		}
		euiTag = eui(d.EUI)
	case policy.AcceptUnknown && !up.DevEUI.IsZero():
		r.eui = up.DevEUI
		if p.Unknown != nil {
			if err := p.Unknown.Admit(up.Source, up.DevEUI); err != nil {
				return r, &Rejection{Reason: ReasonUnknownDeviceLimit, Err: err}
			}
		}
		p.count(cUnknownAccepted)
		name, devTags, euiTag = up.DeviceName, up.Tags, eui(up.DevEUI)
		if name == "" {
			name = euiTag
		}
		r.name = name
	default:
		id := eui(up.DevEUI)
		if id == "" {
			id = up.DeviceName
		}
		return resolved{eui: up.DevEUI}, reject(ReasonUnknownDevice, "device %s is not in the registry and source %q rejects unknown devices: add it to the devices file", id, up.Source)
	}
	switch {
	case r.model != "":
	case up.Object != nil || len(up.Normalized) > 0:
		// Without a device profile (generic JSON), the source names the
		// kind of sensor: one JSON source is normally one sensor type.
		r.model = Slug(up.Profile)
		if r.model == "" {
			r.model = Slug(up.Source)
		}
	case up.Kind != KindUplink:
		// A network server's device event is tagged as the device's
		// decoded uplinks are, by its device profile.
		r.model = Slug(up.Profile)
	}
	r.tags = p.tags(name, euiTag, r.model, up.Source, devTags)
	if ok && d.Model != "" {
		// Kept per device: one copy per model, not per device.
		r.decoded = unique.Make(DecodedMeasurement(r.model)).Value()
		p.storeView(ref, deviceView{source: up.Source, tags: r.tags, decoded: r.decoded})
	}
	return r, nil
}

// decrypt returns the plain payload of an uplink a feed forwarded still
// encrypted. A network-server feed carries no MIC the key could be checked
// against, so a wrong AppSKey shows up as a decode error, not here.
func (p *Pipeline) decrypt(up Uplink, s *devices.Session) ([]byte, error) {
	if len(up.Payload) == 0 {
		return nil, nil
	}
	if s == nil || s.AppSKey.IsZero() {
		return nil, reject(ReasonEncrypted, "payload is encrypted and the registry holds no AppSKey for %s: add the device's session (dev_addr, keys) to the devices file, or give the network server the key so it decrypts", up.DevEUI)
	}
	if !up.HasFCnt {
		return nil, reject(ReasonEncrypted, "payload of %s is encrypted, but the message carries no frame counter to decrypt it with", up.DevEUI)
	}
	if p.Decrypt == nil {
		return nil, reject(ReasonEncrypted, "payload of %s is encrypted and this pipeline has no decrypter", up.DevEUI)
	}
	addr := up.DevAddr
	if addr == (devices.DevAddr{}) {
		addr = s.DevAddr
	}
	plain, err := p.Decrypt(s.AppSKey, addr, up.FCnt, true, up.Payload)
	if err != nil {
		return nil, &Rejection{Reason: ReasonEncrypted, Err: fmt.Errorf("decrypt the payload of %s with the registry's AppSKey: %w", up.DevEUI, err)}
	}
	p.count(cPayloadsDecrypted)
	return plain, nil
}

// reservedTags are set by the pipeline; device tags of the same key are ignored.
var reservedTags = map[string]bool{"device": true, "dev_eui": true, "model": true, "source": true, "channel": true}

func (p *Pipeline) tags(name, euiTag, model, source string, devTags map[string]string) []Tag {
	tags := make([]Tag, 0, 4+len(p.AllowedTags))
	add := func(k, v string) {
		if v != "" {
			tags = append(tags, Tag{k, v})
		}
	}
	add("device", name)
	add("dev_eui", euiTag)
	add("model", model)
	add("source", source)
	for _, k := range p.AllowedTags {
		if !reservedTags[k] {
			add(k, devTags[k])
		}
	}
	slices.SortFunc(tags, byTagKey)
	return tags
}

// decodeSafely runs a decoder, turning a panic into an error: one bad
// payload or decoder bug costs one dead letter, not the daemon.
func decodeSafely(d decoders.Decoder, in decoders.Input) (res decoders.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder panicked: %v", r)
		}
	}()
	return d.Decode(in)
}

// PointTime is the time an uplink's points are written at: the uplink's
// time cut to the millisecond (schema 2). InfluxDB stores a timestamp
// per value, and cut to the millisecond the gaps between one series'
// timestamps pack into a third of the bits they took in nanoseconds,
// which halved the disk of the benchmark's uplinks (ARCHITECTURE §11).
// One device's uplinks are never a millisecond apart (a LoRaWAN frame
// alone is on air for tens of milliseconds), so no two of them share a
// point, and a redelivery is cut to the same millisecond and overwrites.
func PointTime(t time.Time) time.Time { return t.Truncate(time.Millisecond) }

// receivedBy says whether the uplink_gateway points gws hold every
// reception of the uplink, its best one included: then the uplink point
// leaves out rssi and snr (schema 2), which would repeat the best
// reception's point.
func receivedBy(all, gws []GatewayRx) bool {
	if len(gws) == 0 {
		return false
	}
	for _, g := range all {
		if g.ID == "" {
			return false
		}
	}
	return true
}

// uplinkPoint builds the uplink measurement's point; with gatewayPoints
// the best reception's rssi and snr are left to its uplink_gateway
// point. Its fields are appended in key order, which Point requires,
// rather than sorted: this runs for every message.
func uplinkPoint(up Uplink, tags []Tag, gatewayPoints bool, a *arena) Point {
	f := a.fieldSlice(9)
	if up.Radio.DR >= 0 {
		f = append(f, IntField("dr", int64(up.Radio.DR)))
	}
	if up.HasFCnt {
		f = append(f, IntField("f_cnt", int64(up.FCnt)))
	}
	if up.HasFPort {
		f = append(f, IntField("f_port", int64(up.FPort)))
	}
	if up.Radio.Frequency > 0 {
		f = append(f, IntField("frequency", int64(up.Radio.Frequency)))
	}
	f = append(f, IntField("gateways", int64(up.Radio.GatewayCount())))
	f = append(f, StringField("payload", base64.StdEncoding.EncodeToString(up.Payload)))
	best, hasBest := up.Radio.Best()
	hasBest = hasBest && !gatewayPoints
	if hasBest {
		f = append(f, FloatField("rssi", best.RSSI))
	}
	if up.Radio.SF > 0 {
		f = append(f, IntField("sf", int64(up.Radio.SF)))
	}
	if hasBest && best.HasSNR {
		f = append(f, FloatField("snr", best.SNR))
	}
	return Point{Measurement: "uplink", Tags: tags, Fields: f, Time: up.Time}
}

// appendGatewayPoints adds an uplink_gateway point per reception (see
// receptions), at the uplink's time, so a redelivery overwrites them. The
// gateway id is a tag: gateways are few and fixed, so it does not grow
// cardinality like a counter would.
func appendGatewayPoints(pts []Point, gws []GatewayRx, tags []Tag, t time.Time, a *arena) []Point {
	for _, g := range gws {
		if g.ID == "" {
			continue
		}
		gt := appendWithTag(a.tagSlice(len(tags)+1), tags, Tag{"gateway_id", g.ID})
		f := append(a.fieldSlice(2), FloatField("rssi", g.RSSI))
		if g.HasSNR {
			f = append(f, FloatField("snr", g.SNR))
		}
		pts = append(pts, Point{Measurement: "uplink_gateway", Tags: gt, Fields: f, Time: t})
	}
	return pts
}

// appendSamplePoints groups samples into one point per measurement,
// channel and time, with one field per quantity.
//
// It runs for every uplink, so a message's sample points share one
// backing array for their fields and one for their channel tags: the
// first pass finds each sample's point and counts its fields, the second
// fills each point's window of the array.
func appendSamplePoints(pts []Point, samples []decoders.Sample, tags []Tag, t time.Time, a *arena) []Point {
	if len(samples) == 0 {
		return pts
	}
	first := len(pts)
	var (
		qBuf     [8]*decoders.Quantity
		ptBuf    [8]int
		countBuf [8]int
	)
	qs, pt, counts := qBuf[:0], ptBuf[:0], countBuf[:0] // by sample, by sample, by point
	var channelTags []Tag
	for i, s := range samples {
		q, _ := decoders.LookupQuantity(s.Quantity) // Check already vetted the path
		st := t
		if !s.Time.IsZero() {
			st = PointTime(s.Time)
		}
		j := first
		for ; j < len(pts); j++ {
			if pts[j].Measurement == q.Measurement && pts[j].Time.Equal(st) && channelOf(pts[j].Tags) == s.Channel {
				break
			}
		}
		if j == len(pts) {
			ptags := tags
			if s.Channel != "" {
				if channelTags == nil {
					channelTags = a.tagSlice((len(tags) + 1) * (len(samples) - i))
				}
				from := len(channelTags)
				channelTags = appendWithTag(channelTags, tags, Tag{"channel", s.Channel})
				ptags = channelTags[from:len(channelTags):len(channelTags)]
			}
			pts = append(pts, Point{Measurement: q.Measurement, Tags: ptags, Time: st})
			counts = append(counts, 0)
		}
		qs, pt = append(qs, q), append(pt, j-first)
		counts[j-first]++
	}
	group := pts[first:]
	fields := a.fieldSlice(len(samples))[:len(samples)]
	for k := range group {
		group[k].Fields, fields = fields[:0:counts[k]], fields[counts[k]:]
	}
	for i, s := range samples {
		p := &group[pt[i]]
		p.Fields = setField(p.Fields, sampleField(qs[i].Field, s.Value))
	}
	for _, p := range group {
		slices.SortFunc(p.Fields, byFieldKey)
	}
	slices.SortStableFunc(group, func(a, b Point) int {
		if c := strings.Compare(a.Measurement, b.Measurement); c != 0 {
			return c
		}
		if c := strings.Compare(channelOf(a.Tags), channelOf(b.Tags)); c != 0 {
			return c
		}
		return a.Time.Compare(b.Time)
	})
	return pts
}

// appendWithTag appends tags (sorted) to dst with t inserted in order.
func appendWithTag(dst, tags []Tag, t Tag) []Tag {
	i := 0
	for i < len(tags) && tags[i].Key < t.Key {
		i++
	}
	dst = append(dst, tags[:i]...)
	dst = append(dst, t)
	return append(dst, tags[i:]...)
}

// setField adds f, replacing an earlier field of the same key: when a
// decoder and a mapping both give a quantity, the later one wins.
func setField(fields []Field, f Field) []Field {
	for i := range fields {
		if fields[i].Key == f.Key {
			fields[i] = f
			return fields
		}
	}
	return append(fields, f)
}

func channelOf(tags []Tag) string {
	for _, t := range tags {
		if t.Key == "channel" {
			return t.Value
		}
	}
	return ""
}

func sampleField(key string, v decoders.Value) Field {
	switch v.Kind {
	case decoders.BoolValue:
		return BoolField(key, v.Bool)
	case decoders.StringValue:
		return StringField(key, v.Str)
	}
	return FloatField(key, v.Num) // Check let only numbers through
}

// flattenData turns a decoder's data into decoded_<model> fields: nested
// keys joined with "_", array elements by index, numbers as float so a
// field never changes type between uplinks.
func flattenData(dst []Field, prefix string, v any) []Field {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			dst = flattenData(dst, joinKey(prefix, k), e)
		}
	case []any:
		for i, e := range x {
			dst = flattenData(dst, joinKey(prefix, strconv.Itoa(i)), e)
		}
	case bool:
		dst = append(dst, BoolField(prefix, x))
	case string:
		dst = append(dst, StringField(prefix, x))
	case nil:
	default:
		if f, ok := decoders.ToFloat(x); ok {
			dst = append(dst, FloatField(prefix, f))
		} else {
			dst = append(dst, StringField(prefix, fmt.Sprint(x)))
		}
	}
	return dst
}

func joinKey(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "_" + k
}

// DecodedMeasurement is the measurement holding a model's own decoder
// data: decoded_<model id with "_" for "-">.
func DecodedMeasurement(model string) string {
	return "decoded_" + strings.ReplaceAll(model, "-", "_")
}

// Slug turns a network server's device-profile name into a model id:
// lower case, runs of anything but letters and digits become one "-".
func Slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	return b.String()
}
