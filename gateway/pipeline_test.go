package gateway

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/devices"
)

type recordingSink struct {
	mu  sync.Mutex
	pts []Point
	err error
}

func (s *recordingSink) Write(_ context.Context, pts []Point) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.pts = append(s.pts, clonePoints(pts)...)
	return nil
}

// clonePoints copies pts with their tags and fields: a Sink must not
// retain the points it is given (the pipeline reuses their memory).
func clonePoints(pts []Point) []Point {
	out := make([]Point, len(pts))
	for i, p := range pts {
		p.Tags, p.Fields = slices.Clone(p.Tags), slices.Clone(p.Fields)
		out[i] = p
	}
	return out
}

type recordingDL struct {
	mu  sync.Mutex
	dls []DeadLetter
	err error // Put's answer when set (the store is full or broken)
}

func (d *recordingDL) Put(_ context.Context, dl DeadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return d.err
	}
	d.dls = append(d.dls, dl)
	return nil
}

type decoderTable map[string]decoders.Decoder

func (t decoderTable) Lookup(m string) (decoders.Decoder, bool) { d, ok := t[m]; return d, ok }

var (
	t0      = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	euiA    = mustEUI("0101010101010101")
	euiB    = mustEUI("0202020202020202")
	euiNone = mustEUI("0909090909090909")
)

func mustEUI(s string) devices.EUI {
	e, err := devices.ParseEUI(s)
	if err != nil {
		panic(err)
	}
	return e
}

func testPipeline(t *testing.T) (*Pipeline, *recordingSink, *recordingDL) {
	t.Helper()
	reg, err := devices.NewRegistry([]devices.Device{
		{EUI: euiA, Name: "bin-12", Model: "temp-test", Tags: map[string]string{"district": "north", "secret": "x"}},
		{EUI: euiB, Name: "no-model"},
		{EUI: mustEUI("0303030303030303"), Name: "ghost", Model: "no-such-model"},
		{EUI: mustEUI("0404040404040404"), Name: "panicky", Model: "panics"},
	})
	if err != nil {
		t.Fatal(err)
	}
	sink, dl := &recordingSink{}, &recordingDL{}
	p := &Pipeline{
		Devices: reg,
		Decoders: decoderTable{
			"temp-test": decoders.Mapped{
				DecodeRecord: func(in decoders.Input, r *decoders.Record) error {
					if len(in.Bytes) < 2 {
						return decoders.ErrTruncated
					}
					r.Number("temp", float64(int16(in.Bytes[0])<<8|int16(in.Bytes[1]))/10)
					r.String("mode", "eco")
					return nil
				},
				Map: []decoders.Mapping{{Key: "temp", Quantity: "air.temperature"}},
			},
			"panics": decoders.Func(func(decoders.Input) (decoders.Result, error) { panic("index out of range") }),
		},
		Sink:        sink,
		DeadLetters: dl,
		Sources: map[string]SourcePolicy{
			"ns":     {AcceptUnknown: true, Map: []decoders.Mapping{{Key: "humidity", Quantity: "air.relativeHumidity"}}},
			"strict": {},
		},
		AllowedTags: []string{"district", "source"},
		Counters:    &Counters{},
		Now:         func() time.Time { return t0.Add(time.Hour) },
	}
	return p, sink, dl
}

func TestHandleRegisteredDevice(t *testing.T) {
	p, sink, dl := testPipeline(t)
	up := Uplink{Source: "strict", DevEUI: euiA, FPort: 2, HasFPort: true, FCnt: 7, HasFCnt: true, Payload: []byte{0x00, 0xE2},
		Time: t0, Radio: Radio{Frequency: 868100000, DR: 5, SF: 7, Gateways: []GatewayRx{{ID: "g1", RSSI: -80, SNR: 7, HasSNR: true}, {ID: "g2", RSSI: -60, SNR: 9.5, HasSNR: true}}}}
	if err := p.Handle(context.Background(), up); err != nil {
		t.Fatal(err)
	}
	tags := []Tag{{"dev_eui", "0101010101010101"}, {"device", "bin-12"}, {"district", "north"}, {"model", "temp-test"}, {"source", "strict"}}
	want := []Point{
		{Measurement: "uplink", Tags: tags, Time: t0, Fields: []Field{
			IntField("dr", 5), IntField("f_cnt", 7), IntField("f_port", 2), IntField("frequency", 868100000),
			IntField("gateways", 2), StringField("payload", "AOI="), FloatField("rssi", -60), IntField("sf", 7), FloatField("snr", 9.5)}},
		{Measurement: "air", Tags: tags, Time: t0, Fields: []Field{FloatField("temperature", 22.6)}},
		// temp is air.temperature already: decoded_<model> keeps only mode.
		{Measurement: "decoded_temp_test", Tags: tags, Time: t0, Fields: []Field{StringField("mode", "eco")}},
	}
	if !reflect.DeepEqual(sink.pts, want) {
		t.Fatalf("points\n got %+v\nwant %+v", sink.pts, want)
	}
	if len(dl.dls) != 0 {
		t.Fatalf("unexpected dead letters %+v", dl.dls)
	}
}

func TestHandleDeadLetters(t *testing.T) {
	cases := []struct {
		name   string
		up     Uplink
		reason Reason
	}{
		{"unknown device on strict source", Uplink{Source: "strict", DevEUI: euiNone, Payload: []byte{1}, Time: t0}, ReasonUnknownDevice},
		{"unknown source rejects unknowns", Uplink{Source: "other", DevEUI: euiNone, Time: t0}, ReasonUnknownDevice},
		{"unknown model", Uplink{Source: "strict", DevEUI: mustEUI("0303030303030303"), Payload: []byte{1, 2}, Time: t0}, ReasonUnknownModel},
		{"truncated payload", Uplink{Source: "strict", DevEUI: euiA, Payload: []byte{1}, Time: t0}, ReasonDecode},
		{"decoder panics", Uplink{Source: "strict", DevEUI: mustEUI("0404040404040404"), Payload: []byte{1}, Time: t0}, ReasonDecode},
		{"no device id", Uplink{Source: "ns", Time: t0}, ReasonMalformed},
		{"normalized unknown path", Uplink{Source: "ns", DevEUI: euiNone, Time: t0, Normalized: []map[string]any{{"air": map[string]any{"smell": 3.0}}}}, ReasonNormalize},
		{"mapped value of wrong type", Uplink{Source: "ns", DevEUI: euiNone, Time: t0, Object: map[string]any{"humidity": "wet"}}, ReasonNormalize},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, sink, dl := testPipeline(t)
			tc.up.Raw = []byte("raw:" + tc.name)
			if err := p.Handle(context.Background(), tc.up); err != nil {
				t.Fatalf("Handle returned %v; a dead letter must be taken, not refused", err)
			}
			if tc.reason == "" {
				if len(dl.dls) != 0 {
					t.Fatalf("dead letters %+v, want none", dl.dls)
				}
				return
			}
			if len(dl.dls) != 1 || dl.dls[0].Reason != tc.reason {
				t.Fatalf("dead letters %+v, want one with reason %s", dl.dls, tc.reason)
			}
			if string(dl.dls[0].Raw) != "raw:"+tc.name || dl.dls[0].Detail == "" {
				t.Fatalf("dead letter lost the raw message or reason: %+v", dl.dls[0])
			}
			if len(sink.pts) != 0 {
				t.Fatalf("dead-lettered uplink wrote points %+v", sink.pts)
			}
			if p.Counters.Get("dead_letters."+string(tc.reason)) != 1 {
				t.Fatalf("counter not incremented: %v", p.Counters.Snapshot())
			}
		})
	}
}

// TestHandleDeadLetterNotStored: a letter the store refuses is not taken
// (the source redelivers it) and not counted, as the store's own metric
// (sensorgate_dead_letters_total) does not count it either.
func TestHandleDeadLetterNotStored(t *testing.T) {
	p, _, dl := testPipeline(t)
	dl.err = errors.New("dead-letter queue full")
	err := p.Handle(context.Background(), Uplink{Source: "strict", DevEUI: euiA, Payload: []byte{1}, Time: t0})
	if err == nil || !strings.Contains(err.Error(), "queue full") {
		t.Fatalf("Handle = %v, want the store's refusal", err)
	}
	if n := p.Counters.Get("dead_letters." + string(ReasonDecode)); n != 0 {
		t.Fatalf("a letter the store refused was counted %d times", n)
	}
	dl.err = nil
	if err := p.Handle(context.Background(), Uplink{Source: "strict", DevEUI: euiA, Payload: []byte{1}, Time: t0}); err != nil {
		t.Fatal(err)
	}
	if n := p.Counters.Get("dead_letters." + string(ReasonDecode)); n != 1 {
		t.Fatalf("the redelivered letter counted %d times, want 1", n)
	}
}

func TestHandleNetworkServerData(t *testing.T) {
	p, sink, _ := testPipeline(t)
	sampleTime := "2026-03-01T11:59:00Z"
	up := Uplink{Source: "ns", DevEUI: euiNone, DeviceName: "garden-sensor", Profile: "Elsys ERS (v2)", Time: t0,
		Tags:       map[string]string{"district": "south", "owner": "parks"},
		Object:     map[string]any{"humidity": 41.0, "nested": map[string]any{"a": true, "list": []any{1.0, "x"}}},
		Normalized: []map[string]any{{"air": map[string]any{"temperature": -21.3, "pressure": 10.0}, "time": sampleTime}},
		Radio:      Radio{DR: -1},
	}
	if err := p.Handle(context.Background(), up); err != nil {
		t.Fatal(err)
	}
	tags := []Tag{{"dev_eui", "0909090909090909"}, {"device", "garden-sensor"}, {"district", "south"}, {"model", "elsys-ers-v2"}, {"source", "ns"}}
	st, _ := time.Parse(time.RFC3339, sampleTime)
	want := []Point{
		{Measurement: "uplink", Tags: tags, Time: t0, Fields: []Field{IntField("gateways", 0), StringField("payload", "")}},
		// Pressure 10 hPa is out of range: dropped with a warning.
		{Measurement: "air", Tags: tags, Time: st, Fields: []Field{FloatField("temperature", -21.3)}},
		{Measurement: "air", Tags: tags, Time: t0, Fields: []Field{FloatField("relativeHumidity", 41)}},
		// humidity is air.relativeHumidity already (the source's map).
		{Measurement: "decoded_elsys_ers_v2", Tags: tags, Time: t0, Fields: []Field{
			BoolField("nested_a", true), FloatField("nested_list_0", 1), StringField("nested_list_1", "x")}},
	}
	if !reflect.DeepEqual(sink.pts, want) {
		t.Fatalf("points\n got %+v\nwant %+v", sink.pts, want)
	}
	if p.Counters.Get("warnings") != 1 {
		t.Fatalf("want one out-of-range warning, counters %v", p.Counters.Snapshot())
	}

	// A model named in DecodedAll keeps every value (schema 1).
	sink.pts = nil
	p.DecodedAll = map[string]bool{"elsys-ers-v2": true}
	if err := p.Handle(context.Background(), up); err != nil {
		t.Fatal(err)
	}
	if got := sink.pts[len(sink.pts)-1]; got.Measurement != "decoded_elsys_ers_v2" || fieldOf(got, "humidity").F != 41 {
		t.Fatalf("with DecodedAll the decoded point is %+v, want humidity kept", got)
	}
}

func TestHandleSinkRejectionIsDeadLetter(t *testing.T) {
	p, sink, dl := testPipeline(t)
	sink.err = errors.Join(errors.New("influx: 400 field type conflict"), ErrRejected)
	if err := p.Handle(context.Background(), Uplink{Source: "strict", DevEUI: euiA, Payload: []byte{0, 1}, Time: t0, Radio: Radio{DR: -1}}); err != nil {
		t.Fatal(err)
	}
	if len(dl.dls) != 1 || dl.dls[0].Reason != ReasonRejected {
		t.Fatalf("dead letters %+v", dl.dls)
	}
}

func TestHandleSinkOutageIsNotAcked(t *testing.T) {
	p, sink, dl := testPipeline(t)
	sink.err = context.DeadlineExceeded
	if err := p.Handle(context.Background(), Uplink{Source: "strict", DevEUI: euiA, Payload: []byte{0, 1}, Time: t0, Radio: Radio{DR: -1}}); err == nil {
		t.Fatal("Handle returned nil while the sink failed: the message would be acked and lost")
	}
	if len(dl.dls) != 0 {
		t.Fatalf("an outage is not a dead letter: %+v", dl.dls)
	}
}

func TestLocalTimeWhenFeedHasNone(t *testing.T) {
	p, sink, _ := testPipeline(t)
	if err := p.Handle(context.Background(), Uplink{Source: "strict", DevEUI: euiB, Radio: Radio{DR: -1}}); err != nil {
		t.Fatal(err)
	}
	if len(sink.pts) != 1 || !sink.pts[0].Time.Equal(t0.Add(time.Hour)) || p.Counters.Get("local_time") != 1 {
		t.Fatalf("points %+v counters %v", sink.pts, p.Counters.Snapshot())
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"Elsys ERS (v2)": "elsys-ers-v2", "  --A__b--": "a-b", "": "", "the-things-products-the-things-uno": "the-things-products-the-things-uno",
	} {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDecodedFieldsRecordOrMap: a decoder's data gives the same
// decoded_<model> fields whether it comes as a Record (natives, and
// JavaScript codecs since their output stopped going through a map) or as
// a map (network-server objects): nested keys joined with "_", array
// elements by index, nulls left out.
func TestDecodedFieldsRecordOrMap(t *testing.T) {
	var rec decoders.Record
	rec.Number("temperature", 21.5)
	rec.String("status", "ok")
	rec.Bool("alarm", false)
	rec.Null("missing")
	rec.Object("pm2_5")
	rec.String("unit", "µg⋅m⁻³")
	rec.Number("value", 3.9)
	rec.End()
	rec.Array("history")
	rec.Number("", 1)
	rec.Null("")
	rec.Object("")
	rec.Number("t", 2)
	rec.End()
	rec.Array("")
	rec.String("", "x")
	rec.End()
	rec.End()
	rec.Object("empty")
	rec.End()

	fromRecord := decodedFields(&rec, nil, nil, nil)
	fromMap := decodedFields(nil, rec.Map(), nil, nil)
	if !reflect.DeepEqual(fromRecord, fromMap) {
		t.Fatalf("from the record %v\nfrom its map   %v", fromRecord, fromMap)
	}
	var keys []string
	for _, f := range fromRecord {
		keys = append(keys, f.Key)
	}
	want := []string{"alarm", "history_0", "history_2_t", "history_3_0", "pm2_5_unit", "pm2_5_value", "status", "temperature"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}

	// Keys a sample was read from stay out, from either form; a key no
	// sample names (history_2_t) stays in.
	stored := []decoders.Sample{{Quantity: "air.temperature", Key: "temperature"}, {Quantity: "air.pm25", Key: "pm2_5_value"}, {Quantity: "battery"}}
	for name, fields := range map[string][]Field{"record": decodedFields(&rec, nil, stored, nil), "map": decodedFields(nil, rec.Map(), stored, nil)} {
		keys = keys[:0]
		for _, f := range fields {
			keys = append(keys, f.Key)
		}
		want := []string{"alarm", "history_0", "history_2_t", "history_3_0", "pm2_5_unit", "status"}
		if !reflect.DeepEqual(keys, want) {
			t.Errorf("from the %s with samples: keys %v, want %v", name, keys, want)
		}
	}
}
