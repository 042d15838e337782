package gateway

import (
	"slices"
	"testing"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/devices"
)

// TestDecoderOutputClassifiesPipelinePoints builds every kind of point the
// pipeline writes and checks that DecoderOutput says which a re-decode
// replaces: a schema change that adds a measurement, or moves decoder
// output into a kept one, fails here before a re-decode deletes what it
// cannot write again (or leaves orphans).
func TestDecoderOutputClassifiesPipelinePoints(t *testing.T) {
	p, _, _ := testPipeline(t)
	p.Sources["strict"] = SourcePolicy{GatewayPoints: true}
	p.Decoders.(decoderTable)["battery-test"] = decoders.Mapped{
		DecodeRecord: func(in decoders.Input, r *decoders.Record) error {
			r.Number("temp", 21.5)
			r.Number("volts", 3.6)
			r.Number("serial", 7) // no quantity: decoded_<model> keeps it (schema 2)
			return nil
		},
		Map: []decoders.Mapping{{Key: "temp", Quantity: "air.temperature"}, {Key: "volts", Quantity: "battery"}},
	}
	reg, err := devices.NewRegistry([]devices.Device{{EUI: euiA, Name: "meter", Model: "battery-test"}})
	if err != nil {
		t.Fatal(err)
	}
	p.Devices = reg
	type want struct {
		decoded bool
		status  bool // a status point (StatusMarkerField), kept though its measurement is decoder output
	}
	got := map[string]want{}
	add := func(ups ...Uplink) {
		t.Helper()
		for _, up := range ups {
			pts, _, err := p.Points(up)
			if err != nil {
				t.Fatal(err)
			}
			for _, pt := range pts {
				status := slices.ContainsFunc(pt.Fields, func(f Field) bool { return f.Key == StatusMarkerField })
				got[pt.Measurement+map[bool]string{true: "/status"}[status]] = want{DecoderOutput(pt.Measurement), status}
			}
		}
	}
	add(
		Uplink{Source: "strict", DevEUI: euiA, FPort: 2, HasFPort: true, Payload: []byte{1, 2}, Time: t0,
			Radio: Radio{Gateways: []GatewayRx{{ID: "g1", RSSI: -80}}}},
		Uplink{Kind: KindStatus, Source: "strict", DevEUI: euiA, Time: t0, Status: &DeviceStatus{BatteryLevel: 50, HasBatteryLevel: true}},
		Uplink{Kind: KindEvent, Source: "strict", DevEUI: euiA, Time: t0, Event: &DeviceEvent{Type: EventJoin, DevAddr: "01020304"}},
		Uplink{Kind: KindGatewayStats, Source: "strict", Time: t0, Gateway: &GatewayStats{ID: "0102030405060708", RxReceived: 1}},
	)
	expect := map[string]want{
		MeasurementUplink:             {false, false},
		MeasurementUplinkGateway:      {false, false},
		"air":                         {true, false},
		MeasurementDevice:             {true, false}, // the decoder's battery
		MeasurementDevice + "/status": {true, true},  // kept by its marker field
		"decoded_battery_test":        {true, false},
		MeasurementDeviceEvent:        {false, false},
		MeasurementGateway:            {false, false},
	}
	if len(got) != len(expect) {
		t.Errorf("measurements built: %v, want %v", got, expect)
	}
	for m, w := range expect {
		if g, ok := got[m]; !ok || g != w {
			t.Errorf("%s: got %+v (built: %v), want %+v", m, g, ok, w)
		}
	}
	if DecoderOutput(MeasurementDeviceHealth) {
		t.Error("device_health is the daemon's, not a decoder's")
	}
	// A decoder's own points never carry the status marker: the
	// catalogue has no such top-level quantity.
	if _, ok := decoders.LookupQuantity(StatusMarkerField); ok {
		t.Errorf("the catalogue has %q: decoder output could not be told from a status point", StatusMarkerField)
	}
}
