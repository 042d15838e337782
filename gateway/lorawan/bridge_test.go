package lorawan

import (
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
