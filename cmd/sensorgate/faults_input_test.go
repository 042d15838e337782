package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/simulate"
)

// badInput is one kind of malformed message mixed into a valid stream.
type badInput struct {
	kind   string
	msg    simulate.Message
	reason gateway.Reason
}

// TestFaultMalformedInput (f): 27 kinds of malformed messages mixed at
// seeded positions into a valid stream of two feeds (ChirpStack v4 and a
// sensor's own JSON). Every valid message lands, including the odd but
// valid ones (a MAC-only uplink, numbers sent as strings, an unknown
// device a network server names, a redelivery); every bad one becomes
// exactly one dead letter with the expected reason, its raw bytes and
// topic; the daemon keeps running.
func TestFaultMalformedInput(t *testing.T) {
	t.Parallel()
	const n = 1500
	r := newFaultRig(t, 707, 100)
	kiosk := devices.Device{EUI: mustParseEUI(t, "00cc00cc00cc0001"), Name: "kiosk-1", Tags: map[string]string{"district": "centre"}}
	noModel := devices.Device{EUI: mustParseEUI(t, "00dd00dd00dd0001"), Name: "mystery-box", Model: "no-such-decoder"}
	r.devs = append(r.devs, kiosk, noModel)
	d := r.runInProcess(r.writeConfig(rigConfig{sources: fmt.Sprintf(`  - name: kiosks
    type: mqtt
    format: json
    broker: %q
    topics: ["city/kiosk/+/data/#"]
    client_id: faults-json
    json: {device_id: "topic:2", time: ts, time_format: unix_ms}
    map: [{key: temp, quantity: air.temperature}]`, r.mq.URL())}))
	diag := func() string {
		return fmt.Sprintf("counters %v\nlog:\n%s", d.Counters.Snapshot(), r.logTail())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	uplinks, air := expectSet{}, expectSet{}
	valid := r.stream(n)
	uplinks.add(valid...)
	air.add(valid...)

	// Odd but valid.
	macOnly := withJSON(t, r.fleet.Next(), func(v map[string]any) { v["data"], v["fPort"] = "", 0 })
	uplinks.add(macOnly) // no payload: no air point
	asStrings := withJSON(t, r.fleet.Next(), func(v map[string]any) { v["fCnt"], v["dr"] = "123", "5" })
	uplinks.add(asStrings)
	air.add(asStrings)
	stranger := withJSON(t, r.fleet.Next(), func(v map[string]any) {
		info := v["deviceInfo"].(map[string]any)
		info["devEui"], info["deviceName"] = "00ee00ee00ee0001", "stranger"
	})
	// On its own topic: a topic naming another device is a device_mismatch.
	stranger.Topic = strings.Replace(stranger.Topic, "/device/"+stranger.DevEUI.String()+"/", "/device/00ee00ee00ee0001/", 1)
	stranger.DevEUI = mustParseEUI(t, "00ee00ee00ee0001")
	uplinks.add(stranger)                                                  // unknown on a network-server feed: accepted by default; no model, no air point
	extras := []simulate.Message{macOnly, asStrings, stranger, valid[n/2]} // valid[n/2] again: a redelivery
	kioskTopic := "city/kiosk/kiosk-1/data"
	start := time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
	for i := 0; i < 30; i++ {
		tm := start.Add(time.Duration(i) * time.Minute)
		temp := float64(10+i%7) + 0.5
		extras = append(extras, simulate.Message{Topic: kioskTopic, Payload: []byte(fmt.Sprintf(`{"ts":%d,"temp":%v}`, tm.UnixMilli(), temp))})
		uplinks[key(kiosk.EUI.String(), tm)] = 0
		air[key(kiosk.EUI.String(), tm)] = temp
	}

	// The bad ones, each on a topic of its own so its dead letter can be
	// told apart.
	var bad []badInput
	// The topic names the device the payload names (or, where it names
	// none readable, some device): else every one would be a device_mismatch.
	payloadEUI := regexp.MustCompile(`"devEui":"([0-9a-fA-F]{16})"`)
	cs := func(kind string, reason gateway.Reason, payload []byte) {
		eui := fmt.Sprintf("00bad00000000%03d", len(bad))
		if m := payloadEUI.FindSubmatch(payload); m != nil {
			eui = string(m[1])
		}
		bad = append(bad, badInput{kind, simulate.Message{Topic: fmt.Sprintf("application/bad-%02d/device/%s/event/up", len(bad), eui), Payload: payload}, reason})
	}
	js := func(kind, device string, reason gateway.Reason, payload string) {
		bad = append(bad, badInput{kind, simulate.Message{Topic: fmt.Sprintf("city/kiosk/%s/data/bad-%02d", device, len(bad)), Payload: []byte(payload)}, reason})
	}
	edit := func(f func(map[string]any)) []byte { return withJSON(t, r.fleet.Next(), f).Payload }
	info := func(v map[string]any) map[string]any { return v["deviceInfo"].(map[string]any) }
	m := gateway.ReasonMalformed
	cs("invalid JSON", m, []byte(`{"deduplicationId": "x", "deviceInfo": {"devEui": "0101`))
	p := r.fleet.Next().Payload
	cs("truncated message", m, p[:len(p)/2])
	cs("zero-length message", m, []byte{})
	cs("whitespace only", m, []byte(" \n\t "))
	cs("JSON array", m, []byte(`[1, 2, 3]`))
	cs("JSON null", m, []byte(`null`))
	cs("deviceInfo of the wrong type", m, edit(func(v map[string]any) { v["deviceInfo"] = "0101010101010101" }))
	cs("fCnt not a number", m, edit(func(v map[string]any) { v["fCnt"] = "abc" }))
	cs("fPort out of range", m, edit(func(v map[string]any) { v["fPort"] = 300 }))
	cs("dr a word", m, edit(func(v map[string]any) { v["dr"] = "fast" }))
	cs("NaN literal", m, bytes.Replace(r.fleet.Next().Payload, []byte(`"adr":true`), []byte(`"adr":true,"snr":NaN`), 1))
	cs("base64 garbage", m, edit(func(v map[string]any) { v["data"] = "!!not*base64!!" }))
	cs("devEui not hex", m, edit(func(v map[string]any) { info(v)["devEui"] = "zz" }))
	cs("devEui missing", m, edit(func(v map[string]any) { delete(info(v), "devEui") }))
	cs("time not a time", m, edit(func(v map[string]any) { v["time"] = "yesterday" }))
	cs("binary, not UTF-8", m, []byte{0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, '{', 0xa0, 0xa1})
	cs("nested too deep", m, []byte(`{"object":`+strings.Repeat(`{"a":`, 20000)+`1`+strings.Repeat(`}`, 20000)+`}`))
	p = r.fleet.Next().Payload
	cs("duplicate key, the last invalid", m, append(bytes.TrimSuffix(p, []byte("}")), []byte(`,"fPort":"two"}`)...))
	cs("huge (1 MiB) payload", gateway.ReasonDecode, edit(func(v map[string]any) {
		v["data"] = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 768<<10))
	}))
	cs("Cayenne LPP truncated", gateway.ReasonDecode, edit(func(v map[string]any) { v["data"] = "AWc=" }))
	cs("Cayenne LPP unknown type", gateway.ReasonDecode, edit(func(v map[string]any) { v["data"] = "Af8BAg==" }))
	cs("model no decoder has", gateway.ReasonUnknownModel, edit(func(v map[string]any) { info(v)["devEui"] = noModel.EUI.String() }))
	cs("encrypted, no AppSKey", gateway.ReasonEncrypted, edit(func(v map[string]any) {
		v["joinServerContext"] = map[string]any{"sessionKeyId": "", "appSKey": map[string]any{"kekLabel": "", "aesKey": "AAECAwQFBgcICQoLDA0ODw=="}}
	}))
	js("unknown device on a JSON feed", "unknown-kiosk", gateway.ReasonUnknownDevice, `{"ts":1772434800000,"temp":20.5}`)
	js("JSON array on a JSON feed", "kiosk-1", m, `[{"ts":1772434800000,"temp":20.5}]`)
	js("time of the wrong type", "kiosk-1", m, `{"ts":"noon","temp":20.5}`)
	js("data after the object", "kiosk-1", m, `{"ts":1772434800000,"temp":20.5}{"ts":1}`)

	// Mix: valid stream order kept, the extras and the bad ones at seeded
	// positions.
	stream := append([]simulate.Message(nil), valid...)
	rng := rand.New(rand.NewPCG(707, 4))
	insert := func(msg simulate.Message) {
		i := rng.IntN(len(stream) + 1)
		stream = append(stream[:i], append([]simulate.Message{msg}, stream[i:]...)...)
	}
	for _, e := range extras {
		insert(e)
	}
	for _, b := range bad {
		insert(b.msg)
	}
	if err := publishReliably(ctx, r.mq.URL(), "faults-publisher", stream, 0, nil); err != nil {
		t.Fatal(err)
	}
	awaitUplinks(t, r.db, len(uplinks), 2*time.Minute, diag)
	waitFor(t, time.Minute, "every bad message dead-lettered", func() bool { return len(r.deadLetters()) >= len(bad) }, diag)
	assertPoints(t, r.db, uplinks, air)

	byTopic := map[string]gateway.DeadLetter{}
	for _, dl := range r.deadLetters() {
		if _, dup := byTopic[dl.Topic]; dup {
			t.Errorf("two dead letters for %s", dl.Topic)
		}
		byTopic[dl.Topic] = dl
	}
	if len(byTopic) != len(bad) {
		t.Errorf("%d dead letters, want %d", len(byTopic), len(bad))
	}
	var table strings.Builder
	for _, b := range bad {
		dl, ok := byTopic[b.msg.Topic]
		switch {
		case !ok:
			t.Errorf("%s: no dead letter", b.kind)
		case dl.Reason != b.reason || dl.Detail == "" || !bytes.Equal(dl.Raw, b.msg.Payload):
			t.Errorf("%s: dead letter reason %q (%s), raw of %d bytes; want reason %q and the %d bytes sent",
				b.kind, dl.Reason, dl.Detail, len(dl.Raw), b.reason, len(b.msg.Payload))
		default:
			fmt.Fprintf(&table, "\n  %-34s %-15s %.110s", b.kind, dl.Reason, dl.Detail)
		}
	}
	select {
	case err := <-d.done:
		t.Fatalf("the daemon stopped: %v", err)
	default:
	}
	t.Logf("%d valid uplinks landed; %d kinds of bad input, each one dead letter:%s", len(uplinks), len(bad), table.String())
}
