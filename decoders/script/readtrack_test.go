package script

import (
	"slices"
	"testing"

	"github.com/sensorgate/sensorgate/decoders"
)

// TestNormalizeNamesRepeatedKeys: a sample normalizeUplink copied from one
// decoded key names that key (Sample.Key), so decoded_<model> does not
// store the value twice; a sample that is computed, scaled, or equal to
// two keys it read, names none, and a key it did not read is never
// named, whatever its value.
func TestNormalizeNamesRepeatedKeys(t *testing.T) {
	for _, tc := range []struct {
		name, data, normalize string
		want                  map[string]string // quantity -> key
	}{
		{
			name:      "copied",
			data:      `{temp: 21.5, hum: 40, mode: 3}`,
			normalize: `return {data: {air: {temperature: d.temp, relativeHumidity: d.hum}}};`,
			want:      map[string]string{"air.temperature": "temp", "air.relativeHumidity": "hum"},
		},
		{
			name:      "nested and channel keys",
			data:      `{temperatureSensor: {"1": 21.5, "2": 19}, barometer: {"3": 1013.2}}`,
			normalize: `var t = d.temperatureSensor; for (var ch in t) { return {data: {air: {temperature: t[ch], pressure: d.barometer["3"]}}}; }`,
			want:      map[string]string{"air.temperature": "temperatureSensor_1", "air.pressure": "barometer_3"},
		},
		{
			name:      "array elements",
			data:      `{probes: [{t: 4.5}, {t: 5.5}]}`,
			normalize: `return {data: {water: {temperature: {current: d.probes[1].t}}}};`,
			want:      map[string]string{"water.temperature.current": "probes_1_t"},
		},
		{
			name:      "scaled is not a repeat",
			data:      `{pressure_pa: 101320}`,
			normalize: `return {data: {air: {pressure: d.pressure_pa / 100}}};`,
			want:      map[string]string{"air.pressure": ""},
		},
		{
			name:      "computed from two keys",
			data:      `{a: 10, b: 11.5}`,
			normalize: `return {data: {air: {temperature: d.a + d.b}}};`,
			want:      map[string]string{"air.temperature": ""},
		},
		{
			name:      "two read keys hold the value",
			data:      `{min: 20.5, max: 20.5}`,
			normalize: `return {data: {air: {temperature: d.max > d.min ? d.max : d.min}}};`,
			want:      map[string]string{"air.temperature": ""},
		},
		{
			name:      "an equal key that was not read",
			data:      `{raw: 215, setpoint: 21.5}`,
			normalize: `return {data: {air: {temperature: d.raw / 10}}};`,
			want:      map[string]string{"air.temperature": ""},
		},
		{
			name:      "booleans and strings",
			data:      `{occ: true, st: "open"}`,
			normalize: `return {data: {parking: {occupied: d.occ}}};`,
			want:      map[string]string{"parking.occupied": "occ"},
		},
		{
			name:      "frozen data still normalizes",
			data:      `Object.freeze({air: Object.freeze({t: 18})})`,
			normalize: `return {data: {air: {temperature: d.air.t}}};`,
			want:      map[string]string{"air.temperature": ""},
		},
		{
			name:      "whole object copied through JSON",
			data:      `{t: 17}`,
			normalize: `var c = JSON.parse(JSON.stringify(d)); return {data: {air: {temperature: c.t}}};`,
			want:      map[string]string{"air.temperature": "t"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "function decodeUplink(input) { return { data: " + tc.data + " }; }\n" +
				"function normalizeUplink(input) { var d = input.data; " + tc.normalize + " }\n"
			c, err := Compile(tc.name+".js", []byte(src), Options{Timeout: relaxed.Timeout})
			if err != nil {
				t.Fatal(err)
			}
			onBothRuntimes(t, c, decoders.Input{Bytes: []byte{1}}, func(t *testing.T, res decoders.Result) {
				got := map[string]string{}
				for _, s := range res.Samples {
					got[s.Quantity] = s.Key
				}
				if len(got) != len(tc.want) {
					t.Fatalf("samples %v, want %v", got, tc.want)
				}
				for q, k := range tc.want {
					if g, ok := got[q]; !ok || g != k {
						t.Errorf("%s names key %q, want %q", q, g, k)
					}
				}
			})
		})
	}
}

// TestTrackedDataBehaves: normalizeUplink sees the decoded data as it
// would unproxied: identity, Array.isArray, Object.keys, in, JSON, writes,
// a Date's methods.
func TestTrackedDataBehaves(t *testing.T) {
	src := `function decodeUplink(input) {
  return { data: { list: [1, 2], o: { a: 1 }, when: new Date(0), n: 5 } };
}
function normalizeUplink(input) {
  var d = input.data, bad = [];
  if (d.o !== d.o) bad.push("identity");
  if (!Array.isArray(d.list) || d.list.length !== 2) bad.push("array");
  if (Object.keys(d).join() !== "list,o,when,n") bad.push("keys " + Object.keys(d).join());
  if (!("a" in d.o) || d.o.hasOwnProperty("b")) bad.push("in");
  if (JSON.stringify(d.o) !== '{"a":1}') bad.push("json");
  if (d.when.getTime() !== 0) bad.push("date");
  if (d.list.map(function (x) { return x * 2; }).join() !== "2,4") bad.push("map");
  d.o.b = 2;
  if (d.o.b !== 2) bad.push("write");
  if (bad.length > 0) return { errors: bad };
  return { data: { batteryLevel: d.n } };
}
`
	c, err := Compile("behaves.js", []byte(src), Options{Timeout: relaxed.Timeout})
	if err != nil {
		t.Fatal(err)
	}
	onBothRuntimes(t, c, decoders.Input{Bytes: []byte{1}}, func(t *testing.T, res decoders.Result) {
		if len(res.Samples) != 1 || res.Samples[0].Key != "n" {
			t.Errorf("samples %+v, want batteryLevel from key n", res.Samples)
		}
	})
}

// onBothRuntimes decodes in with c on a locked runtime (checking that the
// call did run there, not on a fresh one after a failure) and then, with
// locked runtimes turned off for c, on a fresh one, and checks each result.
func onBothRuntimes(t *testing.T, c *Codec, in decoders.Input, check func(*testing.T, decoders.Result)) {
	t.Helper()
	if c.reuse == nil {
		t.Fatal("the codec cannot use locked runtimes")
	}
	primeLocked(t, c, in)
	for _, locked := range []bool{true, false} {
		if !locked {
			c.reuse.disable()
		}
		res, err := c.Decode(in)
		if err != nil {
			t.Fatalf("locked %v: %v", locked, err)
		}
		if locked {
			c.reuse.mu.Lock()
			calls, fails := c.reuse.calls, c.reuse.fails
			c.reuse.mu.Unlock()
			if calls != 1 || fails != 0 {
				t.Fatalf("the call meant for a locked runtime ran on a fresh one (%d calls, %d failed there)", calls, fails)
			}
		}
		t.Run(map[bool]string{true: "locked", false: "fresh"}[locked], func(t *testing.T) { check(t, res) })
		res.Record.Release()
	}
}

// TestReadTrackerBounded: a normalizeUplink that reads thousands of keys
// notes each once.
func TestReadTrackerBounded(t *testing.T) {
	tr := newReadTracker(nil, nil)
	for range 3 {
		for i := range 5000 {
			tr.note("k" + itoa(i%2000))
		}
	}
	if len(tr.read) != 2000 || !slices.Contains(tr.read, "k1999") {
		t.Fatalf("%d keys noted, want 2000", len(tr.read))
	}
}
