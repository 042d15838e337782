package gateway

import (
	"context"
	"reflect"
	"testing"
)

// TestGatewayPoints: a source with GatewayPoints gets one uplink_gateway
// point per reception, tagged like the uplink plus gateway_id; other
// sources get none.
func TestGatewayPoints(t *testing.T) {
	p, _, _ := testPipeline(t)
	up := Uplink{Source: "udp", DevEUI: euiB, Time: t0, FCnt: 1, HasFCnt: true, Radio: Radio{DR: -1, Gateways: []GatewayRx{
		{ID: "b827ebfffe000001", RSSI: -60, SNR: 9.5, HasSNR: true},
		{ID: "b827ebfffe000002", RSSI: -101},
	}}}
	pts, _, err := p.Points(up)
	if err != nil {
		t.Fatal(err)
	}
	for _, pt := range pts {
		if pt.Measurement == "uplink_gateway" {
			t.Fatal("uplink_gateway point for a source that did not ask")
		}
	}
	p.Sources["udp"] = SourcePolicy{GatewayPoints: true}
	pts, _, err = p.Points(up)
	if err != nil {
		t.Fatal(err)
	}
	var got []Point
	for _, pt := range pts {
		if pt.Measurement == "uplink_gateway" {
			got = append(got, pt)
		}
	}
	tags := func(gw string) []Tag {
		return []Tag{{"dev_eui", "0202020202020202"}, {"device", "no-model"}, {"gateway_id", gw}, {"source", "udp"}}
	}
	want := []Point{
		{Measurement: "uplink_gateway", Tags: tags("b827ebfffe000001"), Fields: []Field{FloatField("rssi", -60), FloatField("snr", 9.5)}, Time: t0},
		{Measurement: "uplink_gateway", Tags: tags("b827ebfffe000002"), Fields: []Field{FloatField("rssi", -101)}, Time: t0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

// observed counts what an Observer saw.
type observed struct{ n int }

func (o *observed) Observe(Uplink, Seen) { o.n++ }

// TestGatewayCopiesPoints: receptions of an uplink taken elsewhere
// (GatewayCopies) become their uplink_gateway points only, tagged like
// the uplink's, at its time; they are not an uplink again (no uplink or
// decoded point, not counted, not observed), and a source without
// GatewayPoints writes nothing for them.
func TestGatewayCopiesPoints(t *testing.T) {
	p, sink, dl := testPipeline(t)
	obs := &observed{}
	p.Observer = obs
	up := Uplink{Source: "udp", DevEUI: euiA, Time: t0, FCnt: 1, HasFCnt: true, GatewayCopies: true, Payload: []byte{0, 215},
		Radio: Radio{DR: -1, Gateways: []GatewayRx{{ID: "b827ebfffe000003", RSSI: -90, SNR: 2, HasSNR: true}}}}
	if err := p.Handle(context.Background(), up); err != nil || len(sink.pts) != 0 {
		t.Fatalf("source without gateway points: err %v, points %+v", err, sink.pts)
	}
	p.Sources["udp"] = SourcePolicy{GatewayPoints: true}
	if err := p.Handle(context.Background(), up); err != nil {
		t.Fatal(err)
	}
	want := []Point{{Measurement: "uplink_gateway", Tags: []Tag{{"dev_eui", "0101010101010101"}, {"device", "bin-12"}, {"district", "north"}, {"gateway_id", "b827ebfffe000003"}, {"model", "temp-test"}, {"source", "udp"}},
		Fields: []Field{FloatField("rssi", -90), FloatField("snr", 2)}, Time: t0}}
	if !reflect.DeepEqual(sink.pts, want) {
		t.Fatalf("got %+v\nwant %+v", sink.pts, want)
	}
	if obs.n != 0 || len(dl.dls) != 0 || p.Counters.Get("uplinks") != 0 {
		t.Fatalf("observed %d, dead letters %d, uplinks counted %d", obs.n, len(dl.dls), p.Counters.Get("uplinks"))
	}
	// A device removed meanwhile: nothing to join, dropped quietly.
	up.DevEUI = mustEUI("0909090909090909")
	if err := p.Handle(context.Background(), up); err != nil || len(sink.pts) != 1 || len(dl.dls) != 0 {
		t.Fatalf("unknown device's copy: err %v, points %d, dead letters %d", err, len(sink.pts), len(dl.dls))
	}
}
