package redecode

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
)

// Deleting is what makes a re-decode slow: InfluxDB 1.8 writes
// tombstones and rewrites TSM data for every DELETE, whatever it
// deletes. It is needed only for what the new points do not overwrite:
// InfluxDB replaces a point of the same measurement, tag set and time
// field by field, so an old point is left behind (orphaned) only where
// the new output has no point at its key, or lacks one of its fields.
//
// A window's new points are therefore written over the old ones, and
// once they are in InfluxDB the window's fields are counted (count(*),
// a small answer, cheap next to a DELETE or reading the points): InfluxDB
// then holds the union of the old and the new points, so each field's
// count equals the new points' only when nothing old is left beside
// them. Where a count is higher — an orphan, or a live uplink's points
// that arrived meanwhile — the window is done again the safe way:
// delete, read the raw uplinks, write. A measurement found so is deleted
// up front in the job's later windows (a renamed field needs it in
// every one). Status points (MeasurementDevice with the marker field)
// are not decoder output; a window with some has its MeasurementDevice
// done the safe way, which writes them back.

// maxPending bounds the windows written and not yet checked: a check
// waits for the spool (Runner.Barrier), so windows are checked a few at
// a time, the job's first at once (to learn what needs deleting).
const maxPending = 8

// check is a window written over its old points, to be counted.
type check struct {
	where string
	w     window
	ms    []string
	// want is, per measurement and field, how many points of the window
	// the new output holds with that field.
	want map[string]map[string]int64
}

// expected counts the new points of measurements ms dated inside w per
// field, each point identity (measurement, tag set, time) once.
func expected(ms []string, pts []gateway.Point, w window) map[string]map[string]int64 {
	want := make(map[string]map[string]int64, len(ms))
	for _, m := range ms {
		want[m] = map[string]int64{}
	}
	seen := make(map[string]struct{}, len(pts))
	var b []byte
	for i := range pts {
		pt := &pts[i]
		fields := want[pt.Measurement]
		if fields == nil || pt.Time.Before(w.from) || !pt.Time.Before(w.to) {
			continue
		}
		b = identity(b[:0], pt.Measurement, pt.Tags, pt.Time.UnixNano())
		n := len(b)
		for _, f := range pt.Fields {
			b = append(append(b[:n], 0), f.Key...)
			if _, dup := seen[string(b)]; !dup {
				seen[string(b)] = struct{}{}
				fields[f.Key]++
			}
		}
	}
	return want
}

// checkLater queues c, and checks the queue when it is full or holds the
// job's first window.
func (j *job) checkLater(ctx context.Context, c check) error {
	j.pending = append(j.pending, c)
	if len(j.pending) >= maxPending || !j.checkedOnce {
		return j.checkPending(ctx)
	}
	return nil
}

// checkPending waits until the points written reached InfluxDB, counts
// each pending window, and does again the safe way those where something
// old is left.
func (j *job) checkPending(ctx context.Context) error {
	if len(j.pending) == 0 {
		return nil
	}
	j.checkedOnce = true
	if err := j.r.Barrier(ctx); err != nil {
		return err
	}
	for len(j.pending) > 0 {
		c := j.pending[0]
		stale, err := j.counted(ctx, c)
		if err != nil {
			return err
		}
		if len(stale) > 0 {
			for _, m := range stale {
				j.stale[m] = true
			}
			if err := j.redo(ctx, c, stale); err != nil {
				return err
			}
		}
		j.pending = j.pending[1:]
	}
	j.pending = nil
	return nil
}

// counted returns the measurements of c where InfluxDB holds more than
// the new points: orphans (or live points that arrived since, which the
// safe way keeps too).
func (j *job) counted(ctx context.Context, c check) ([]string, error) {
	from := make([]string, len(c.ms))
	for i, m := range c.ms {
		from[i] = quoteIdent(m)
	}
	series, err := j.r.Store.Query(ctx, `SELECT count(*) FROM `+strings.Join(from, ", ")+c.where)
	if err != nil {
		return nil, fmt.Errorf("count their decoded points between %s and %s: %w", c.w.from.Format(time.RFC3339Nano), c.w.to.Format(time.RFC3339Nano), err)
	}
	got := map[string]map[string]int64{}
	for _, s := range series {
		if got[s.Name] == nil {
			got[s.Name] = map[string]int64{}
		}
		for _, row := range s.Values {
			for i, col := range s.Columns {
				f, ok := strings.CutPrefix(col, "count_")
				if !ok || i >= len(row) {
					continue
				}
				if n, ok := toInt(row[i]); ok {
					got[s.Name][f] += n
				}
			}
		}
	}
	var stale []string
	for _, m := range c.ms {
		same := true
		if m == gateway.MeasurementDevice && got[m][gateway.StatusMarkerField] > 0 {
			same = false // status points: written back by the safe way
		}
		for f, n := range got[m] {
			same = same && n == c.want[m][f]
		}
		for f, n := range c.want[m] {
			same = same && n == got[m][f]
		}
		if !same {
			stale = append(stale, m)
		}
	}
	return stale, nil
}

// redo does window c again the safe way for measurements ms: delete
// (keeping status points), read the raw uplinks, write. Its uplinks and
// decode errors were counted the first time.
func (j *job) redo(ctx context.Context, c check, ms []string) error {
	keep, err := j.delete(ctx, ms, nil, c.where, c.w)
	if err != nil {
		return err
	}
	series, err := j.uplinks(ctx, c.where, c.w)
	if err != nil {
		return err
	}
	return j.write(ctx, keep, j.decode(series, nil), false, false)
}

// conflicts returns the measurements of ms where a new point's field
// has a type other than one InfluxDB holds for it: InfluxDB would
// refuse it next to the old points.
func (j *job) conflicts(ms []string, pts []gateway.Point) []string {
	var out []string
	for i := range pts {
		m := pts[i].Measurement
		if slices.Contains(ms, m) && !slices.Contains(out, m) && j.types.conflicts(&pts[i]) {
			out = append(out, m)
		}
	}
	return out
}

// fieldTypes are the field types InfluxDB holds per measurement, as
// SHOW FIELD KEYS names them ("float", "integer", "string", "boolean").
type fieldTypes map[string]map[string][]string

func newFieldTypes(series []Series) fieldTypes {
	out := fieldTypes{}
	for _, s := range series {
		for _, row := range s.Values {
			if len(row) < 2 {
				continue
			}
			k, ok1 := row[0].(string)
			t, ok2 := row[1].(string)
			if !ok1 || !ok2 {
				continue
			}
			if out[s.Name] == nil {
				out[s.Name] = map[string][]string{}
			}
			out[s.Name][k] = append(out[s.Name][k], t)
		}
	}
	return out
}

// conflicts reports whether a field of pts has a type other than one
// InfluxDB holds for it: such a write would be refused unless the old
// points are deleted first.
func (ft fieldTypes) conflicts(pt *gateway.Point) bool {
	known := ft[pt.Measurement]
	if known == nil {
		return false
	}
	for _, f := range pt.Fields {
		for _, t := range known[f.Key] {
			if t != kindName(f.Kind) {
				return true
			}
		}
	}
	return false
}

func kindName(k gateway.FieldKind) string {
	switch k {
	case gateway.Float:
		return "float"
	case gateway.Int:
		return "integer"
	case gateway.Bool:
		return "boolean"
	case gateway.String:
		return "string"
	}
	return ""
}

// identity is a point's identity in InfluxDB: measurement, tag set (the
// non-empty tags, sorted by key) and time.
func identity(b []byte, m string, tags []gateway.Tag, t int64) []byte {
	b = append(b, m...)
	for _, tg := range tags {
		if tg.Value == "" {
			continue
		}
		b = append(b, 0)
		b = append(b, tg.Key...)
		b = append(b, '=')
		b = append(b, tg.Value...)
	}
	b = append(b, 0, 0)
	return strconv.AppendInt(b, t, 10)
}

// sortedTags are an answer's series tags as a point's: the non-empty
// ones, sorted by key.
func sortedTags(m map[string]string) []gateway.Tag {
	tags := make([]gateway.Tag, 0, len(m))
	for k, v := range m {
		if v != "" {
			tags = append(tags, gateway.Tag{Key: k, Value: v})
		}
	}
	slices.SortFunc(tags, func(a, b gateway.Tag) int { return strings.Compare(a.Key, b.Key) })
	return tags
}
