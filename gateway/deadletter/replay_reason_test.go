package deadletter

import (
	"context"
	"testing"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
)

// TestReplayKeepsParseReason: a letter that still does not parse fails
// its replay with the reason the feed parser gives (bad_time,
// device_mismatch), not as malformed.
func TestReplayKeepsParseReason(t *testing.T) {
	ctx := context.Background()
	f := newReplayFixture(t)
	p, err := mqtt.NewParser(mqtt.Config{Name: "feed", Format: mqtt.FormatChirpStackV4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.r.Parse = func(dl gateway.DeadLetter) (gateway.Uplink, error) { return p.Parse(dl.Topic, dl.Raw) }
	topic := "application/a/device/0101010101010101/event/up"
	for _, dl := range []gateway.DeadLetter{
		{Time: t0, Source: "feed", Topic: topic, Reason: gateway.ReasonBadTime, Raw: []byte(`{"deviceInfo":{"devEui":"0101010101010101"},"time":"0001-01-01T00:00:00Z"}`)},
		{Time: t0, Source: "feed", Topic: topic, Reason: gateway.ReasonDeviceMismatch, Raw: []byte(`{"deviceInfo":{"devEui":"0202020202020202"},"time":"2026-01-01T00:00:00Z"}`)},
		{Time: t0, Source: "feed", Topic: topic, Reason: gateway.ReasonMalformed, Raw: []byte(`{`)},
	} {
		if err := f.store.Put(ctx, dl); err != nil {
			t.Fatal(err)
		}
	}
	res, err := f.r.Replay(ctx, Filter{}, false)
	if err != nil || len(res) != 3 {
		t.Fatalf("replay: %+v %v", res, err)
	}
	for i, want := range []gateway.Reason{gateway.ReasonBadTime, gateway.ReasonDeviceMismatch, gateway.ReasonMalformed} {
		if res[i].Status != StatusFailed || res[i].Reason != want {
			t.Errorf("letter %d: %s %s (%s), want failed %s", i, res[i].Status, res[i].Reason, res[i].Detail, want)
		}
	}
}
