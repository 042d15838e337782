package redecode

import (
	"encoding/json"
	"slices"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

// maxDiffFields bounds the fields a device's diff follows: a codec that
// invents keys per uplink must not grow the report without end.
const maxDiffFields = 256

// DeviceDiff is what a re-decode would change of one device's points.
type DeviceDiff struct {
	DevEUI  string `json:"dev_eui"`
	Uplinks int    `json:"uplinks"`
	// PointsBefore and PointsAfter count decoder points in the range now
	// and after; PointsChanged those added, removed or with any field
	// changed (a point is a measurement, channel and time).
	PointsBefore  int `json:"points_before"`
	PointsAfter   int `json:"points_after"`
	PointsChanged int `json:"points_changed"`
	// FieldsAdded and FieldsRemoved are "measurement.field" names the
	// new decoder writes and the old did not, and the other way round.
	FieldsAdded   []string `json:"fields_added,omitempty"`
	FieldsRemoved []string `json:"fields_removed,omitempty"`
	// Ranges are each numeric field's values before and after.
	Ranges []FieldRange `json:"ranges,omitempty"`
	// Truncated: more fields than the diff follows.
	Truncated bool `json:"truncated,omitempty"`

	old, cur map[pointKey]map[string]any // the current window's points
	fields   map[string]*FieldRange
}

// FieldRange is one field's numeric values before and after.
type FieldRange struct {
	Field  string `json:"field"`
	Before *Range `json:"before,omitempty"`
	After  *Range `json:"after,omitempty"`

	inBefore, inAfter bool // seen at all, numeric or not
}

// Range is the smallest and largest of N values.
type Range struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
	N   int     `json:"n"`
}

func (r *Range) add(v float64) {
	if r.N == 0 || v < r.Min {
		r.Min = v
	}
	if r.N == 0 || v > r.Max {
		r.Max = v
	}
	r.N++
}

type pointKey struct {
	measurement, channel string
	time                 int64
}

func newDeviceDiff(eui devices.EUI) *DeviceDiff {
	return &DeviceDiff{DevEUI: eui.String(), fields: map[string]*FieldRange{}}
}

func (d *DeviceDiff) field(name string) *FieldRange {
	if f, ok := d.fields[name]; ok {
		return f
	}
	if len(d.fields) >= maxDiffFields {
		d.Truncated = true
		return nil
	}
	f := &FieldRange{Field: name}
	d.fields[name] = f
	return f
}

// before takes the stored points of one measurement of a window.
// Status points of MeasurementDevice are not a decoder's and are left out.
func (d *DeviceDiff) before(m string, series []Series) {
	if d.old == nil {
		d.old = map[pointKey]map[string]any{}
	}
	for _, s := range series {
		marker := -1
		if m == gateway.MeasurementDevice {
			marker = slices.Index(s.Columns, gateway.StatusMarkerField)
		}
		for _, row := range s.Values {
			if marker >= 0 && marker < len(row) && row[marker] != nil {
				continue
			}
			t, ok := toInt(row[0])
			if !ok {
				continue
			}
			k := pointKey{m, s.Tags["channel"], t}
			fs := d.old[k]
			if fs == nil {
				fs = map[string]any{}
				d.old[k] = fs
				d.PointsBefore++
			}
			for i, c := range s.Columns[1:] {
				v := row[i+1]
				if v == nil {
					continue
				}
				if n, ok := v.(json.Number); ok {
					f, err := n.Float64()
					if err != nil {
						continue
					}
					v = f
				}
				fs[c] = v
				if fr := d.field(m + "." + c); fr != nil {
					fr.inBefore = true
					if f, ok := v.(float64); ok {
						if fr.Before == nil {
							fr.Before = &Range{}
						}
						fr.Before.add(f)
					}
				}
			}
		}
	}
}

// after takes the points the current decoder made of one uplink.
func (d *DeviceDiff) after(pts []gateway.Point) {
	d.Uplinks++
	if d.cur == nil {
		d.cur = map[pointKey]map[string]any{}
	}
	for _, p := range pts {
		if !gateway.DecoderOutput(p.Measurement) {
			continue
		}
		k := pointKey{p.Measurement, channel(p.Tags), p.Time.UnixNano()}
		fs := d.cur[k]
		if fs == nil {
			fs = map[string]any{}
			d.cur[k] = fs
			d.PointsAfter++
		}
		for _, f := range p.Fields {
			var v any
			switch f.Kind {
			case gateway.Float:
				v = f.F
			case gateway.Int:
				v = float64(f.I)
			case gateway.Bool:
				v = f.B
			case gateway.String:
				v = f.S
			}
			fs[f.Key] = v
			if fr := d.field(p.Measurement + "." + f.Key); fr != nil {
				fr.inAfter = true
				if x, ok := v.(float64); ok {
					if fr.After == nil {
						fr.After = &Range{}
					}
					fr.After.add(x)
				}
			}
		}
	}
}

// endWindow compares the window's points and forgets them, so a diff
// holds one window at a time.
func (d *DeviceDiff) endWindow() {
	for k, o := range d.old {
		if n, ok := d.cur[k]; !ok || !sameFields(o, n) {
			d.PointsChanged++
		}
	}
	for k := range d.cur {
		if _, ok := d.old[k]; !ok {
			d.PointsChanged++
		}
	}
	clear(d.old)
	clear(d.cur)
}

func sameFields(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// finish lists fields added and removed and the ranges, sorted.
func (d *DeviceDiff) finish() {
	names := make([]string, 0, len(d.fields))
	for n := range d.fields {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		f := d.fields[n]
		switch seenBefore, seenAfter := f.inBefore, f.inAfter; {
		case seenAfter && !seenBefore:
			d.FieldsAdded = append(d.FieldsAdded, n)
		case seenBefore && !seenAfter:
			d.FieldsRemoved = append(d.FieldsRemoved, n)
		}
		if f.Before != nil || f.After != nil {
			d.Ranges = append(d.Ranges, *f)
		}
	}
	// The report keeps the summary only, not the last window's points.
	d.old, d.cur, d.fields = nil, nil, nil
}

func channel(tags []gateway.Tag) string {
	for _, t := range tags {
		if t.Key == "channel" {
			return t.Value
		}
	}
	return ""
}
