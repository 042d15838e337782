package decoders

import (
	"reflect"
	"sync"
	"testing"
)

func TestRecord(t *testing.T) {
	type flat struct {
		key string
		val any
	}
	tests := []struct {
		name  string
		write func(r *Record)
		data  map[string]any
		flat  []flat
		look  map[string]any // path -> value; nil value: absent
	}{
		{
			name:  "empty",
			write: func(r *Record) {},
			data:  map[string]any{},
			look:  map[string]any{"a": nil},
		},
		{
			name: "scalars, a null and a key written twice",
			write: func(r *Record) {
				r.Number("t", 21.5)
				r.String("mode", "eco")
				r.Bool("alarm", true)
				r.Null("gone")
				r.Number("t", 22)
			},
			data: map[string]any{"t": 22.0, "mode": "eco", "alarm": true, "gone": nil},
			flat: []flat{{"t", 21.5}, {"mode", "eco"}, {"alarm", true}, {"t", 22.0}},
			look: map[string]any{"t": 22.0, "mode": "eco", "alarm": true, "gone": nil, "x": nil},
		},
		{
			name: "nested objects, reopened by key (Cayenne's grouping by type)",
			write: func(r *Record) {
				r.Object("temperatureSensor")
				r.Number("1", 20.1)
				r.End()
				r.Object("humiditySensor")
				r.Number("1", 40)
				r.End()
				r.Object("temperatureSensor")
				r.Number("3", 27.2)
				r.Object("deeper")
				r.Bool("ok", false)
				r.End()
				r.End()
				r.Number("after", 1)
			},
			data: map[string]any{
				"temperatureSensor": map[string]any{"1": 20.1, "3": 27.2, "deeper": map[string]any{"ok": false}},
				"humiditySensor":    map[string]any{"1": 40.0},
				"after":             1.0,
			},
			flat: []flat{{"temperatureSensor_1", 20.1}, {"humiditySensor_1", 40.0}, {"temperatureSensor_3", 27.2},
				{"temperatureSensor_deeper_ok", false}, {"after", 1.0}},
			look: map[string]any{"temperatureSensor.3": 27.2, "temperatureSensor.deeper.ok": false, "humiditySensor.1": 40.0,
				"3": nil, "temperatureSensor": nil, "deeper.ok": nil, "after": 1.0},
		},
		{
			name: "arrays of values, of objects and of arrays",
			write: func(r *Record) {
				r.Array("counts")
				r.Number("", 295)
				r.Number("ignored", 294)
				r.End()
				r.Array("ids")
				r.Object("")
				r.String("OBIS_ID", "1_0_1_8_1_255")
				r.Number("value", 55.2815)
				r.End()
				r.Array("")
				r.End()
				r.End()
				r.Array("none")
				r.End()
			},
			data: map[string]any{
				"counts": []any{295.0, 294.0},
				"ids":    []any{map[string]any{"OBIS_ID": "1_0_1_8_1_255", "value": 55.2815}, []any{}},
				"none":   []any{},
			},
			flat: []flat{{"counts_0", 295.0}, {"counts_1", 294.0}, {"ids_0_OBIS_ID", "1_0_1_8_1_255"}, {"ids_0_value", 55.2815}},
			// Mappings reach into objects only, not array elements.
			look: map[string]any{"counts.0": nil, "ids.0.value": nil, "value": nil},
		},
		{
			name: "an array reopened by key appends (history records read one by one)",
			write: func(r *Record) {
				r.Number("t", 20)
				r.Array("history")
				r.Object("")
				r.Number("t", 19)
				r.End()
				r.End()
				r.Object("inner")
				r.Array("history") // another parent: another list
				r.Number("", 1)
				r.End()
				r.End()
				r.Array("history")
				r.Object("")
				r.Number("t", 18)
				r.End()
				r.Number("", 17)
				r.End()
			},
			data: map[string]any{
				"t":       20.0,
				"history": []any{map[string]any{"t": 19.0}, map[string]any{"t": 18.0}, 17.0},
				"inner":   map[string]any{"history": []any{1.0}},
			},
			flat: []flat{{"t", 20.0}, {"history_0_t", 19.0}, {"inner_history_0", 1.0}, {"history_1_t", 18.0}, {"history_2", 17.0}},
		},
		{
			name: "a key with a dot",
			write: func(r *Record) {
				r.Number("a.b", 1)
				r.Object("a")
				r.Number("c", 2)
				r.End()
			},
			data: map[string]any{"a.b": 1.0, "a": map[string]any{"c": 2.0}},
			flat: []flat{{"a.b", 1.0}, {"a_c", 2.0}},
			look: map[string]any{"a.b": 1.0, "a.c": 2.0},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRecord(2) // small: growth is exercised
			tc.write(r)
			if got := r.Map(); !reflect.DeepEqual(got, tc.data) {
				t.Errorf("Map:\n got %#v\nwant %#v", got, tc.data)
			}
			var got []flat
			r.Flat(func(k string, v Value) { got = append(got, flat{k, v.Any()}) })
			if !reflect.DeepEqual(got, tc.flat) {
				t.Errorf("Flat:\n got %v\nwant %v", got, tc.flat)
			}
			for path, want := range tc.look {
				v, ok := r.Lookup(path)
				if want == nil {
					if ok && v.Kind != Null {
						t.Errorf("Lookup(%q) = %v, want absent", path, v.Any())
					}
					continue
				}
				if !ok || v.Any() != want {
					t.Errorf("Lookup(%q) = %v, %v; want %v", path, v.Any(), ok, want)
				}
			}
		})
	}
}

// TestRecordSamplesOnce: a second mapping of the same record (the
// pipeline applies a source's map after the decoder's) must not reuse the
// buffer that holds the decoder's samples.
func TestRecordSamplesOnce(t *testing.T) {
	r := NewRecord(4)
	r.Number("a", 1)
	r.Number("b", 2)
	first := r.ApplyMappings([]Mapping{{Key: "a", Quantity: "air.temperature"}})
	second := r.ApplyMappings([]Mapping{{Key: "b", Quantity: "air.relativeHumidity"}})
	if len(first) != 1 || first[0].Value != NumberVal(1) || len(second) != 1 || second[0].Value != NumberVal(2) {
		t.Fatalf("first %v, second %v", first, second)
	}
	r.Release()
}

func TestRecordZero(t *testing.T) {
	var r Record
	r.Object("a")
	r.Number("b", 1)
	r.End()
	r.End() // one End too many is ignored
	r.Number("c", 2)
	want := map[string]any{"a": map[string]any{"b": 1.0}, "c": 2.0}
	if got := r.Map(); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestRecordNil(t *testing.T) {
	var r *Record
	if r.Len() != 0 || len(r.Map()) != 0 {
		t.Fatal("a nil record is not empty")
	}
	r.Flat(func(string, Value) { t.Fatal("a nil record has values") })
}

func TestRecordApplyMappings(t *testing.T) {
	r := NewRecord(4)
	r.Number("battery_voltage", 3.1)
	r.Object("pressure")
	r.Number("value", 101325)
	r.End()
	r.Bool("leak", true)
	r.String("mode", "eco")
	r.Null("level")
	got := r.ApplyMappings([]Mapping{
		{Key: "battery_voltage", Quantity: "battery"},
		{Key: "pressure.value", Quantity: "air.pressure", Scale: 0.01},
		{Key: "leak", Quantity: "water.leak"},
		{Key: "mode", Quantity: "air.location"},
		{Key: "level", Quantity: "level.distance"}, // null: no sample
		{Key: "absent", Quantity: "air.temperature"},
	})
	want := []Sample{
		{Quantity: "battery", Value: NumberVal(3.1), Key: "battery_voltage"},
		{Quantity: "air.pressure", Value: NumberVal(1013.25), Key: "pressure_value"},
		{Quantity: "water.leak", Value: BoolVal(true), Key: "leak"},
		{Quantity: "air.location", Value: StringVal("eco"), Key: "mode"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := NewRecord(0).ApplyMappings(nil); got != nil {
		t.Fatalf("no mapping: got %v, want nil", got)
	}
}

// BenchmarkRecordFlat measures the pipeline's side of a record: the flat
// fields of a Decentlab-shaped frame (nested objects, one key buffer).
func BenchmarkRecordFlat(b *testing.B) {
	r := NewRecord(64)
	r.Number("device_id", 1234)
	for _, k := range []string{"pm1_0", "pm2_5", "pm4", "pm10", "air_temperature", "air_humidity"} {
		r.Object(k)
		r.String("displayName", k)
		r.String("unit", "µg⋅m⁻³")
		r.Number("value", 12.5)
		r.End()
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		r.Flat(func(string, Value) { n++ })
	}
}

// TestRecordRelease checks what Release promises: what a record gave out
// (flat keys and values, maps, looked-up values) stays valid after it is
// released and reused, also by concurrent decoders (run with -race).
func TestRecordRelease(t *testing.T) {
	decode := func(ch byte, tenths int16) (map[string]any, map[string]any, Value) {
		payload := []byte{ch, 103, byte(uint16(tenths) >> 8), byte(tenths), ch, 136, 0x06, 0x76, 0x5f, 0xf2, 0x96, 0x0a, 0x00, 0x03, 0xe8}
		res, err := builtin["cayenne-lpp"].Decode(Input{FPort: 1, Bytes: payload})
		if err != nil {
			t.Error(err)
			return nil, nil, Value{}
		}
		flat := map[string]any{}
		res.Record.Flat(func(k string, v Value) { flat[k] = v.Any() })
		m := res.Record.Map()
		v, _ := res.Record.Lookup("temperatureSensor." + lppChannel(ch))
		res.Record.Release()
		return flat, m, v
	}
	flat1, map1, v1 := decode(3, 272)
	for range 10 {
		decode(200, -15) // reuses the released record
	}
	if flat1["temperatureSensor_3"] != 27.2 || flat1["gpsLocation_3_latitude"] != 42.3519 {
		t.Fatalf("flat fields changed after release: %v", flat1)
	}
	if map1["temperatureSensor"].(map[string]any)["3"] != 27.2 || v1 != NumberVal(27.2) {
		t.Fatalf("map or value changed after release: %v %v", map1, v1)
	}

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				tenths := int16(g*1000 + i)
				flat, _, _ := decode(byte(g), tenths)
				key := "temperatureSensor_" + lppChannel(byte(g))
				if want := float64(tenths) / 10; flat[key] != want {
					t.Errorf("goroutine %d: %s = %v, want %v", g, key, flat[key], want)
					return
				}
			}
		}()
	}
	wg.Wait()
}
