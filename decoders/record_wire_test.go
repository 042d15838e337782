package decoders

import (
	"bytes"
	"encoding/json"
	"testing"
)

// sampleRecord writes nested objects and arrays, every kind of value, a
// key written twice and a container reopened, as decoders do.
func sampleRecord() *Record {
	r := NewRecord(0)
	r.Number("temperature", 21.5)
	r.String("status", "ok")
	r.Bool("alarm", true)
	r.Null("missing")
	r.Object("probe")
	r.Number("a", 1)
	r.Array("history")
	r.Number("", 1)
	r.Object("")
	r.String("x", "y")
	r.End()
	r.End()
	r.End()
	r.Number("temperature", 22)
	r.Object("probe")
	r.Number("b", 2)
	r.End()
	return r
}

func TestRecordWireRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  *Record
	}{
		{"empty", NewRecord(0)},
		{"nil", nil},
		{"nested", sampleRecord()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wire := tc.rec.AppendWire([]byte("prefix"))
			got := NewRecord(0)
			rest, err := got.ReadWire(append(wire[len("prefix"):], "tail"...), 100)
			if err != nil {
				t.Fatal(err)
			}
			if string(rest) != "tail" {
				t.Errorf("rest %q, want the bytes after the record", rest)
			}
			want, _ := json.Marshal(tc.rec.Map())
			have, _ := json.Marshal(got.Map())
			if !bytes.Equal(want, have) {
				t.Errorf("Map after the wire %s, want %s", have, want)
			}
			var wf, hf []string
			tc.rec.Flat(func(k string, v Value) { wf = append(wf, k) })
			got.Flat(func(k string, v Value) { hf = append(hf, k) })
			if len(wf) != len(hf) {
				t.Errorf("Flat keys %v, want %v", hf, wf)
			}
		})
	}
}

// TestRecordWireRefuses: forms a sender could produce only by breaking
// the rules are refused, not read into a record Map or Flat would
// misread.
func TestRecordWireRefuses(t *testing.T) {
	valid := sampleRecord().AppendWire(nil)
	for _, tc := range []struct {
		name string
		wire []byte
		max  int
	}{
		{"empty", nil, 10},
		{"cut short", valid[:len(valid)-3], 100},
		{"more values than allowed", valid, 3},
		{"count larger than the bytes", []byte{100, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 1000},
		{"unknown kind", []byte{1, 0, 9, 0}, 10},
		{"parent not a container", []byte{2, 0, 1, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0}, 10},
		{"parent later than the value", []byte{1, 2, 0, 0}, 10},
		{"parent closed already", []byte{4, 0, 4, 1, 'a', 1, 0, 0, 0, 4, 1, 'b', 0, 1, 0, 0}, 10},
		{"bool not 0 or 1", []byte{1, 0, 3, 0, 2}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewRecord(0).ReadWire(tc.wire, tc.max); err == nil {
				t.Errorf("ReadWire accepted %v", tc.wire)
			}
		})
	}
}

// FuzzRecordWire: any bytes either fail to read or give a record whose
// own wire form reads back to the same Map.
func FuzzRecordWire(f *testing.F) {
	f.Add(sampleRecord().AppendWire(nil))
	f.Add([]byte{0})
	f.Add([]byte{2, 0, 4, 1, 'a', 1, 0, 1, 'b', 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewRecord(0)
		if _, err := r.ReadWire(b, 1000); err != nil {
			return
		}
		m1, _ := json.Marshal(r.Map())
		r.Flat(func(string, Value) {})
		again := NewRecord(0)
		if _, err := again.ReadWire(r.AppendWire(nil), 1000); err != nil {
			t.Fatalf("own wire form refused: %v", err)
		}
		m2, _ := json.Marshal(again.Map())
		if !bytes.Equal(m1, m2) {
			t.Fatalf("Map %s, after a second trip %s", m1, m2)
		}
	})
}
