package gateway

import (
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
