package lorawan

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
)

// A ChirpStack MQTT Forwarder / Gateway Bridge v4 uplink event in JSON
// encoding (gw.UplinkFrame), carrying the brocaar "FRMPayload data" vector.
const bridgeEvent = `{
  "phyPayload": "QAQDAgGAAQABppRkJhXWw7WC",
  "txInfo": {"frequency": 868100000, "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7, "codeRate": "CR_4_5"}}},
  "rxInfo": {"gatewayId": "0016C001F153A14C", "uplinkId": 4217106255, "gwTime": "2026-02-03T10:11:12.345678Z",
             "nsTime": "2026-02-03T10:11:12.400000Z", "rssi": -57, "snr": 7.5, "channel": 2, "rfChain": 1,
             "context": "EFwMtA==", "metadata": {"region_config_id": "eu868"}, "crcStatus": "CRC_OK"}
}`

func TestParseBridgeUplink(t *testing.T) {
	topic := "eu868/gateway/0016c001f153a14c/event/up"
	fr, err := ParseBridgeUplink(topic, []byte(bridgeEvent))
	if err != nil {
		t.Fatal(err)
	}
	if fr.Gateway != (gateway.GatewayRx{ID: "0016c001f153a14c", RSSI: -57, SNR: 7.5, HasSNR: true}) || fr.Frequency != 868100000 ||
		fr.SF != 7 || fr.Bandwidth != 125000 || fr.DR != -1 || fr.Topic != topic || len(fr.PHYPayload) != 18 ||
		!fr.Time.Equal(time.Date(2026, 2, 3, 10, 11, 12, 345678000, time.UTC)) || string(fr.Raw) != bridgeEvent {
		t.Fatalf("frame %+v", fr)
	}
	// No gatewayId: from the topic; no gwTime: zero.
	fr, err = ParseBridgeUplink(topic, []byte(`{"phyPayload":"QAQDAgGAAQABppRkJhXWw7WC","rxInfo":{"rssi":-90}}`))
	if err != nil || fr.Gateway.ID != "0016c001f153a14c" || !fr.Time.IsZero() || fr.Gateway.HasSNR {
		t.Fatalf("%+v %v", fr, err)
	}
	for _, tc := range []struct {
		name, topic, msg, want string
	}{
		{"protobuf", topic, "\x0a\x12\x40\x04", "marshaler to json"},
		{"bad json", topic, `{"phyPayload":`, "gateway bridge event"},
		{"no payload", topic, `{"rxInfo":{"gatewayId":"0016c001f153a14c"}}`, "phyPayload"},
		{"no gateway", "eu868/up", `{"phyPayload":"QAQD"}`, "names no gateway"},
		{"bad time", topic, `{"phyPayload":"QAQD","rxInfo":{"gwTime":"yesterday"}}`, "yesterday"},
	} {
		if _, err := ParseBridgeUplink(tc.topic, []byte(tc.msg)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := ParseBridgeUplink(topic, []byte(`{"phyPayload":"QAQD","rxInfo":{"crcStatus":"BAD_CRC"}}`)); !errors.Is(err, ErrBadCRC) {
		t.Errorf("bad CRC: %v", err)
	}
}

// TestHandleBridge: a bad-CRC event is counted and acknowledged, a message
// that is not an event is a malformed dead letter with its topic and
// bytes, and an event goes on to Handle.
func TestHandleBridge(t *testing.T) {
	topic := "eu868/gateway/0016c001f153a14c/event/up"
	f, dl, c := newFrames(t, FrameConfig{DedupWindow: time.Millisecond}, lookup{})
	h := func(context.Context, gateway.Uplink) error {
		t.Fatal("handler called for a frame of no registered device")
		return nil
	}
	ctx := context.Background()
	if err := f.HandleBridge(ctx, topic, []byte(`{"phyPayload":"QAQD","rxInfo":{"crcStatus":"BAD_CRC"}}`), h); err != nil {
		t.Fatal(err)
	}
	if c.Get("lorawan.crc_errors") != 1 || c.Get("lorawan.frames") != 0 || len(dl.all()) != 0 {
		t.Fatalf("bad CRC: counters %v, dead letters %v", c.Snapshot(), dl.all())
	}
	if err := f.HandleBridge(ctx, topic, []byte("\x0a\x08protobuf"), h); err != nil {
		t.Fatal(err)
	}
	got := dl.all()
	if len(got) != 1 || got[0].Reason != gateway.ReasonMalformed || got[0].Topic != topic || string(got[0].Raw) != "\x0a\x08protobuf" ||
		got[0].Source != "udp-test" || !strings.Contains(got[0].Detail, "not JSON") || c.Get("lorawan.dead_letters.malformed") != 1 {
		t.Fatalf("not an event: dead letters %+v, counters %v", got, c.Snapshot())
	}
	if err := f.HandleBridge(ctx, topic, []byte(bridgeEvent), h); err != nil {
		t.Fatal(err)
	}
	if c.Get("lorawan.frames") != 1 || c.Get("lorawan.unknown_dev_addr") != 1 {
		t.Fatalf("event: counters %v", c.Snapshot())
	}
}
