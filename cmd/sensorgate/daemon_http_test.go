package main

import (
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

// TestObserverAndHealthPoints: the pipeline's Observer feeds health (with
// battery from the device measurement) and the unknown list, and health
// becomes device_health points tagged like the device's other points.
func TestObserverAndHealthPoints(t *testing.T) {
	known, stranger, rejected := devices.EUI{1}, devices.EUI{2}, devices.EUI{3}
	reg, err := devices.NewRegistry([]devices.Device{{EUI: known, Name: "bin-1", Model: "m", Tags: map[string]string{"district": "north", "secret": "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	o := &observer{reg: reg, health: devices.NewHealth(3), unknowns: devices.NewUnknowns(), now: time.Now}
	tags := []gateway.Tag{{Key: "dev_eui", Value: known.String()}, {Key: "device", Value: "bin-1"}, {Key: "model", Value: "m"}, {Key: "source", Value: "cs"}}
	for i := 0; i < 3; i++ {
		up := gateway.Uplink{Source: "cs", DevEUI: known, FCnt: uint32(2 * i), HasFCnt: true, Time: t0.Add(time.Duration(i) * 10 * time.Minute),
			Radio: gateway.Radio{Gateways: []gateway.GatewayRx{{ID: "g", RSSI: -100, SNR: 4, HasSNR: true}}}}
		o.Observe(up, []gateway.Point{
			{Measurement: "uplink", Tags: tags},
			{Measurement: "device", Tags: tags, Fields: []gateway.Field{gateway.FloatField("battery", 3.5), gateway.FloatField("batteryLevel", 71)}},
		}, nil)
	}
	o.Observe(gateway.Uplink{Source: "cs", DevEUI: stranger, DeviceName: "ns-name", Time: t0, Payload: []byte{1}}, []gateway.Point{{Measurement: "uplink"}}, nil)
	o.Observe(gateway.Uplink{Source: "json", DevEUI: rejected, Time: t0}, nil, &gateway.Rejection{Reason: gateway.ReasonUnknownDevice})

	h, ok := o.health.Get(known, t0.Add(30*time.Minute))
	if !ok || h.Uplinks24h != 3 || h.Lost24h != 2 || h.Battery == nil || *h.Battery != 3.5 || *h.BatteryLevel != 71 || h.Name != "bin-1" || h.Model != "m" {
		t.Fatalf("health %+v", h)
	}
	if u := o.unknowns.List(); len(u) != 2 || !u[0].Accepted && !u[1].Accepted {
		t.Fatalf("unknowns %+v", u)
	}
	if _, ok := o.health.Get(rejected, t0); ok {
		t.Fatal("a rejected unknown device has health")
	}

	pts := healthPoints(o.health.Report(t0.Add(30*time.Minute)), reg, []string{"district", "secret", "model"}, t0)
	var p gateway.Point
	for _, q := range pts {
		if q.Tags[0].Value == known.String() {
			p = q
		}
	}
	kv := func(k, v string) gateway.Tag { return gateway.Tag{Key: k, Value: v} }
	wantTags := []gateway.Tag{kv("dev_eui", known.String()), kv("device", "bin-1"), kv("district", "north"), kv("model", "m"), kv("secret", "x"), kv("source", "cs")}
	if p.Measurement != "device_health" || len(p.Tags) != len(wantTags) {
		t.Fatalf("point %+v", p)
	}
	for i, tg := range wantTags {
		if p.Tags[i] != tg {
			t.Fatalf("tags %v, want %v", p.Tags, wantTags)
		}
	}
	fields := map[string]gateway.Field{}
	for _, f := range p.Fields {
		fields[f.Key] = f
	}
	if fields["uplinks_24h"].Kind != gateway.Int || fields["uplinks_24h"].I != 3 || fields["silent"].Kind != gateway.Bool ||
		fields["loss_pct"].F != 40 || fields["battery"].F != 3.5 || fields["rssi"].F != -100 {
		t.Fatalf("fields %+v", p.Fields)
	}
}
