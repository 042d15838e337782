package health

import (
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

// TestObserverAndPoints: the Observer feeds health (with the battery the
// pipeline saw) and the unknown list, and health becomes device_health
// points tagged like the device's other points.
func TestObserverAndPoints(t *testing.T) {
	known, stranger, rejected := devices.EUI{1}, devices.EUI{2}, devices.EUI{3}
	reg, err := devices.NewRegistry([]devices.Device{{EUI: known, Name: "bin-1", Model: "m", Tags: map[string]string{"district": "north", "secret": "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	o := &Observer{Health: devices.NewHealth(3), Unknowns: devices.NewUnknowns(), Now: time.Now}
	for i := 0; i < 3; i++ {
		at := t0.Add(time.Duration(i) * 10 * time.Minute)
		up := gateway.Uplink{Source: "cs", DevEUI: known, FCnt: uint32(2 * i), HasFCnt: true, Time: at,
			Radio: gateway.Radio{Gateways: []gateway.GatewayRx{{ID: "g", RSSI: -100, SNR: 4, HasSNR: true}}}}
		o.Observe(up, gateway.Seen{EUI: known, Registered: true, Name: "bin-1", Model: "m", Time: at,
			Battery: 3.5, HasBattery: true, BatteryLevel: 71, HasBatteryLevel: true})
	}
	o.Observe(gateway.Uplink{Source: "cs", DevEUI: stranger, DeviceName: "ns-name", Time: t0, Payload: []byte{1}}, gateway.Seen{EUI: stranger, Name: "ns-name", Time: t0})
	o.Observe(gateway.Uplink{Source: "json", DevEUI: rejected, Time: t0}, gateway.Seen{EUI: rejected, Rejection: &gateway.Rejection{Reason: gateway.ReasonUnknownDevice}})
	o.Observe(gateway.Uplink{Source: "json"}, gateway.Seen{Rejection: &gateway.Rejection{Reason: gateway.ReasonMalformed}})

	h, ok := o.Health.Get(known, t0.Add(30*time.Minute))
	if !ok || h.Uplinks24h != 3 || h.Lost24h != 2 || h.Battery == nil || *h.Battery != 3.5 || *h.BatteryLevel != 71 || h.Name != "bin-1" || h.Model != "m" {
		t.Fatalf("health %+v", h)
	}
	if u := o.Unknowns.List(); len(u) != 2 || !u[0].Accepted && !u[1].Accepted {
		t.Fatalf("unknowns %+v", u)
	}
	if _, ok := o.Health.Get(rejected, t0); ok {
		t.Fatal("a rejected unknown device has health")
	}
	if n, _, _ := o.Health.Stats(); n != 2 {
		t.Fatalf("%d devices tracked, want the registered one and the accepted stranger", n)
	}

	pts := Points(o.Health.Report(t0.Add(30*time.Minute)), reg, []string{"district", "secret", "model"}, t0)
	var p gateway.Point
	for _, q := range pts {
		if q.Tags[0].Value == known.String() {
			p = q
		}
	}
	kv := func(k, v string) gateway.Tag { return gateway.Tag{Key: k, Value: v} }
	wantTags := []gateway.Tag{kv("dev_eui", known.String()), kv("device", "bin-1"), kv("district", "north"), kv("model", "m"), kv("secret", "x"), kv("source", "cs")}
	if p.Measurement != Measurement || len(p.Tags) != len(wantTags) {
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
