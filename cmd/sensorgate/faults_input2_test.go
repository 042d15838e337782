package main

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/simulate"
)

// TestFaultTopicAndTime runs the daemon against a real Mosquitto and
// InfluxDB with a valid stream that carries, at random places: a device
// publishing on its own topic as another device (device_mismatch), a
// zero time and a pre-1970 time (bad_time), a Cayenne LPP frame dated by
// a unix time record and one whose unix time is 0. The impostor's message
// writes nothing for the victim, the bad times write nothing, each is one
// dead letter attributed to the topic's device; the dated frame's reading
// lands at its own time with its uplink at the network server's; the
// frame dated 1970 lands at the uplink's time with a counted warning.
func TestFaultTopicAndTime(t *testing.T) {
	t.Parallel()
	r := newFaultRig(t, 909, 30)
	d := r.runInProcess(r.writeConfig(rigConfig{}))
	diag := func() string { return fmt.Sprintf("counters %v\nlog:\n%s", d.Counters.Snapshot(), r.logTail()) }
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	valid := r.stream(300)
	uplinks, air := expectSet{}, expectSet{}
	uplinks.add(valid...)
	air.add(valid...)

	// Device A, on its own topic, names device B: nothing of it may be
	// written as B.
	impostor := r.fleet.Next()
	victim := r.devs[0].EUI
	if victim == impostor.DevEUI {
		victim = r.devs[1].EUI
	}
	impostor = withJSON(t, impostor, func(v map[string]any) { v["deviceInfo"].(map[string]any)["devEui"] = victim.String() })
	zero := withJSON(t, r.fleet.Next(), func(v map[string]any) { v["time"] = "0001-01-01T00:00:00Z" })
	pre1970 := withJSON(t, r.fleet.Next(), func(v map[string]any) { v["time"] = "1969-12-31T23:59:59Z" })
	bad := map[string]struct {
		msg    simulate.Message
		reason gateway.Reason
	}{
		"impostor": {impostor, gateway.ReasonDeviceMismatch},
		"zero":     {zero, gateway.ReasonBadTime},
		"pre1970":  {pre1970, gateway.ReasonBadTime},
	}

	// Cayenne LPP: 22.5 °C on channel 1 and a unix time record on
	// channel 9.
	frame := func(unix uint32) string {
		b := []byte{1, 0x67, 0, 225, 9, 0x85, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[6:], unix)
		return base64.StdEncoding.EncodeToString(b)
	}
	dated := r.fleet.Next()
	readingAt := dated.Time.Add(-10 * time.Minute).Truncate(time.Second)
	dated = withJSON(t, dated, func(v map[string]any) { v["data"] = frame(uint32(readingAt.Unix())) })
	undated := r.fleet.Next()
	undated = withJSON(t, undated, func(v map[string]any) { v["data"] = frame(0) })
	uplinks.add(dated, undated)
	air[key(dated.DevEUI.String(), readingAt)] = 22.5
	air[key(undated.DevEUI.String(), undated.Time)] = 22.5

	stream := append([]simulate.Message(nil), valid...)
	for i, m := range []simulate.Message{impostor, zero, pre1970, dated, undated} {
		at := (i + 1) * len(valid) / 6
		stream = append(stream[:at], append([]simulate.Message{m}, stream[at:]...)...)
	}
	if err := publishReliably(ctx, r.mq.URL(), "faults-topic-time", stream, 0, nil); err != nil {
		t.Fatal(err)
	}
	awaitUplinks(t, r.db, len(uplinks), 2*time.Minute, diag)
	waitFor(t, time.Minute, "three dead letters", func() bool { return len(r.deadLetters()) >= len(bad) }, diag)
	assertPoints(t, r.db, uplinks, air)

	letters := r.deadLetters()
	if len(letters) != len(bad) {
		t.Fatalf("%d dead letters, want %d: %+v", len(letters), len(bad), letters)
	}
	for name, b := range bad {
		found := false
		for _, dl := range letters {
			if dl.Topic != b.msg.Topic || dl.Reason != b.reason || string(dl.Raw) != string(b.msg.Payload) {
				continue
			}
			found = true
			// The topic names the sender, which is what the letter is
			// attributed to (the impostor's, not its victim's).
			if !strings.Contains(b.msg.Topic, "/device/"+dl.DevEUI+"/") {
				t.Errorf("%s: dead letter of %s, topic %s", name, dl.DevEUI, b.msg.Topic)
			}
		}
		if !found {
			t.Errorf("%s: no %s dead letter for topic %s in %+v", name, b.reason, b.msg.Topic, letters)
		}
	}
	if n := countOf(t, r.db, "uplink", "payload"); n != len(uplinks) {
		t.Errorf("%d uplinks in InfluxDB, want %d", n, len(uplinks))
	}
	if w := d.counter("warnings"); w < 1 {
		t.Errorf("warnings %d: the frame dated 1970 was not warned about", w)
	}
	select {
	case err := <-d.done:
		t.Fatalf("the daemon stopped: %v", err)
	default:
	}
}
