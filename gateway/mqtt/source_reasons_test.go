package mqtt

import (
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// TestSourceDeadLetterReasons: through a real broker, a message naming
// another device than its topic, and one with a zero time, are acked as
// dead letters of their own reasons and attributed to the topic's
// DevEUI, as is a malformed one; the valid message between them passes.
func TestSourceDeadLetterReasons(t *testing.T) {
	m := testserver.StartMosquitto(t)
	pub := publisher(t, m.URL())
	dl := &memDeadLetters{}
	var rec recorder
	s := newTestSource(t, m.URL(), "reasons", dl)
	stop := startRun(t, s, rec.handle)

	const victim = "0101010100000002" // v4Message(2)'s device
	topicOf := func(eui string) string { return "application/app/device/" + eui + "/event/up" }
	// Device 1 (its topic) writes as device 2 (the payload).
	_, impostor, _ := v4Message(2)
	publish(t, pub, topicOf("0101010101010101"), impostor)
	publish(t, pub, topicOf("0101010101010103"), []byte(`{"deviceInfo":{"devEui":"0101010101010103"},"time":"0001-01-01T00:00:00Z"}`))
	publish(t, pub, topicOf("0101010101010104"), []byte(`{"deviceInfo":`))
	topic, payload, _ := v4Message(5)
	publish(t, pub, topic, payload)
	waitFor(t, 10*time.Second, "three dead letters and an uplink", func() bool { return len(dl.list()) == 3 && len(rec.list()) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		reason gateway.Reason
		eui    string
		detail string
	}{
		{gateway.ReasonDeviceMismatch, "0101010101010101", "the topic names device 0101010101010101, the message " + victim},
		{gateway.ReasonBadTime, "0101010101010103", "time 0001-01-01T00:00:00Z: outside 1970..2262"},
		{gateway.ReasonMalformed, "0101010101010104", "invalid JSON"},
	}
	got := dl.list()
	for i, w := range want {
		// One device's messages keep their order; across devices the
		// letters may come in any order.
		var d *gateway.DeadLetter
		for j := range got {
			if got[j].Reason == w.reason {
				d = &got[j]
			}
		}
		if d == nil {
			t.Fatalf("no %s dead letter in %+v", w.reason, got)
		}
		if d.DevEUI != w.eui || !strings.Contains(d.Detail, w.detail) || d.Source != "test-reasons" || len(d.Raw) == 0 {
			t.Errorf("letter %d = %+v, want DevEUI %s and detail …%s…", i, d, w.eui, w.detail)
		}
	}
	if up := rec.list()[0]; up.DevEUI.String() != "0101010100000005" {
		t.Errorf("uplink of %s, want the valid message's device", up.DevEUI)
	}
}
