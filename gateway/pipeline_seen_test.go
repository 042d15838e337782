package gateway

import (
	"context"
	"reflect"
	"testing"
	"time"
)

type seenRecorder struct{ seen []Seen }

func (r *seenRecorder) Observe(_ Uplink, s Seen) {
	s.Points = nil // the arena's, only valid during Observe
	r.seen = append(r.seen, s)
}

// TestObserverSeen: what the pipeline tells its Observer about each
// uplink it took: the device it resolved (by DevEUI, or by name for a
// feed without one), whether it is registered, the tags' name and model,
// the points' time (the local clock for a feed without one) and the
// battery quantities; for a dead letter as far as it got.
func TestObserverSeen(t *testing.T) {
	local := t0.Add(time.Hour) // testPipeline's clock
	cases := []struct {
		name string
		up   Uplink
		want Seen
		rej  Reason
	}{
		{"registered", Uplink{Source: "strict", DevEUI: euiA, FCnt: 1, HasFCnt: true, Payload: []byte{0, 1}, Time: t0},
			Seen{EUI: euiA, Registered: true, Name: "bin-12", Model: "temp-test", Time: t0}, ""},
		{"by name, no time", Uplink{Source: "strict", DeviceName: "bin-12", Payload: []byte{0, 1}},
			Seen{EUI: euiA, Registered: true, Name: "bin-12", Model: "temp-test", Time: local}, ""},
		{"unknown accepted, battery", Uplink{Source: "ns", DevEUI: euiNone, DeviceName: "ns-name", Profile: "Bat Prof", Time: t0,
			Normalized: []map[string]any{{"battery": 3.6, "batteryLevel": 80.0}}},
			Seen{EUI: euiNone, Name: "ns-name", Model: "bat-prof", Time: t0, Battery: 3.6, HasBattery: true, BatteryLevel: 80, HasBatteryLevel: true}, ""},
		{"unknown refused", Uplink{Source: "strict", DevEUI: euiNone, Time: t0}, Seen{EUI: euiNone}, ReasonUnknownDevice},
		{"decode error", Uplink{Source: "strict", DevEUI: euiA, Payload: []byte{1}, Time: t0},
			Seen{EUI: euiA, Registered: true, Name: "bin-12", Model: "temp-test", Time: t0}, ReasonDecode},
		{"unknown model", Uplink{Source: "strict", DevEUI: mustEUI("0303030303030303"), Payload: []byte{1}, Time: t0},
			Seen{EUI: mustEUI("0303030303030303"), Registered: true, Name: "ghost", Model: "no-such-model"}, ReasonUnknownModel},
		{"no device", Uplink{Source: "strict", Time: t0}, Seen{}, ReasonMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, _, _ := testPipeline(t)
			rec := &seenRecorder{}
			p.Observer = rec
			if err := p.Handle(context.Background(), tc.up); err != nil {
				t.Fatal(err)
			}
			if len(rec.seen) != 1 {
				t.Fatalf("observed %d times", len(rec.seen))
			}
			got := rec.seen[0]
			var reason Reason
			if got.Rejection != nil {
				reason = got.Rejection.Reason
			}
			got.Rejection = nil
			if !reflect.DeepEqual(got, tc.want) || reason != tc.rej {
				t.Errorf("seen %+v (%q)\nwant %+v (%q)", got, reason, tc.want, tc.rej)
			}
		})
	}
}
