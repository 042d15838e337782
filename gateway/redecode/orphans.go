package redecode

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sensorgate/sensorgate/gateway"
)

// Deleting is what makes a re-decode slow: InfluxDB 1.8 writes
// tombstones and rewrites TSM data for every DELETE, whatever it
// deletes. It is needed only for what the new points would not
// overwrite: InfluxDB replaces a point of the same measurement, tag set
// and time field by field, so an old point is left behind (orphaned)
// only when the new output has no point at its key, or lacks one of its
// fields. A window therefore reads its old decoder output (a SELECT
// costs a fraction of a DELETE), compares it with the new points, and
// deletes only the measurements where something would be orphaned.

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

// newPoints indexes the new points of a window by identity. A point
// written twice in the window counts with the fields of both.
func newPoints(pts []gateway.Point) map[string][]*gateway.Point {
	idx := make(map[string][]*gateway.Point, len(pts))
	var b []byte
	for i := range pts {
		b = identity(b[:0], pts[i].Measurement, pts[i].Tags, pts[i].Time.UnixNano())
		idx[string(b)] = append(idx[string(b)], &pts[i])
	}
	return idx
}

// overwrites reports whether the new points at a key carry field c with
// a value of v's type.
func overwrites(news []*gateway.Point, c string, v any) bool {
	for _, pt := range news {
		for _, f := range pt.Fields {
			if f.Key != c {
				continue
			}
			switch v.(type) {
			case json.Number, float64:
				return f.Kind == gateway.Float || f.Kind == gateway.Int
			case string:
				return f.Kind == gateway.String
			case bool:
				return f.Kind == gateway.Bool
			}
			return false
		}
	}
	return false
}

// oldPoints reads the window's old points of measurements ms (where
// selects the window and devices), at most as many as a window holds:
// orphaned counts a series at the bound as orphaned.
func (j *job) oldPoints(ctx context.Context, ms []string, where string) ([]Series, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	from := make([]string, len(ms))
	for i, m := range ms {
		from[i] = quoteIdent(m)
	}
	series, err := j.r.Store.Query(ctx, fmt.Sprintf(`SELECT * FROM %s%s GROUP BY * LIMIT %d SLIMIT %d`, strings.Join(from, ", "), where, j.rowLimit(), seriesLimit))
	if err != nil {
		return nil, fmt.Errorf("read their decoded points: %w", err)
	}
	return series, nil
}

// seriesLimit bounds the series of oldPoints' answer.
const seriesLimit = 20 * maxGroup

func (j *job) rowLimit() int { return 2 * j.maxChunk() }

// orphaned returns the measurements of ms where the window's old points
// (old, read by oldPoints) hold something the new points pts would not
// overwrite, or whose new fields' types InfluxDB would refuse: those
// must be deleted before the new points are written. A status point's
// status fields are not decoder output and are left alone. An answer
// at its bounds (more rows of a series, or more series, than a window
// can hold) counts as orphaned: what was not read is deleted.
func (j *job) orphaned(ms []string, old []Series, pts []gateway.Point) []string {
	if len(ms) == 0 {
		return nil
	}
	stale := map[string]bool{}
	for i := range pts {
		if slices.Contains(ms, pts[i].Measurement) && j.types.conflicts(&pts[i]) {
			stale[pts[i].Measurement] = true
		}
	}
	idx := newPoints(pts)
	var b []byte
	for _, s := range old {
		if stale[s.Name] {
			continue
		}
		if len(s.Values) >= j.rowLimit() || len(old) >= seriesLimit {
			stale[s.Name] = true
			continue
		}
		tags := sortedTags(s.Tags)
		marker := -1
		if s.Name == gateway.MeasurementDevice {
			marker = slices.Index(s.Columns, gateway.StatusMarkerField)
		}
	rows:
		for _, row := range s.Values {
			t, ok := toInt(row[0])
			if !ok {
				continue
			}
			b = identity(b[:0], s.Name, tags, t)
			news := idx[string(b)]
			status := marker > 0 && marker < len(row) && row[marker] != nil
			for i, c := range s.Columns[1:] {
				v := row[i+1]
				if v == nil || (status && slices.Contains(gateway.StatusFields, c)) {
					continue
				}
				if !overwrites(news, c, v) {
					stale[s.Name] = true
					break rows
				}
			}
		}
	}
	var out []string
	for _, m := range ms {
		if stale[m] {
			out = append(out, m)
		}
	}
	return out
}
