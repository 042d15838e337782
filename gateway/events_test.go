package gateway

import (
	"context"
	"reflect"
	"testing"
)

// TestHandleDeviceEvents: status, join and log events become device and
// device_event points tagged like the device's uplinks (a device tag
// named like an event tag gives way), are counted by kind, and count as
// no uplink; an ignored event writes nothing; an event of a device a
// strict source does not know is a dead letter.
func TestHandleDeviceEvents(t *testing.T) {
	p, sink, dl := testPipeline(t)
	p.AllowedTags = append(p.AllowedTags, "type")
	ctx := context.Background()
	events := []Uplink{
		{Kind: KindStatus, Source: "strict", DevEUI: euiB, Time: t0, Status: &DeviceStatus{BatteryLevel: 50, HasBatteryLevel: true, Margin: 7, HasMargin: true}},
		{Kind: KindEvent, Source: "strict", DevEUI: euiB, Time: t0, Event: &DeviceEvent{Type: EventJoin, DevAddr: "01020304"}},
		{Kind: KindEvent, Source: "strict", DevEUI: euiB, Time: t0, Event: &DeviceEvent{Type: EventLog, Level: LevelError, Code: "uplink_codec", Description: "bad"}},
		{Kind: KindIgnored, Source: "strict"},
	}
	for _, ev := range events {
		if err := p.Handle(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	tags := []Tag{{"dev_eui", "0202020202020202"}, {"device", "no-model"}, {"source", "strict"}}
	want := []Point{
		{Measurement: "device", Tags: tags, Time: t0, Fields: []Field{FloatField("batteryLevel", 50), BoolField("externalPower", false), FloatField("margin", 7)}},
		{Measurement: "device_event", Tags: []Tag{tags[0], tags[1], tags[2], {"type", "join"}}, Time: t0, Fields: []Field{StringField("dev_addr", "01020304")}},
		{Measurement: "device_event", Tags: []Tag{{"code", "uplink_codec"}, tags[0], tags[1], {"level", "error"}, tags[2], {"type", "log"}}, Time: t0,
			Fields: []Field{StringField("description", "bad")}},
	}
	if !reflect.DeepEqual(sink.pts, want) {
		t.Fatalf("points\n got %+v\nwant %+v", sink.pts, want)
	}
	for name, n := range map[string]uint64{"device_status": 1, "device_events.join": 1, "device_events.log.error": 1, "events_ignored": 1, "uplinks": 0, "points_written": 3} {
		if got := p.Counters.Get(name); got != n {
			t.Errorf("counter %s = %d, want %d", name, got, n)
		}
	}
	// Points builds the same points without writing them.
	if pts, _, err := p.Points(events[1]); err != nil || !reflect.DeepEqual(pts, want[1:2]) {
		t.Errorf("Points of the join: %+v, %v", pts, err)
	}
	stranger := Uplink{Kind: KindEvent, Source: "strict", DevEUI: mustEUI("0909090909090909"), Time: t0, Event: &DeviceEvent{Type: EventJoin}}
	if err := p.Handle(ctx, stranger); err != nil {
		t.Fatal(err)
	}
	if len(dl.dls) != 1 || dl.dls[0].Reason != ReasonUnknownDevice {
		t.Fatalf("dead letters %+v, want one unknown_device", dl.dls)
	}
}
