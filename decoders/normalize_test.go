package decoders

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestNormalize(t *testing.T) {
	ts := time.Date(2022, 8, 29, 13, 50, 15, 0, time.UTC)
	cases := []struct {
		name     string
		in       string
		want     []Sample
		warnings int
		err      error
	}{
		{"docs example", `{"time":"2022-08-29T13:50:15Z","battery":3.3,"air":{"temperature":21.5,"location":"outdoor","pressure":1032},"water":{"leak":"true","temperature":{"current":15.6}},"action":{"motion":{"detected":true}}}`,
			[]Sample{
				{Quantity: "action.motion.detected", Value: BoolVal(true), Time: ts},
				{Quantity: "air.location", Value: StringVal("outdoor"), Time: ts},
				{Quantity: "air.pressure", Value: NumberVal(1032.0), Time: ts},
				{Quantity: "air.temperature", Value: NumberVal(21.5), Time: ts},
				{Quantity: "battery", Value: NumberVal(3.3), Time: ts},
				{Quantity: "water.leak", Value: BoolVal(true), Time: ts},
				{Quantity: "water.temperature.current", Value: NumberVal(15.6), Time: ts},
			}, 0, nil},
		{"out of range drops the field only", `{"air":{"pressure":500,"relativeHumidity":101,"temperature":4},"wind":{"direction":360}}`,
			[]Sample{{Quantity: "air.temperature", Value: NumberVal(4.0)}}, 3, nil},
		{"enum outside its values", `{"air":{"location":"space"}}`, []Sample{}, 1, nil},
		{"unknown path rejects all", `{"air":{"temperature":4,"smell":1}}`, nil, 0, ErrUnknownQuantity},
		{"wrong type rejects all", `{"air":{"temperature":"warm"}}`, nil, 0, ErrWrongType},
		{"bad time", `{"time":"yesterday","air":{"temperature":4}}`, nil, 0, ErrWrongType},
		{"object where a value belongs", `{"battery":{"v":3}}`, nil, 0, ErrWrongType},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal([]byte(tc.in), &m); err != nil {
				t.Fatal(err)
			}
			got, warnings, err := Normalize(m)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 && len(tc.want) == 0 {
				got = []Sample{}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("samples\n got %+v\nwant %+v", got, tc.want)
			}
			if len(warnings) != tc.warnings {
				t.Fatalf("warnings %q, want %d", warnings, tc.warnings)
			}
		})
	}
}

func TestApplyMappings(t *testing.T) {
	data := map[string]any{"vdd": 3466, "probe": map[string]any{"t": 19.3}, "door": true, "label": "x"}
	got := ApplyMappings(data, []Mapping{
		{Key: "vdd", Quantity: "battery", Scale: 0.001},
		{Key: "probe.t", Quantity: "water.temperature.current"},
		{Key: "door", Quantity: "action.motion.detected"},
		{Key: "absent", Quantity: "air.co2"},
	})
	want := []Sample{
		{Quantity: "battery", Value: NumberVal(3.466), Key: "vdd"},
		{Quantity: "water.temperature.current", Value: NumberVal(19.3), Key: "probe_t"},
		{Quantity: "action.motion.detected", Value: BoolVal(true), Key: "door"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

// FuzzNormalize: any JSON object either normalizes into samples that fit
// the catalogue or is rejected with an error; it never panics.
func FuzzNormalize(f *testing.F) {
	f.Add(`{"air":{"temperature":21.5},"time":"2022-08-29T13:50:15Z"}`)
	f.Add(`{"water":{"leak":"true","temperature":{"min":1}}}`)
	f.Add(`{"wind":{"direction":360},"soil":{"pH":15}}`)
	f.Fuzz(func(t *testing.T, s string) {
		var m map[string]any
		if json.Unmarshal([]byte(s), &m) != nil {
			return
		}
		samples, _, err := Normalize(m)
		if err != nil {
			return
		}
		again, warnings, err := Check(append([]Sample(nil), samples...))
		if err != nil || len(warnings) > 0 || len(again) != len(samples) {
			t.Fatalf("normalized samples %+v do not pass Check: %v %v", samples, err, warnings)
		}
	})
}
