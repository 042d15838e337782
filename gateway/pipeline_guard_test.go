package gateway

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/devices"
)

// TestUnknownDeviceGuard: an accepting source writes at most the guard's
// number of unregistered devices; the others' uplinks are dead letters
// (unknown_device_limit), counted, and registered devices are unaffected.
func TestUnknownDeviceGuard(t *testing.T) {
	p, sink, dl := testPipeline(t)
	p.Unknown = devices.NewSeriesGuard(3, 1000)
	ctx := context.Background()
	for i := range 10 {
		e := devices.EUI{0xee, byte(i)}
		for range 2 { // each device twice: an admitted one stays admitted
			if err := p.Handle(ctx, Uplink{Source: "ns", DevEUI: e, DeviceName: "ns-" + e.String(), Time: t0, Object: map[string]any{"humidity": 50.0}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Handle(ctx, Uplink{Source: "strict", DevEUI: euiA, FCnt: uint32(i), HasFCnt: true, Payload: []byte{0, 0xE2}, Time: t0}); err != nil {
			t.Fatal(err)
		}
	}
	written := map[string]int{}
	for _, pt := range sink.pts {
		if pt.Measurement == "uplink" {
			for _, tg := range pt.Tags {
				if tg.Key == "dev_eui" {
					written[tg.Value]++
				}
			}
		}
	}
	if len(written) != 4 || written[euiA.String()] != 10 {
		t.Fatalf("uplinks written by device %v: want the registered one's 10 and 3 unregistered devices'", written)
	}
	if len(dl.dls) != 14 {
		t.Fatalf("%d dead letters, want 14 (7 refused devices, twice)", len(dl.dls))
	}
	for _, d := range dl.dls {
		if d.Reason != ReasonUnknownDeviceLimit || !strings.Contains(d.Detail, "devices.unknown_max_series") {
			t.Fatalf("dead letter %+v", d)
		}
	}
	if n := p.Counters.Get("dead_letters.unknown_device_limit"); n != 14 {
		t.Fatalf("counted %d refusals, want 14", n)
	}
	if n := p.Clone().Unknown; n != p.Unknown {
		t.Fatal("Clone drops the guard: a replay would bypass it")
	}
	// Once registered, a refused device's dead letters replay as points.
	refused := devices.EUI{0xee, 9}
	reg := p.Devices.(*devices.Registry)
	if err := reg.Replace([]devices.Device{{EUI: euiA, Name: "bin-12", Model: "temp-test"}, {EUI: refused, Name: "adopted"}}); err != nil {
		t.Fatal(err)
	}
	before := len(sink.pts)
	if err := p.Clone().Handle(ctx, Uplink{Source: "ns", DevEUI: refused, Time: t0, Object: map[string]any{"humidity": 50.0}}); err != nil {
		t.Fatal(err)
	}
	if len(sink.pts) == before || len(dl.dls) != 14 {
		t.Fatalf("the registered device's replay: %d points, %d dead letters", len(sink.pts)-before, len(dl.dls))
	}
}

// TestUnknownDeviceLogIsSampled: a flood of unknown devices logs a few
// dead letters a minute, not one per message; every one is counted.
func TestUnknownDeviceLogIsSampled(t *testing.T) {
	for _, tc := range []struct {
		source string
		reason Reason
	}{{"strict", ReasonUnknownDevice}, {"ns", ReasonUnknownDeviceLimit}} {
		p, _, _ := testPipeline(t)
		p.Unknown = devices.NewSeriesGuard(1, 1)
		var logs bytes.Buffer
		p.Log = zerolog.New(&logs)
		for i := range 200 {
			up := Uplink{Source: tc.source, DevEUI: devices.EUI{0xee, byte(i >> 8), byte(i)}, Time: t0, Object: map[string]any{"humidity": 50.0}}
			if err := p.Handle(context.Background(), up); err != nil {
				t.Fatal(err)
			}
		}
		lines := strings.Count(logs.String(), "message dead-lettered")
		if lines == 0 || lines > 10 {
			t.Errorf("%s: %d log lines for 200 dead letters, want 1 to 10", tc.reason, lines)
		}
		if n := p.Counters.Get(deadLetterCounter(tc.reason)); n < 199 {
			t.Errorf("%s: %d counted", tc.reason, n)
		}
	}
}

// TestCloneCopiesConfiguration: every exported field of a Pipeline comes
// through Clone, whatever its type; the cache does not.
func TestCloneCopiesConfiguration(t *testing.T) {
	p := &Pipeline{}
	v := reflect.ValueOf(p).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		switch f.Type.Kind() {
		case reflect.Map:
			v.Field(i).Set(reflect.MakeMap(f.Type))
		case reflect.Slice:
			v.Field(i).Set(reflect.MakeSlice(f.Type, 1, 1))
		case reflect.Pointer:
			v.Field(i).Set(reflect.New(f.Type.Elem()))
		case reflect.Func:
			v.Field(i).Set(reflect.MakeFunc(f.Type, func([]reflect.Value) []reflect.Value { return nil }))
		case reflect.Interface:
			// Any value of a type that implements the interface: the
			// pipeline itself is an Observer, Sink, …; otherwise a nil
			// value stays nil and the field is checked as unset.
			if reflect.TypeOf(p).Implements(f.Type) {
				v.Field(i).Set(reflect.ValueOf(p))
			}
		case reflect.Struct:
			if f.Type == reflect.TypeOf(zerolog.Logger{}) {
				v.Field(i).Set(reflect.ValueOf(zerolog.Nop()))
			}
		}
	}
	c := reflect.ValueOf(p.Clone()).Elem()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		a, b := v.Field(i), c.Field(i)
		same := false
		switch f.Type.Kind() {
		case reflect.Map, reflect.Slice, reflect.Pointer, reflect.Func:
			same = a.Pointer() == b.Pointer()
		default:
			same = reflect.DeepEqual(a.Interface(), b.Interface())
		}
		if !same {
			t.Errorf("Clone drops or changes Pipeline.%s", f.Name)
		}
	}
}
