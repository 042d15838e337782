package redecode

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

// Series is one series of an InfluxQL answer, with nanosecond
// timestamps in the first column and numbers as json.Number.
type Series struct {
	Name    string
	Tags    map[string]string
	Columns []string
	Values  [][]any
}

// Store is InfluxDB as a re-decode needs it: InfluxQL reads, and
// statements that delete.
type Store interface {
	Query(ctx context.Context, q string) ([]Series, error)
	Exec(ctx context.Context, stmts string) error
}

// Defaults of Runner.
const (
	DefaultMaxChunk   = 20000
	DefaultWriteBatch = 500
	// MaxDevices bounds Request.Devices: each is a term of every
	// statement's WHERE clause.
	MaxDevices = 1000
	// maxListed bounds the skipped devices, errors and dry-run diffs a
	// report lists; the rest are counted.
	maxListed = 1000
	// planBuckets is how finely a device's range is counted to cut it
	// into windows.
	planBuckets = 512
)

// ErrNoPayloads is returned when InfluxDB holds no raw uplinks to
// re-decode.
var ErrNoPayloads = errors.New("redecode: no stored uplink payloads")

// Request says what to re-decode. Until is clamped to the job's start.
type Request struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Devices, Model and Source narrow the uplinks: Model and Source are
	// the model and source tags the uplinks were stored with.
	Devices []devices.EUI `json:"devices,omitempty"`
	Model   string        `json:"model,omitempty"`
	Source  string        `json:"source,omitempty"`
	// ModelOverride decodes with this model instead of the registry's.
	ModelOverride string `json:"model_override,omitempty"`
	// DryRun writes and deletes nothing and reports the difference.
	DryRun bool `json:"dry_run,omitempty"`
}

// Check reports a request that cannot run, in words for the operator.
func (r Request) Check() error {
	switch {
	case r.Since.IsZero() || r.Until.IsZero():
		return errors.New("redecode: --since and --until are required (RFC 3339, or a duration back from now such as 720h)")
	case !r.Since.Before(r.Until):
		return fmt.Errorf("redecode: --since %s is not before --until %s", r.Since.Format(time.RFC3339Nano), r.Until.Format(time.RFC3339Nano))
	case len(r.Devices) > MaxDevices:
		return fmt.Errorf("redecode: %d devices named; at most %d per job (use --model or --source, or several jobs)", len(r.Devices), MaxDevices)
	case len(r.Devices) > 0 && (r.Model != "" || r.Source != ""):
		return errors.New("redecode: name devices, or a model, or a source, not several")
	case r.Model != "" && r.Source != "":
		return errors.New("redecode: name devices, or a model, or a source, not several")
	}
	return nil
}

// Progress is a running job's counts.
type Progress struct {
	Devices     int   `json:"devices"`      // devices with stored uplinks in the range
	DevicesDone int   `json:"devices_done"` // processed or skipped
	Uplinks     int64 `json:"uplinks"`      // stored uplinks in the range to decode again (skipped devices' not counted)
	UplinksDone int64 `json:"uplinks_done"`
	// PointsWritten are the points spooled (dry run: that would be).
	PointsWritten int64 `json:"points_written"`
	// DecodeErrors are uplinks the current decoder refuses; Malformed
	// stored uplinks whose payload is not base64. Neither gets points.
	DecodeErrors int64 `json:"decode_errors"`
	Malformed    int64 `json:"malformed"`
	// Skipped counts devices left alone (Report.Skipped says why).
	Skipped int `json:"skipped"`
}

// Report is what a job did.
type Report struct {
	Since    time.Time    `json:"since"`
	Until    time.Time    `json:"until"` // clamped to the job's start
	DryRun   bool         `json:"dry_run"`
	Progress Progress     `json:"progress"`
	Skipped  []Skip       `json:"skipped,omitempty"`
	Errors   []string     `json:"errors,omitempty"` // the first decode errors, by device
	Diffs    []DeviceDiff `json:"diffs,omitempty"`
	// Truncated says the lists stopped at their bound; the counts are whole.
	Truncated bool `json:"truncated,omitempty"`
}

// Skip is a device a job left alone, and why.
type Skip struct {
	DevEUI string `json:"dev_eui"`
	Reason string `json:"reason"`
}

// Runner runs re-decodes. Pipeline is the daemon's: a run uses a clone
// without observer or counters, so re-decoded uplinks count neither as
// heard nor as received.
type Runner struct {
	Store    Store
	Pipeline *gateway.Pipeline
	Sink     gateway.Sink
	// Barrier, when set, returns once the points spooled before the job
	// reached InfluxDB, so none of them lands after the job deleted
	// their window.
	Barrier func(ctx context.Context) error
	Log     zerolog.Logger
	Now     func() time.Time
	// MaxChunk is the most uplinks of one window (DefaultMaxChunk);
	// WriteBatch how many uplinks' points go into one spool record
	// (DefaultWriteBatch).
	MaxChunk, WriteBatch int
}

// job is one run's state.
type job struct {
	r        *Runner
	req      Request
	p        *gateway.Pipeline
	filter   string // tag conditions of every statement: " AND …"
	rep      *Report
	progress func(Progress)
	mu       sync.Mutex // guards rep.Progress for progress readers
}

// Run re-decodes req. progress, when set, is called with the counts as
// they move (from this goroutine). The report is returned with the
// error too, as far as the job got.
func (r *Runner) Run(ctx context.Context, req Request, progress func(Progress)) (*Report, error) {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	if t := now(); req.Until.After(t) {
		// Uplinks arriving while the job runs are after its start, so
		// they are the live pipeline's alone.
		req.Until = t
	}
	rep := &Report{Since: req.Since, Until: req.Until, DryRun: req.DryRun}
	if err := req.Check(); err != nil {
		return rep, err
	}
	p := r.Pipeline.Clone()
	p.Observer, p.Counters, p.Unknown = nil, nil, nil
	if req.ModelOverride != "" {
		if _, ok := p.Decoders.Lookup(req.ModelOverride); !ok {
			return rep, fmt.Errorf("redecode: --model-override %q: no decoder provides this model (sensorgate codecs list names them)", req.ModelOverride)
		}
		p.Devices = &overrideLookup{DeviceLookup: p.Devices, model: req.ModelOverride, devs: map[devices.EUI]*devices.Device{}}
	}
	j := &job{r: r, req: req, p: p, rep: rep, progress: progress}
	if req.Model != "" {
		j.filter += ` AND "model" = ` + quoteString(req.Model)
	}
	if req.Source != "" {
		j.filter += ` AND "source" = ` + quoteString(req.Source)
	}
	err := j.run(ctx)
	return rep, err
}

func (j *job) maxChunk() int {
	if j.r.MaxChunk > 0 {
		return j.r.MaxChunk
	}
	return DefaultMaxChunk
}

func (j *job) writeBatch() int {
	if j.r.WriteBatch > 0 {
		return j.r.WriteBatch
	}
	return DefaultWriteBatch
}

func (j *job) update(f func(p *Progress)) {
	j.mu.Lock()
	f(&j.rep.Progress)
	p := j.rep.Progress
	j.mu.Unlock()
	if j.progress != nil {
		j.progress(p)
	}
}

func (j *job) timeRange(from, to time.Time) string {
	return fmt.Sprintf("time >= %d AND time < %d", from.UnixNano(), to.UnixNano())
}

func (j *job) run(ctx context.Context) error {
	keys, err := j.r.Store.Query(ctx, `SHOW FIELD KEYS FROM "uplink"`)
	if err != nil {
		return fmt.Errorf("redecode: list the uplink measurement's fields: %w", err)
	}
	if !hasField(keys, "payload") {
		return fmt.Errorf("%w: InfluxDB has no uplink measurement with a payload field, so there is nothing to decode again; raw payloads are stored with every uplink since sensorgate 1.0 (uplink.payload), and uplinks received before were not kept: %s", ErrNoPayloads, "backfill them from the network server instead")
	}
	counts, err := j.counts(ctx)
	if err != nil {
		return fmt.Errorf("redecode: count the stored uplinks: %w", err)
	}
	var total int64
	for _, c := range counts {
		total += c.n
	}
	if total == 0 {
		return fmt.Errorf("%w between %s and %s%s: check --since, --until and the filters (uplink.payload holds what can be decoded again)", ErrNoPayloads,
			j.req.Since.Format(time.RFC3339), j.req.Until.Format(time.RFC3339), j.describeFilter())
	}
	j.update(func(p *Progress) { p.Devices, p.Uplinks = len(counts), total })
	if !j.req.DryRun && j.r.Barrier != nil {
		if err := j.r.Barrier(ctx); err != nil {
			return fmt.Errorf("redecode: %w", err)
		}
	}
	var todo []deviceCount
	for _, c := range counts {
		if reason := j.decodable(c.eui); reason != "" {
			j.skip(c.eui, reason)
			// Its uplinks are not to do: the total and the rate are of
			// the uplinks decoded again.
			j.update(func(p *Progress) { p.DevicesDone++; p.Uplinks -= c.n })
			continue
		}
		todo = append(todo, c)
	}
	for _, sc := range j.scopes(j.groups(todo)) {
		g := sc[0]
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("redecode: interrupted at device %s: %w; run the same command again to finish (re-decoding writes the same points again)", g[0].eui, err)
		}
		if err := j.scope(ctx, sc); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("redecode: interrupted at device %s: %w; run the same command again to finish (re-decoding writes the same points again)", g[0].eui, ctx.Err())
			}
			return fmt.Errorf("redecode: device %s: %w; nothing stored was lost (raw uplinks are kept): run the same command again to finish", scopeName(sc), err)
		}
	}
	// Uplinks stored after the count (dated inside the range, delivered
	// late) were decoded too: the total is what was done.
	j.update(func(p *Progress) { p.Uplinks = max(p.Uplinks, p.UplinksDone) })
	return nil
}

func (j *job) describeFilter() string {
	var parts []string
	if len(j.req.Devices) > 0 {
		parts = append(parts, fmt.Sprintf("%d named devices", len(j.req.Devices)))
	}
	if j.req.Model != "" {
		parts = append(parts, "model "+j.req.Model)
	}
	if j.req.Source != "" {
		parts = append(parts, "source "+j.req.Source)
	}
	if len(parts) == 0 {
		return ""
	}
	return " for " + strings.Join(parts, ", ")
}

// deviceCount is a device and its stored uplinks in the range.
type deviceCount struct {
	eui devices.EUI
	n   int64
}

// counts is every device with stored uplinks in the range that match the
// request, in DevEUI order, from one query.
func (j *job) counts(ctx context.Context) ([]deviceCount, error) {
	cond := j.filter
	if len(j.req.Devices) > 0 {
		cond += " AND " + euiCond(j.req.Devices)
	}
	series, err := j.r.Store.Query(ctx, `SELECT count("payload") FROM "uplink" WHERE `+j.timeRange(j.req.Since, j.req.Until)+cond+` GROUP BY "dev_eui"`)
	if err != nil {
		return nil, err
	}
	var out []deviceCount
	for _, s := range series {
		e, err := devices.ParseEUI(s.Tags["dev_eui"])
		if err != nil {
			continue // not a DevEUI sensorgate wrote; nothing to decode
		}
		var n int64
		for _, row := range s.Values {
			if len(row) > 1 {
				c, _ := toInt(row[1])
				n += c
			}
		}
		if n > 0 {
			out = append(out, deviceCount{e, n})
		}
	}
	slices.SortFunc(out, func(a, b deviceCount) int { return strings.Compare(a.eui.String(), b.eui.String()) })
	return slices.CompactFunc(out, func(a, b deviceCount) bool { return a.eui == b.eui }), nil
}

// maxGroup bounds the devices of one group: each is a term of its
// statements' tag condition.
const maxGroup = 500

// groups packs devices into groups of at most MaxChunk uplinks: InfluxDB
// 1.8 takes about as long for a DELETE of one device as of hundreds, so
// a fleet of devices with few uplinks each is deleted and read a group at
// a time. A device with more than MaxChunk is a group of its own, cut
// into windows.
func (j *job) groups(counts []deviceCount) [][]deviceCount {
	limit := int64(j.maxChunk())
	var out [][]deviceCount
	var cur []deviceCount
	var n int64
	for _, c := range counts {
		if len(cur) > 0 && (n+c.n > limit || len(cur) == maxGroup) {
			out, cur, n = append(out, cur), nil, 0
		}
		cur, n = append(cur, c), n+c.n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// euiCond is the tag condition selecting devices.
func euiCond(euis []devices.EUI) string {
	if len(euis) == 1 {
		return `"dev_eui" = '` + euis[0].String() + `'`
	}
	parts := make([]string, len(euis))
	for i, e := range euis {
		parts[i] = e.String()
	}
	return `"dev_eui" =~ /^(` + strings.Join(parts, "|") + `)$/`
}

// decodedMeasurements lists the measurements holding decoder output of
// the devices sel selects.
func (j *job) decodedMeasurements(ctx context.Context, sel string) ([]string, error) {
	ms, err := j.r.Store.Query(ctx, `SHOW MEASUREMENTS WHERE `+sel)
	if err != nil {
		return nil, fmt.Errorf("list their measurements: %w", err)
	}
	var decoded []string
	for _, s := range ms {
		for _, row := range s.Values {
			if m, ok := row[0].(string); ok && gateway.DecoderOutput(m) {
				decoded = append(decoded, m)
			}
		}
	}
	return decoded, nil
}

// scopes packs groups into scopes: the groups of a scope have their
// decoder output deleted by one request, and are then read and written
// a group at a time. InfluxDB 1.8 spends about a quarter of a second on
// every DELETE statement before it deletes anything (0.26 s for 200
// devices' points, 0.32 s for 10, 0.9 s for 1,000, on this project's
// benchmark machine), so a fleet of small devices is deleted in few,
// large statements. A device cut into windows is a scope of its own
// (deleted window by window), and so is every group of a dry run; a
// scope names at most MaxDevices devices (the length of the statements'
// tag condition).
func (j *job) scopes(groups [][]deviceCount) [][][]deviceCount {
	var out [][][]deviceCount
	var cur [][]deviceCount
	n := 0
	for _, g := range groups {
		alone := j.req.DryRun || (len(g) == 1 && g[0].n > int64(j.maxChunk()))
		if len(cur) > 0 && (alone || n+len(g) > MaxDevices) {
			out, cur, n = append(out, cur), nil, 0
		}
		cur, n = append(cur, g), n+len(g)
		if alone {
			out, cur, n = append(out, cur), nil, 0
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

func scopeName(sc [][]deviceCount) string {
	n := 0
	for _, g := range sc {
		n += len(g)
	}
	if n == 1 {
		return sc[0][0].eui.String()
	}
	return fmt.Sprintf("%s (or one of the %d devices after it)", sc[0][0].eui, n-1)
}

// scope re-decodes a scope of groups over the range: one delete for
// all their decoder output (keeping status points), then, a group at a
// time, read their raw uplinks and write the new points. Every read
// follows the delete, so an uplink stored meanwhile is read, or its
// points were written by the live pipeline after the delete. A scope
// with more status points than a window holds goes a group at a time.
func (j *job) scope(ctx context.Context, sc [][]deviceCount) error {
	if len(sc) > 1 {
		done, err := j.scopeAtOnce(ctx, sc)
		if err != nil || done {
			return err
		}
	}
	for _, g := range sc {
		if err := j.group(ctx, g); err != nil {
			return err
		}
		j.update(func(p *Progress) { p.DevicesDone += len(g) })
	}
	return nil
}

// scopeAtOnce is scope with one delete; false when the scope has too
// many status points to keep, and nothing was done.
func (j *job) scopeAtOnce(ctx context.Context, sc [][]deviceCount) (bool, error) {
	var euis []devices.EUI
	for _, g := range sc {
		for _, c := range g {
			euis = append(euis, c.eui)
		}
	}
	sel := euiCond(euis)
	decoded, err := j.decodedMeasurements(ctx, sel)
	if err != nil {
		return false, err
	}
	w := window{j.req.Since, j.req.Until}
	where := " WHERE " + j.timeRange(w.from, w.to) + j.filter + " AND " + sel
	if slices.Contains(decoded, gateway.MeasurementDevice) {
		series, err := j.r.Store.Query(ctx, `SELECT count(`+quoteIdent(gateway.StatusMarkerField)+`) FROM `+quoteIdent(gateway.MeasurementDevice)+where)
		if err != nil {
			return false, fmt.Errorf("count their status points: %w", err)
		}
		var n int64
		for _, s := range series {
			for _, row := range s.Values {
				if len(row) > 1 {
					c, _ := toInt(row[1])
					n += c
				}
			}
		}
		if n > int64(j.maxChunk()) {
			return false, nil
		}
	}
	keep, err := j.deleteDecoded(ctx, decoded, where, w)
	if err != nil {
		return false, err
	}
	if err := j.spoolStatus(ctx, keep); err != nil {
		return false, err
	}
	for _, g := range sc {
		ge := make([]devices.EUI, len(g))
		for i, c := range g {
			ge[i] = c.eui
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if err := j.rewrite(ctx, " WHERE "+j.timeRange(w.from, w.to)+j.filter+" AND "+euiCond(ge), w, nil); err != nil {
			return false, err
		}
		j.update(func(p *Progress) { p.DevicesDone += len(g) })
	}
	return true, nil
}

// group re-decodes one group of devices over the range.
func (j *job) group(ctx context.Context, g []deviceCount) error {
	euis := make([]devices.EUI, len(g))
	for i, c := range g {
		euis[i] = c.eui
	}
	sel := euiCond(euis)
	cond := j.filter + " AND " + sel
	decoded, err := j.decodedMeasurements(ctx, sel)
	if err != nil {
		return err
	}
	windows := []window{{j.req.Since, j.req.Until}}
	if len(g) == 1 && g[0].n > int64(j.maxChunk()) {
		if windows, err = j.plan(ctx, cond, j.req.Since, j.req.Until); err != nil {
			return fmt.Errorf("count its uplinks: %w", err)
		}
	}
	var diffs map[devices.EUI]*DeviceDiff
	if j.req.DryRun {
		diffs = make(map[devices.EUI]*DeviceDiff, len(g))
		for _, e := range euis {
			diffs[e] = newDeviceDiff(e)
		}
	}
	for _, w := range windows {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := j.window(ctx, cond, decoded, w, diffs); err != nil {
			return err
		}
	}
	for _, e := range euis {
		d := diffs[e]
		if d == nil || d.Uplinks == 0 {
			continue
		}
		d.finish()
		j.mu.Lock()
		if len(j.rep.Diffs) < maxListed {
			j.rep.Diffs = append(j.rep.Diffs, *d)
		} else {
			j.rep.Truncated = true
		}
		j.mu.Unlock()
	}
	return nil
}

// decodable says why a device's stored uplinks cannot be decoded again
// ("" when they can): its points came from the network server's decoder,
// or its model has no decoder.
func (j *job) decodable(eui devices.EUI) string {
	d, ok := j.p.Devices.Lookup(eui)
	switch {
	case !ok:
		return "not in the registry: its decoded points came from the network server's decoder, which sensorgate cannot run again; register it with a model, or use --model-override"
	case d.Model == "":
		return "the registry names no model: its decoded points came from the network server's decoder; give it a model, or use --model-override"
	}
	if _, ok := j.p.Decoders.Lookup(d.Model); !ok {
		return fmt.Sprintf("model %q has no decoder: add its codec or fix the registry", d.Model)
	}
	return ""
}

func (j *job) skip(eui devices.EUI, reason string) {
	j.mu.Lock()
	if len(j.rep.Skipped) < maxListed {
		j.rep.Skipped = append(j.rep.Skipped, Skip{DevEUI: eui.String(), Reason: reason})
	} else {
		j.rep.Truncated = true
	}
	j.mu.Unlock()
	j.update(func(p *Progress) { p.Skipped++ })
	j.r.Log.Info().Str("dev_eui", eui.String()).Str("reason", reason).Msg("redecode: device skipped")
}

type window struct{ from, to time.Time }

// plan cuts [from, to) into windows of at most MaxChunk uplinks, from
// counts per bucket; a bucket with more is counted again, finer. A
// window is at least a microsecond: more uplinks than MaxChunk of one
// device within one is not a radio device.
func (j *job) plan(ctx context.Context, cond string, from, to time.Time) ([]window, error) {
	span := to.Sub(from)
	bucket := max(span/planBuckets, time.Microsecond).Truncate(time.Microsecond)
	q := fmt.Sprintf(`SELECT count("payload") FROM "uplink" WHERE %s%s GROUP BY time(%du) fill(none)`, j.timeRange(from, to), cond, bucket.Microseconds())
	series, err := j.r.Store.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	type bin struct {
		at time.Time
		n  int64
	}
	var bins []bin
	for _, s := range series {
		for _, row := range s.Values {
			if len(row) < 2 {
				continue
			}
			t, ok1 := toInt(row[0])
			n, ok2 := toInt(row[1])
			if ok1 && ok2 && n > 0 {
				bins = append(bins, bin{time.Unix(0, t), n})
			}
		}
	}
	slices.SortFunc(bins, func(a, b bin) int { return a.at.Compare(b.at) })
	limit := int64(j.maxChunk())
	var out []window
	var cur window
	var curN int64
	flush := func() {
		if curN > 0 {
			out = append(out, cur)
		}
		curN = 0
	}
	for _, b := range bins {
		bf, bt := b.at, b.at.Add(bucket)
		if bf.Before(from) {
			bf = from
		}
		if bt.After(to) {
			bt = to
		}
		if b.n > limit {
			flush()
			if bucket <= time.Microsecond {
				return nil, fmt.Errorf("%d uplinks within %s of %s: more than --max-chunk %d in one microsecond is not a radio device; exclude it", b.n, bucket, bf.Format(time.RFC3339Nano), limit)
			}
			sub, err := j.plan(ctx, cond, bf, bt)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		if curN > 0 && curN+b.n > limit {
			flush()
		}
		if curN == 0 {
			cur.from = bf
		}
		cur.to, curN = bt, curN+b.n
	}
	flush()
	// The windows tile the range, so every point of it is deleted once:
	// gaps between counted buckets join the window before them.
	for i := range out {
		if i == 0 {
			out[i].from = from
		}
		if i+1 < len(out) {
			out[i].to = out[i+1].from
		} else {
			out[i].to = to
		}
	}
	return out, nil
}

// window re-decodes one window of a group of devices: keep their status
// points, delete their decoder output, read their raw uplinks, write the
// new points (and the status points again). A dry run (diffs set) reads
// the decoder output instead of deleting it.
func (j *job) window(ctx context.Context, cond string, decoded []string, w window, diffs map[devices.EUI]*DeviceDiff) error {
	where := " WHERE " + j.timeRange(w.from, w.to) + cond
	switch {
	case diffs != nil:
		for _, m := range decoded {
			series, err := j.r.Store.Query(ctx, `SELECT * FROM `+quoteIdent(m)+where+` GROUP BY *`)
			if err != nil {
				return fmt.Errorf("read their %s points: %w", m, err)
			}
			for _, s := range series {
				if e, err := devices.ParseEUI(s.Tags["dev_eui"]); err == nil && diffs[e] != nil {
					diffs[e].before(m, []Series{s})
				}
			}
		}
	default:
		keep, err := j.deleteDecoded(ctx, decoded, where, w)
		if err != nil {
			return err
		}
		if err := j.spoolStatus(ctx, keep); err != nil {
			return err
		}
	}
	return j.rewrite(ctx, where, w, diffs)
}

// spoolStatus writes the status points a delete took back at once, so
// they are InfluxDB's again whatever stops the job after the delete.
func (j *job) spoolStatus(ctx context.Context, keep []gateway.Point) error {
	if len(keep) == 0 {
		return nil
	}
	if err := j.r.Sink.Write(ctx, keep); err != nil {
		return fmt.Errorf("spool their status points again: %w", err)
	}
	return nil
}

// deleteDecoded deletes the decoder output (measurements decoded) that
// where selects, returning the status points among it, read first, to
// be written back.
func (j *job) deleteDecoded(ctx context.Context, decoded []string, where string, w window) ([]gateway.Point, error) {
	if len(decoded) == 0 {
		return nil, nil
	}
	var keep []gateway.Point
	if slices.Contains(decoded, gateway.MeasurementDevice) {
		var err error
		if keep, err = j.statusPoints(ctx, where); err != nil {
			return nil, err
		}
	}
	stmts := make([]string, len(decoded))
	for i, m := range decoded {
		stmts[i] = `DELETE FROM ` + quoteIdent(m) + where
	}
	if err := j.r.Store.Exec(ctx, strings.Join(stmts, "; ")); err != nil {
		return nil, fmt.Errorf("delete its decoded points between %s and %s: %w", w.from.Format(time.RFC3339Nano), w.to.Format(time.RFC3339Nano), err)
	}
	return keep, nil
}

// rewrite reads the stored raw uplinks where selects, after their
// decoder output was deleted (or, dry, read), decodes them and writes the
// new points.
func (j *job) rewrite(ctx context.Context, where string, w window, diffs map[devices.EUI]*DeviceDiff) error {
	dry := diffs != nil
	// Read after the delete: an uplink stored meanwhile is read here, or
	// its points were written by the live pipeline after the delete.
	series, err := j.r.Store.Query(ctx, `SELECT "f_port", "payload" FROM "uplink"`+where+` GROUP BY "dev_eui", "source" LIMIT `+strconv.Itoa(2*j.maxChunk()))
	if err != nil {
		return fmt.Errorf("read its stored uplinks: %w", err)
	}
	var pts []gateway.Point
	var uplinks, written int64
	batch := 0
	flush := func() error {
		if len(pts) > 0 && !dry {
			if err := j.r.Sink.Write(ctx, pts); err != nil {
				return fmt.Errorf("spool the new points: %w", err)
			}
		}
		written += int64(len(pts))
		n, ups := written, uplinks
		j.update(func(p *Progress) { p.PointsWritten += n; p.UplinksDone += ups })
		written, uplinks, pts, batch = 0, 0, pts[:0], 0
		return nil
	}
	for _, s := range series {
		if len(s.Values) >= 2*j.maxChunk() {
			return fmt.Errorf("more than %d uplinks between %s and %s, where at most %d were counted a moment before: is something else writing these devices' history?", 2*j.maxChunk(), w.from.Format(time.RFC3339Nano), w.to.Format(time.RFC3339Nano), j.maxChunk())
		}
	}
	for _, s := range series {
		fi, pi := slices.Index(s.Columns, "f_port"), slices.Index(s.Columns, "payload")
		eui, err := devices.ParseEUI(s.Tags["dev_eui"])
		if err != nil {
			continue // the group's condition selected only DevEUIs
		}
		for _, row := range s.Values {
			uplinks++
			up, err := storedUplink(eui, s.Tags["source"], row, fi, pi)
			if err != nil {
				j.update(func(p *Progress) { p.Malformed++ })
				j.noteError(eui, err)
				continue
			}
			out, _, err := j.p.Points(up)
			if err != nil {
				j.update(func(p *Progress) { p.DecodeErrors++ })
				j.noteError(eui, fmt.Errorf("uplink at %s: %w", up.Time.Format(time.RFC3339Nano), err))
				continue
			}
			for _, pt := range out {
				if gateway.DecoderOutput(pt.Measurement) {
					pts = append(pts, pt)
				}
			}
			if d := diffs[eui]; d != nil {
				d.after(out)
			}
			if batch++; batch >= j.writeBatch() {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	for _, d := range diffs {
		d.endWindow()
	}
	return nil
}

// statusPoints reads the window's status points (MeasurementDevice
// points with the marker field), which the delete takes along and which
// no decoder can make again, so they are written back with the new
// points. Only the status fields are kept: a decoder's battery reading
// at the same instant is the new decoder's to write.
func (j *job) statusPoints(ctx context.Context, where string) ([]gateway.Point, error) {
	sel := make([]string, len(gateway.StatusFields))
	for i, f := range gateway.StatusFields {
		sel[i] = quoteIdent(f)
	}
	series, err := j.r.Store.Query(ctx, `SELECT `+strings.Join(sel, ", ")+` FROM `+quoteIdent(gateway.MeasurementDevice)+where+` GROUP BY *`)
	if err != nil {
		return nil, fmt.Errorf("read its status points: %w", err)
	}
	var out []gateway.Point
	for _, s := range series {
		tags := make([]gateway.Tag, 0, len(s.Tags))
		for k, v := range s.Tags {
			if v != "" {
				tags = append(tags, gateway.Tag{Key: k, Value: v})
			}
		}
		slices.SortFunc(tags, func(a, b gateway.Tag) int { return strings.Compare(a.Key, b.Key) })
		marker := slices.Index(s.Columns, gateway.StatusMarkerField)
		for _, row := range s.Values {
			if marker < 0 || marker >= len(row) || row[marker] == nil {
				continue
			}
			t, ok := toInt(row[0])
			if !ok {
				continue
			}
			var fields []gateway.Field
			for i, c := range s.Columns[1:] {
				if f, ok := field(c, row[i+1]); ok {
					fields = append(fields, f)
				}
			}
			slices.SortFunc(fields, func(a, b gateway.Field) int { return strings.Compare(a.Key, b.Key) })
			out = append(out, gateway.Point{Measurement: gateway.MeasurementDevice, Tags: tags, Fields: fields, Time: time.Unix(0, t).UTC()})
		}
	}
	return out, nil
}

func (j *job) noteError(eui devices.EUI, err error) {
	j.r.Log.Debug().Str("dev_eui", eui.String()).Err(err).Msg("redecode: stored uplink not decoded")
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.rep.Errors) < maxListed {
		j.rep.Errors = append(j.rep.Errors, eui.String()+": "+err.Error())
	} else {
		j.rep.Truncated = true
	}
}

// storedUplink rebuilds what the decoder saw of an uplink from its
// stored point: the payload, fPort, time, device and source.
func storedUplink(eui devices.EUI, source string, row []any, fi, pi int) (gateway.Uplink, error) {
	up := gateway.Uplink{Source: source, DevEUI: eui}
	t, ok := toInt(row[0])
	if !ok {
		return up, fmt.Errorf("stored uplink without a time: %v", row[0])
	}
	up.Time = time.Unix(0, t).UTC()
	if pi < 0 || pi >= len(row) {
		return up, fmt.Errorf("stored uplink at %s without a payload", up.Time.Format(time.RFC3339Nano))
	}
	s, ok := row[pi].(string)
	if !ok {
		return up, fmt.Errorf("stored uplink at %s: payload is %T, not a base64 string", up.Time.Format(time.RFC3339Nano), row[pi])
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return up, fmt.Errorf("stored uplink at %s: payload is not base64: %w", up.Time.Format(time.RFC3339Nano), err)
	}
	up.Payload = b
	if fi >= 0 && fi < len(row) && row[fi] != nil {
		n, ok := toInt(row[fi])
		if !ok || n < 0 || n > 255 {
			return up, fmt.Errorf("stored uplink at %s: f_port %v is not 0…255", up.Time.Format(time.RFC3339Nano), row[fi])
		}
		up.FPort, up.HasFPort = uint8(n), true
	}
	return up, nil
}

// field turns an answer's value into a point field: numbers float (the
// status fields' type), booleans and strings as they are.
func field(key string, v any) (gateway.Field, bool) {
	switch x := v.(type) {
	case bool:
		return gateway.BoolField(key, x), true
	case string:
		return gateway.StringField(key, x), true
	case json.Number:
		f, err := x.Float64()
		return gateway.FloatField(key, f), err == nil
	case float64:
		return gateway.FloatField(key, x), true
	}
	return gateway.Field{}, false
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	case float64:
		return int64(x), x == float64(int64(x))
	case int64:
		return x, true
	case int:
		return int64(x), true
	}
	return 0, false
}

func hasField(series []Series, name string) bool {
	for _, s := range series {
		for _, row := range s.Values {
			if len(row) > 0 && row[0] == name {
				return true
			}
		}
	}
	return false
}

// quoteString is an InfluxQL string literal.
func quoteString(s string) string {
	return `'` + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + `'`
}

// quoteIdent is an InfluxQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// overrideLookup is the registry with every device's model replaced
// (--model-override). Its copies are kept per device, so the pipeline's
// view cache, keyed by device, stays bounded by the registry.
type overrideLookup struct {
	gateway.DeviceLookup
	model string
	mu    sync.Mutex
	devs  map[devices.EUI]*devices.Device
}

func (o *overrideLookup) Lookup(eui devices.EUI) (*devices.Device, bool) {
	d, ok := o.DeviceLookup.Lookup(eui)
	if !ok {
		return nil, false
	}
	return o.override(d), true
}

func (o *overrideLookup) LookupName(name string) (*devices.Device, bool) {
	d, ok := o.DeviceLookup.LookupName(name)
	if !ok {
		return nil, false
	}
	return o.override(d), true
}

func (o *overrideLookup) override(d *devices.Device) *devices.Device {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c, ok := o.devs[d.EUI]; ok {
		return c
	}
	c := *d
	c.Model = o.model
	o.devs[d.EUI] = &c
	return &c
}
