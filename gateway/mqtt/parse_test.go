package mqtt

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

func mustEUI(s string) devices.EUI {
	e, err := devices.ParseEUI(s)
	if err != nil {
		panic(err)
	}
	return e
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func gw(id string, rssi, snr float64) gateway.GatewayRx {
	return gateway.GatewayRx{ID: id, RSSI: rssi, SNR: snr, HasSNR: true}
}

// wantFeeds is the exact uplink of every valid file in testdata/feeds
// (Source "test"; Topic and Raw are checked against the files).
var wantFeeds = map[string]gateway.Uplink{
	"chirpstack-v4/docs-example": {
		DevEUI: mustEUI("0101010101010101"), DeviceName: "Test device", Profile: "Test device-profile",
		Tags: map[string]string{"key": "value"}, FPort: 1, HasFPort: true, Payload: []byte{0xaa},
		Time: mustTime("2022-07-18T09:34:15.775023Z"), ID: "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
		Radio: gateway.Radio{Frequency: 867100000, DR: 1, SF: 11, Bandwidth: 125000,
			Gateways: []gateway.GatewayRx{gw("0016c001f153a14c", -36, 10.5)}},
	},
	"chirpstack-v4/field-realistic": {
		DevEUI: mustEUI("1000000000000001"), DeviceName: "Device name", Profile: "Chirpstack default device profile",
		FPort: 2, FCnt: 4, HasFCnt: true, HasFPort: true, Payload: []byte{0, 4, 0x1d, 1, 0x89, 0, 0xf8, 0},
		Time: mustTime("2023-05-22T07:47:05.404859Z"), ID: "57433366-50a6-4dc2-8145-2df1bbc70d9e",
		Radio: gateway.Radio{Frequency: 868500000, DR: 5, SF: 7, Bandwidth: 125000,
			Gateways: []gateway.GatewayRx{gw("6a7e111a10000000", -35, 11.5)}},
	},
	"chirpstack-v4/multi-gateway-object-upper": {
		DevEUI: mustEUI("010101010101010a"), DeviceName: "am307-townhall-2f", Profile: "Milesight AM307",
		Tags:  map[string]string{"site": "townhall", "district": "centre"},
		FPort: 85, FCnt: 1234, HasFCnt: true, HasFPort: true,
		Payload: []byte{0x01, 0x75, 0x64, 0x03, 0x67, 0x0d, 0x01, 0x04, 0x68, 0x65, 0x06, 0x65, 0x1c, 0x00, 0x1d, 0x00, 0x05, 0x00, 0x07, 0x08, 0x7d, 0x2c, 0x04},
		Object: map[string]any{"battery": 100.0, "temperature": 26.9, "humidity": 50.5, "pir": "idle",
			"light_level": 2.0, "co2": 1068.0, "tvoc": 1.01},
		Time: mustTime("2024-03-05T11:22:33.123456Z"), ID: "5e1e2a3c-8f5d-4f0a-9a77-2a1c0b9d7e11",
		Radio: gateway.Radio{Frequency: 868500000, DR: 5, SF: 7, Bandwidth: 125000, Gateways: []gateway.GatewayRx{
			gw("0016c001f153a14c", -87, 7.25), gw("b827ebfffe8a1c02", -112, -6.5), {ID: "b827ebfffe8a1c03", RSSI: -120}}},
	},
	"chirpstack-v4/encrypted-join-server": {
		DevEUI: mustEUI("0101010101010108"), DeviceName: "weather-join-server", Profile: "Cayenne weather",
		FPort: 2, FCnt: 70000, HasFCnt: true, HasFPort: true, Payload: []byte{0x14, 0x2d, 0x85, 0x4c, 0x76, 0x81, 0x53},
		Encrypted: true, DevAddr: devices.DevAddr{0x26, 0x01, 0x1b, 0xda},
		Time: mustTime("2025-03-10T08:15:30.25Z"), ID: "b0a5c0de-7e57-4c1d-9a7e-0c0ffee00108",
		Radio: gateway.Radio{Frequency: 868300000, DR: 5, SF: 7, Bandwidth: 125000,
			Gateways: []gateway.GatewayRx{gw("0016c001f153a14c", -97, 4.25)}},
	},
	"chirpstack-v4/no-time-nstime": {
		DevEUI: mustEUI("0101010101010102"), DeviceName: "Device name", Profile: "Chirpstack default device profile",
		FPort: 2, FCnt: 4, HasFCnt: true, HasFPort: true, Payload: []byte{0, 4, 0x1d, 1, 0x89, 0, 0xf8, 0},
		Time: mustTime("2023-05-22T07:47:05.41Z"), ID: "6c2b8f0e-1111-4c3e-9d1a-0b5a2c9f3e21",
		Radio: gateway.Radio{Frequency: 868500000, DR: 5, SF: 7, Bandwidth: 125000,
			Gateways: []gateway.GatewayRx{gw("6a7e111a10000000", -35, 11.5), gw("6a7e111a10000001", -90, 2)}},
	},
	"chirpstack-v4/no-time-at-all": {
		DevEUI: mustEUI("0101010101010103"), DeviceName: "Test device", Profile: "Test device-profile",
		FPort: 1, HasFPort: true, Payload: []byte{0xaa},
		Time: testClock, LocalTime: true, ID: "7d3c9a1f-2222-4d4f-8e2b-1c6b3d0a4f32",
		Radio: gateway.Radio{Frequency: 867100000, DR: 1, SF: 11, Bandwidth: 125000,
			Gateways: []gateway.GatewayRx{gw("0016c001f153a14c", -36, 10.5)}},
	},
	"chirpstack-v4/defaults-omitted": {
		DevEUI: mustEUI("0101010101010104"), DeviceName: "Test device", Profile: "Test device-profile",
		Tags: map[string]string{"key": "value"}, FPort: 1, HasFPort: true, Payload: []byte{0xaa},
		Time: mustTime("2022-07-18T09:34:15.775023Z"), ID: "8e4dab20-3333-4e50-9f3c-2d7c4e1b5a43",
		Radio: gateway.Radio{Frequency: 868100000, DR: 0, SF: 12, Bandwidth: 125000,
			Gateways: []gateway.GatewayRx{gw("0016c001f153a14c", -36, -7)}},
	},
	"chirpstack-v3/json-docs-example": {
		DevEUI: mustEUI("0202020202020202"), DeviceName: "garden-sensor", Tags: map[string]string{"key": "value"},
		FPort: 5, FCnt: 10, HasFCnt: true, HasFPort: true, Payload: []byte{1, 2, 3},
		Object: map[string]any{"temperatureSensor": 25.0, "humiditySensor": 32.0},
		Time:   mustTime("2019-11-08T13:59:25.048445Z"), ID: "0202020202020202:10",
		Radio: gateway.Radio{Frequency: 868100000, DR: 1, SF: 11, Bandwidth: 125000,
			Gateways: []gateway.GatewayRx{gw("0303030303030303", -48, 9)}},
	},
	"chirpstack-v3/json-objectjson-two-gateways": {
		DevEUI: mustEUI("0202020202020203"), DeviceName: "park-sensor", Tags: map[string]string{"site": "park"},
		FPort: 2, FCnt: 0, HasFCnt: true, HasFPort: true, Payload: []byte{0, 0x67, 0, 0xff},
		Object: map[string]any{"temperatureSensor": map[string]any{"0": 25.5}, "nested": map[string]any{"a": []any{1.0, 2.0}}},
		Time:   mustTime("2019-11-08T13:59:25.048445Z"), ID: "0202020202020203:0",
		Radio: gateway.Radio{Frequency: 868100000, DR: 3, SF: 9, Bandwidth: 125000,
			Gateways: []gateway.GatewayRx{gw("0303030303030303", -48, 9), gw("0303030303030304", -101, -3.5)}},
	},
	"chirpstack-v3/json-v3-realistic": {
		DevEUI: mustEUI("0303030303030303"), DeviceName: "sk-elt-temp-16", Profile: "Elsys_Codec",
		Tags: map[string]string{"Location": "Vangen"}, FPort: 5, FCnt: 10301, HasFCnt: true, HasFPort: true,
		Payload: []byte{7, 0x0d, 0x8a, 0x0c, 0, 0xc1}, Object: map[string]any{"externalTemperature": 19.3, "vdd": 3466.0},
		Time: mustTime("2022-03-28T12:40:40.653515637Z"), ID: "0303030303030303:10301",
		Radio: gateway.Radio{Frequency: 867700000, DR: 5, Gateways: []gateway.GatewayRx{gw("b827ebfffe000047", -105, 8.5)}},
	},
	"chirpstack-v3/json-v3-upper-no-time": {
		DevEUI: mustEUI("030303030303030a"), DeviceName: "sk-elt-temp-17", Profile: "Elsys_Codec",
		FPort: 5, FCnt: 7, HasFCnt: true, HasFPort: true,
		Payload: []byte{7, 0x0d, 0x8a, 0x0c, 0, 0xc1}, Object: map[string]any{"externalTemperature": 19.3, "vdd": 3466.0},
		Time: testClock, LocalTime: true, ID: "030303030303030a:7",
		Radio: gateway.Radio{Frequency: 867700000, DR: 0,
			Gateways: []gateway.GatewayRx{gw("b827ebfffe000047", -105, 8.5), gw("SN-LGW-050", -99, -2)}},
	},
	"tts-v3/docs-example": {
		DevEUI: mustEUI("0004a30b001c0530"), DeviceName: "dev1", Profile: "the-things-products-the-things-uno",
		Tags: map[string]string{"key1": "value1", "key2": "value2"}, FCnt: 1, HasFCnt: true,
		Payload: []byte{0x82, 0x41, 0xde}, Object: map[string]any{"temperature": 1.0, "luminosity": 0.64},
		Time: mustTime("2020-02-12T15:15:45.789585559Z"), ID: "as:up:01E0WZGT6Y7657CPFPE5WEYDSQ",
		Radio: gateway.Radio{Frequency: 868300000, DR: -1, SF: 7, Bandwidth: 125000,
			Gateways: []gateway.GatewayRx{gw("9c5c8e00001a05c4", -35, 5)}},
	},
	"tts-v3/field-realistic": {
		DevEUI: mustEUI("1000000000000001"), DeviceName: "eui-1000000000000001",
		FPort: 2, FCnt: 10335, HasFCnt: true, HasFPort: true, Payload: []byte{0, 4, 0x1d, 1, 0x89, 0, 0xf8, 0},
		Time: mustTime("2023-05-19T05:33:35.641841782Z"), ID: "as:up:01H0S7ZJQ9MQPMVY49FT3SE07M",
		Radio: gateway.Radio{Frequency: 867100000, DR: -1, SF: 7, Bandwidth: 125000,
			Gateways: []gateway.GatewayRx{gw("6a7e111a10000000", -35, 13.2)}},
	},
	"tts-v3/decoded-normalized-two-gateways": {
		DevEUI: mustEUI("0101010101010105"), DeviceName: "uno-5", Profile: "the-things-products-the-things-node",
		Tags: map[string]string{"site": "harbour"}, FPort: 4, FCnt: 42, HasFCnt: true, HasFPort: true,
		Payload: []byte{0x0c, 0xb2, 0x04, 0x80, 0xf7, 0xae},
		Object: map[string]any{"battery": 3250.0, "event": "setup", "light": 1152.0,
			"recvTime": "Tue Jan 21 2025 17:56:54 GMT+0100 (CET)", "temperature": -21.3},
		Normalized: []map[string]any{{"air": map[string]any{"temperature": -21.3}}},
		Time:       mustTime("2023-05-19T05:33:35.641841782Z"), ID: "as:up:01HQ7ZJQ9MQPMVY49FT3SE0705",
		Radio: gateway.Radio{Frequency: 867300000, DR: -1, SF: 7, Bandwidth: 125000,
			Gateways: []gateway.GatewayRx{gw("6a7e111a10000000", -35, 13.2), gw("packetbroker", -118, -9.25)}},
	},
	"tts-v3/up-normalized": {
		DevEUI: mustEUI("0101010101010105"), DeviceName: "uno-5", Profile: "the-things-products-the-things-node",
		FPort: 4, FCnt: 42, HasFCnt: true, HasFPort: true, Payload: []byte{0x0c, 0xb2, 0x04, 0x80, 0xf7, 0xae},
		Normalized: []map[string]any{{"air": map[string]any{"temperature": -21.3}}},
		Time:       mustTime("2023-05-19T05:33:35.641841782Z"), ID: "as:up:01HQ7ZJQ9MQPMVY49FT3SE0705/normalized/1ac23a8197aa68aa",
		Radio: gateway.Radio{Frequency: 867300000, DR: -1, SF: 7, Bandwidth: 125000,
			Gateways: []gateway.GatewayRx{gw("6a7e111a10000000", -35, 13.2)}},
	},
	"tts-v3/minimal-lower-no-fcnt": {
		DevEUI: mustEUI("0101010101010106"), DeviceName: "eui-0101010101010106", Payload: []byte{0},
		Time: mustTime("2024-01-02T03:04:05.678Z"), ID: "0101010101010106:0",
		Radio: gateway.Radio{Frequency: 868100000, DR: -1, SF: 9, Bandwidth: 125000,
			Gateways: []gateway.GatewayRx{{ID: "a84041fffe000001", RSSI: -70}}},
	},
	"chirpstack-v4/cayenne-unix-time": {
		DevEUI: mustEUI("0101010101010109"), DeviceName: "logger-unix-time", Profile: "Cayenne logger",
		FPort: 2, FCnt: 12, HasFCnt: true, HasFPort: true,
		Payload: []byte{0x01, 0x85, 0x67, 0xce, 0x9c, 0x00, 0x03, 0x67, 0x00, 0xe1, 0x05, 0x68, 0x50},
		Time:    mustTime("2025-03-10T08:15:30.25Z"), ID: "c4e1a7d0-1331-4a8f-9e0b-6b1f0e2d0109",
		Radio: gateway.Radio{Frequency: 868100000, DR: 5, SF: 7, Bandwidth: 125000,
			Gateways: []gateway.GatewayRx{gw("0016c001f153a14c", -91, 6.5)}},
	},
	"tts-v3/normalized-per-record-time": {
		DevEUI: mustEUI("010101010101010b"), DeviceName: "soil-11", Profile: "acme-soil-logger",
		Tags: map[string]string{"site": "park-7"}, FPort: 10, FCnt: 311, HasFCnt: true, HasFPort: true,
		Payload: []byte{1, 2, 3, 4, 5, 6},
		Object:  map[string]any{"readings": []any{map[string]any{"t": 8.25, "m": 31.5}, map[string]any{"t": 8.5, "m": 31.0}}, "battery": 3.61},
		Normalized: []map[string]any{
			{"time": "2025-03-10T08:30:00Z", "soil": map[string]any{"temperature": 8.25, "moisture": 31.5, "depth": 20.0}},
			{"time": "2025-03-10T08:45:00+00:00", "soil": map[string]any{"temperature": 8.5, "moisture": 31.0, "depth": 20.0}},
			{"battery": 3.61},
		},
		Time: mustTime("2025-03-10T09:00:00.901Z"), ID: "as:up:01JNZ3K8Q4T5V6W7X8Y9Z0A1B2",
		Radio: gateway.Radio{Frequency: 868500000, DR: -1, SF: 9, Bandwidth: 125000,
			Gateways: []gateway.GatewayRx{gw("6a7e111a10000000", -101, 3.5)}},
	},
	"chirpstack-v4/status-docs-example": {
		Kind: gateway.KindStatus, DevEUI: mustEUI("0101010101010101"), DeviceName: "Test device", Profile: "Test device-profile",
		Status: &gateway.DeviceStatus{BatteryLevel: 88.3, HasBatteryLevel: true, Margin: 10, HasMargin: true},
		Time:   mustTime("2022-07-18T09:35:06.927172638Z"), ID: "bf2a9746-1c8b-49be-a92e-f0b89c8534e4",
	},
	"chirpstack-v4/status-external-power": {
		Kind: gateway.KindStatus, DevEUI: mustEUI("010101010101010a"), DeviceName: "harbour-multi-gw", Profile: "Milesight AM307",
		Status: &gateway.DeviceStatus{Margin: -3, HasMargin: true, ExternalPower: true},
		Time:   mustTime("2024-03-05T11:22:40.5Z"), ID: "0d8f6b2e-6f0a-4f3e-9d55-2b1c2f1e7a01",
	},
	"chirpstack-v4/join-docs-example": {
		Kind: gateway.KindEvent, DevEUI: mustEUI("0101010101010101"), DeviceName: "Test device", Profile: "Test device-profile",
		Tags:  map[string]string{"key": "value"},
		Event: &gateway.DeviceEvent{Type: gateway.EventJoin, DevAddr: "00189440"},
		Time:  mustTime("2022-07-18T09:33:28.823500726Z"), ID: "c9dbe358-2578-4fb7-b295-66b44edc45a6",
	},
	"chirpstack-v4/log-docs-example": {
		Kind: gateway.KindEvent, DevEUI: mustEUI("0101010101010101"), DeviceName: "Test device", Profile: "Test device-profile",
		Tags: map[string]string{"key": "value"},
		Event: &gateway.DeviceEvent{Type: gateway.EventLog, Level: gateway.LevelError, Code: "uplink_mic",
			Description: "MIC of join-request is invalid, make sure keys are correct"},
		Time: mustTime("2022-07-18T09:39:57.311414029Z"),
	},
	"chirpstack-v4/log-uplink-codec": {
		Kind: gateway.KindEvent, DevEUI: mustEUI("010101010101010a"), DeviceName: "harbour-multi-gw", Profile: "Milesight AM307",
		Event: &gateway.DeviceEvent{Type: gateway.EventLog, Level: gateway.LevelError, Code: "uplink_codec",
			Description: "Error: Invalid payload length at decodeUplink (eval_script:12:11)"},
		Time: mustTime("2024-03-05T11:22:40.9Z"),
	},
	"chirpstack-v4/log-codec-unknown-code": {
		Kind: gateway.KindEvent, DevEUI: mustEUI("010101010101010a"), DeviceName: "harbour-multi-gw", Profile: "Milesight AM307",
		Event: &gateway.DeviceEvent{Type: gateway.EventLog, Level: gateway.LevelWarning, Code: "other",
			Description: "a code this sensorgate does not know yet: written as code=other"},
		Time: mustTime("2024-03-05T11:22:41.25Z"),
	},
	"chirpstack-v4/ack-docs-example": {Kind: gateway.KindIgnored},
	"tts-v3/join-docs-example": {
		Kind: gateway.KindEvent, DevEUI: mustEUI("4200000000000000"), DeviceName: "dev1",
		Event: &gateway.DeviceEvent{Type: gateway.EventJoin, DevAddr: "01da1f15"},
		Time:  testClock, LocalTime: true, ID: "as:up:01D2CT83AXQFQYQ35SR74CTWKH",
	},
	"tts-v3/join-received-at": {
		Kind: gateway.KindEvent, DevEUI: mustEUI("0004a30b001c0530"), DeviceName: "dev1",
		Event: &gateway.DeviceEvent{Type: gateway.EventJoin, DevAddr: "00bcb929"},
		Time:  mustTime("2020-02-12T15:15:46Z"),
	},
	"tts-v3/downlink-queued": {Kind: gateway.KindIgnored},
	"json/rfc3339": {
		DevEUI: mustEUI("0101010101010107"),
		Object: map[string]any{"temperature": 21.5, "humidity": 40.0, "door": true, "probe": map[string]any{"t": 12.25}},
		Time:   mustTime("2024-06-01T10:00:00.5Z"), ID: "0101010101010107:1717236000500000000",
		Radio: gateway.Radio{DR: -1},
	},
	"json/no-time": {
		DevEUI: mustEUI("0101010101010107"), Object: map[string]any{"temperature": 20.0},
		Time: testClock, LocalTime: true, ID: "0101010101010107:1735689600000000000", Radio: gateway.Radio{DR: -1},
	},
	"json-unix-ms/unix-ms": {
		DevEUI: mustEUI("01010101010101ab"),
		Object: map[string]any{"meta": map[string]any{"eui": "01010101010101AB", "t": 1717243200123.0}, "laeq": 61.2, "lamax": 78.9},
		Time:   mustTime("2024-06-01T12:00:00.123Z"), ID: "01010101010101ab:1717243200123000000", Radio: gateway.Radio{DR: -1},
	},
}

// TestParseFeeds checks the exact uplink of every valid file in
// testdata/feeds, and that none is left without an expectation.
func TestParseFeeds(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range loadFeeds(t, "") {
		t.Run(f.Name, func(t *testing.T) {
			seen[f.Name] = true
			want, ok := wantFeeds[f.Name]
			if !ok {
				t.Fatalf("no expectation for %s: add it to wantFeeds", f.Name)
			}
			got, err := f.Parser.Parse(f.Topic, f.Payload)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !bytes.Equal(got.Raw, f.Payload) {
				t.Errorf("Raw is not the message bytes")
			}
			want.Source, want.Topic, want.Raw = "test", f.Topic, got.Raw
			assertUplink(t, got, want)
		})
	}
	for name := range wantFeeds {
		if !seen[name] {
			t.Errorf("expectation %s has no file in testdata/feeds", name)
		}
	}
}

// wantBad is a part of the error each malformed file must produce: the
// operator has to see which field is wrong.
var wantBad = map[string]string{
	"chirpstack-v4/invalid-json":                "chirpstack-v4: not a ChirpStack v4 uplink event (JSON encoding): invalid JSON",
	"chirpstack-v4/bad-base64":                  `chirpstack-v4: data "qg=!": not base64`,
	"chirpstack-v4/bad-eui":                     `chirpstack-v4: deviceInfo.devEui: devices: invalid EUI "xyz"`,
	"chirpstack-v4/fcnt-not-number":             `chirpstack-v4: fCnt: want a number, got "ten"`,
	"chirpstack-v4/deviceinfo-wrong-type":       "deviceInfo: want an object, got a JSON string",
	"chirpstack-v4/missing-eui":                 "chirpstack-v4: deviceInfo.devEui missing",
	"chirpstack-v4/bad-time":                    `chirpstack-v4: time "yesterday": not an RFC 3339 time`,
	"chirpstack-v4/fport-out-of-range":          "fPort: want an integer from 0 to 255, got 300",
	"chirpstack-v3/short-base64-eui":            `chirpstack-v3: devEUI "AgICAg==": devices: invalid EUI`,
	"chirpstack-v3/bad-objectjson":              "chirpstack-v3: objectJSON",
	"chirpstack-v3/bad-gateway-id":              `rxInfo[0].gatewayID "not-a-gateway"`,
	"chirpstack-v3/empty":                       "chirpstack-v3: empty message",
	"tts-v3/join-accept-null":                   "tts-v3: join_accept is null",
	"chirpstack-v4/status-battery-out-of-range": "chirpstack-v4: batteryLevel 254: want a percentage, 0 to 100",
	"chirpstack-v4/join-bad-devaddr":            `chirpstack-v4: devAddr: `,
	"tts-v3/bad-frequency":                      `uplink_message.settings.frequency: want a number, got "868.3MHz"`,
	"tts-v3/bad-gateway-eui":                    `uplink_message.rx_metadata[0].gateway_ids.eui: devices: invalid EUI "9C5C8E00001A05"`,
	"tts-v3/normalized-wrong-type":              "uplink_message.normalized_payload: want an array",
	"tts-v3/array":                              "the message: want an object, got a JSON array",
	"json/array":                                "json: not a JSON object",
	"json/bad-time":                             `json: time "ts": got the number 1717243200 but json.time_format is rfc3339`,
	"json/object-not-object":                    `json: object "values": want a JSON object, got an array`,
	"json/topic-too-short":                      `topic "sensors" has no segment 1`,
	"json/trailing-data":                        "more data after the first JSON value",
	"chirpstack-v4/zero-time":                   "chirpstack-v4: time 0001-01-01T00:00:00Z: outside 1970..2262",
	"chirpstack-v4/device-mismatch":             "the topic names device 0101010101010101, the message 0101010101010102",
	"tts-v3/device-mismatch":                    `the topic names device_id "dev2", end_device_ids.device_id "dev1"`,
	"tts-v3/pre-1970":                           "uplink_message.received_at 1969-07-20T20:17:40Z: outside 1970..2262",
	"json/zero-time":                            `json: time "ts" 0001-01-01T00:00:00Z: outside 1970..2262`,
}

// wantBadReason is the dead-letter reason of files in wantBad that are
// not malformed.
var wantBadReason = map[string]gateway.Reason{
	"chirpstack-v4/zero-time":       gateway.ReasonBadTime,
	"tts-v3/pre-1970":               gateway.ReasonBadTime,
	"json/zero-time":                gateway.ReasonBadTime,
	"chirpstack-v4/device-mismatch": gateway.ReasonDeviceMismatch,
	"tts-v3/device-mismatch":        gateway.ReasonDeviceMismatch,
}

// TestParseBadFeeds checks that every file in testdata/feeds/bad fails with
// a message naming the problem.
func TestParseBadFeeds(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range loadFeeds(t, "bad") {
		t.Run(f.Name, func(t *testing.T) {
			seen[f.Name] = true
			if wantEncrypted[f.Name] {
				up, err := f.Parser.Parse(f.Topic, f.Payload)
				if err != nil || !up.Encrypted {
					t.Fatalf("Parse = %v, Encrypted %v: want an uplink marked encrypted (the pipeline dead-letters it)", err, up.Encrypted)
				}
				return
			}
			want, ok := wantBad[f.Name]
			if !ok {
				t.Fatalf("no expectation for %s: add it to wantBad", f.Name)
			}
			up, err := f.Parser.Parse(f.Topic, f.Payload)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", up)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q\ndoes not contain %q", err, want)
			}
			reason := wantBadReason[f.Name]
			if reason == "" {
				reason = gateway.ReasonMalformed
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Reason != reason {
				t.Errorf("error %T %v: want a *ParseError of reason %s", err, err, reason)
			}
		})
	}
	for name := range wantBad {
		if !seen[name] {
			t.Errorf("expectation %s has no file in testdata/feeds/bad", name)
		}
	}
}

// wantEncrypted are files under testdata/feeds/bad that parse, marked
// encrypted, and are bad only because no registry holds their AppSKey:
// the pipeline dead-letters them (the golden test shows it).
var wantEncrypted = map[string]bool{"chirpstack-v4/encrypted": true}

// TestEncryptedMarked: a payload the network server forwarded encrypted
// is passed on marked, with the DevAddr the pipeline decrypts it with.
func TestEncryptedMarked(t *testing.T) {
	cs, _ := NewParser(Config{Name: "test", Format: FormatChirpStackV4}, nil)
	tts, _ := NewParser(Config{Name: "test", Format: FormatTTSV3}, nil)
	addr := devices.DevAddr{0x26, 0x0b, 0xcb, 0x29}
	tests := []struct {
		name    string
		p       *Parser
		msg     string
		want    devices.DevAddr
		wantErr string
	}{
		{"chirpstack-v4 join server", cs, string(feedPayload(t, "bad/chirpstack-v4/encrypted")), devices.DevAddr{0x00, 0x18, 0x94, 0x40}, ""},
		{"chirpstack-v4 without devAddr", cs, `{"deviceInfo":{"devEui":"0101010101010101"},"fCnt":3,"fPort":2,"data":"AA==","joinServerContext":{"appSKey":{"aesKey":"AA=="}}}`, devices.DevAddr{}, ""},
		{"chirpstack-v4 bad devAddr", cs, `{"deviceInfo":{"devEui":"0101010101010101"},"devAddr":"xyz","data":"AA==","joinServerContext":{"appSKey":{"aesKey":"AA=="}}}`, devices.DevAddr{}, `chirpstack-v4: devAddr: devices: invalid DevAddr "xyz"`},
		{"tts skip_payload_crypto", tts, `{"end_device_ids":{"dev_eui":"0101010101010101","dev_addr":"260BCB29"},"uplink_message":{"f_port":2,"f_cnt":9,"frm_payload":"AA==","app_s_key":{"encrypted_key":"AAAA"}}}`, addr, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, err := tt.p.Parse("t", []byte(tt.msg))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want …%s…", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !up.Encrypted || up.DevAddr != tt.want || len(up.Payload) == 0 || !up.HasFCnt && tt.p == tts {
				t.Fatalf("Encrypted %v DevAddr %s Payload %x HasFCnt %v; want marked with DevAddr %s", up.Encrypted, up.DevAddr, up.Payload, up.HasFCnt, tt.want)
			}
		})
	}
	// Without a join-server key, nothing is marked.
	up, err := cs.Parse("t", feedPayload(t, "chirpstack-v4/docs-example"))
	if err != nil || up.Encrypted {
		t.Fatalf("docs example: %v, Encrypted %v", err, up.Encrypted)
	}
}

// TestParseInline covers variants too small to deserve a feed file, or
// that name devices without an EUI (the feed files all carry one).
func TestParseInline(t *testing.T) {
	type tc struct {
		name    string
		cfg     Config
		topic   string
		payload string
		check   func(t *testing.T, up gateway.Uplink)
		wantErr string
	}
	v4 := Config{Format: FormatChirpStackV4}
	v3 := Config{Format: FormatChirpStackV3}
	tts := Config{Format: FormatTTSV3}
	js := func(j JSONConfig) Config { return Config{Format: FormatJSON, JSON: j} }
	cases := []tc{
		{name: "v4 numbers as strings, rxInfo time only", cfg: v4,
			payload: `{"deviceInfo":{"devEui":"0101010101010101"},"fCnt":"7","fPort":"3","dr":"2","data":"AQ","rxInfo":[{"gatewayId":"0101010101010102","time":"2024-01-01T00:00:02Z","rssi":"-50","snr":"1.5"},{"gatewayId":"0101010101010103","time":"2024-01-01T00:00:01Z","rssi":-60}],"txInfo":{"frequency":"868100000"}}`,
			check: func(t *testing.T, up gateway.Uplink) {
				want := gateway.Uplink{DevEUI: mustEUI("0101010101010101"), FCnt: 7, FPort: 3, HasFCnt: true, HasFPort: true,
					Payload: []byte{1}, Time: mustTime("2024-01-01T00:00:01Z"), ID: "0101010101010101:7",
					Radio: gateway.Radio{Frequency: 868100000, DR: 2, Gateways: []gateway.GatewayRx{
						gw("0101010101010102", -50, 1.5), {ID: "0101010101010103", RSSI: -60}}}}
				want.Source, want.Topic, want.Raw = up.Source, up.Topic, up.Raw
				assertUplink(t, up, want)
			}},
		{name: "v4 EUI with dashes", cfg: v4, payload: `{"deviceInfo":{"devEui":"01-01-01-01-01-01-01-0A"},"time":"2024-01-01T00:00:00Z"}`,
			check: func(t *testing.T, up gateway.Uplink) {
				if up.DevEUI != mustEUI("010101010101010a") {
					t.Errorf("DevEUI = %s", up.DevEUI)
				}
			}},
		{name: "v4 joinServerContext without appSKey is fine", cfg: v4,
			payload: `{"deviceInfo":{"devEui":"0101010101010101"},"time":"2024-01-01T00:00:00Z","joinServerContext":{"sessionKeyId":"AQID"}}`,
			check:   func(t *testing.T, up gateway.Uplink) {}},
		{name: "v4 fractional fCnt", cfg: v4, payload: `{"deviceInfo":{"devEui":"0101010101010101"},"fCnt":1.5}`, wantErr: "fCnt: want an integer"},
		{name: "v4 object is not an object", cfg: v4, payload: `{"deviceInfo":{"devEui":"0101010101010101"},"object":[1]}`, wantErr: "object: want an object, got a JSON array"},
		{name: "v4 bad gateway", cfg: v4, payload: `{"deviceInfo":{"devEui":"0101010101010101"},"rxInfo":[{"gatewayId":"zz"}]}`, wantErr: "rxInfo[0].gatewayId"},
		{name: "v4 spreading factor out of range", cfg: v4, payload: `{"deviceInfo":{"devEui":"0101010101010101"},"txInfo":{"modulation":{"lora":{"spreadingFactor":99}}}}`, wantErr: "spreadingFactor: want an integer from 0 to 12"},
		{name: "v4 null", cfg: v4, payload: `null`, wantErr: "deviceInfo.devEui missing"},
		{name: "v3 object preferred over objectJSON", cfg: v3,
			payload: `{"devEUI":"0101010101010101","object":{"a":1},"objectJSON":"{\"b\":2}","fCnt":3}`,
			check: func(t *testing.T, up gateway.Uplink) {
				if !reflect.DeepEqual(up.Object, map[string]any{"a": 1.0}) || up.Radio.DR != -1 || !up.LocalTime || up.ID != "0101010101010101:3" {
					t.Errorf("got %+v", up)
				}
			}},
		{name: "v3 objectJSON not an object", cfg: v3, payload: `{"devEUI":"0101010101010101","objectJSON":"[1]"}`, wantErr: "objectJSON"},
		{name: "v3 missing EUI", cfg: v3, payload: `{"fCnt":1}`, wantErr: "devEUI missing"},
		{name: "tts ABP device without dev_eui is named by device_id", cfg: tts,
			payload: `{"end_device_ids":{"device_id":"abp-7"},"uplink_message":{"f_cnt":9,"frm_payload":"AA=="}}`,
			check: func(t *testing.T, up gateway.Uplink) {
				if !up.DevEUI.IsZero() || up.DeviceName != "abp-7" || up.ID != "abp-7:9" || !up.LocalTime {
					t.Errorf("got %+v", up)
				}
			}},
		{name: "tts no device at all", cfg: tts, payload: `{"uplink_message":{}}`, wantErr: "end_device_ids.dev_eui missing"},
		{name: "tts data_rate_index and brand only", cfg: tts,
			payload: `{"end_device_ids":{"dev_eui":"0101010101010101"},"uplink_message":{"settings":{"data_rate_index":5},"version_ids":{"brand_id":"acme"}}}`,
			check: func(t *testing.T, up gateway.Uplink) {
				if up.Radio.DR != 5 || up.Profile != "acme" {
					t.Errorf("got DR %d profile %q", up.Radio.DR, up.Profile)
				}
			}},
		{name: "json device name, unix seconds with fraction", cfg: js(JSONConfig{DeviceID: "id", Time: "t", TimeFormat: TimeUnix, Object: "v"}),
			payload: `{"id":"kerb-12","t":1717243200.25,"v":{"x":1}}`,
			check: func(t *testing.T, up gateway.Uplink) {
				want := gateway.Uplink{DeviceName: "kerb-12", Object: map[string]any{"x": 1.0},
					Time: mustTime("2024-06-01T12:00:00.25Z"), ID: "kerb-12:1717243200250000000", Radio: gateway.Radio{DR: -1}}
				want.Source, want.Topic, want.Raw = up.Source, up.Topic, up.Raw
				assertUplink(t, up, want)
			}},
		{name: "json numeric device id, unix_ns exact, string time", cfg: js(JSONConfig{DeviceID: "a.id", Time: "a.t", TimeFormat: TimeUnixNS}),
			payload: `{"a":{"id":42,"t":"1717243200123456789"}}`,
			check: func(t *testing.T, up gateway.Uplink) {
				if up.DeviceName != "42" || up.Time.UnixNano() != 1717243200123456789 || up.ID != "42:1717243200123456789" {
					t.Errorf("got %+v", up)
				}
			}},
		{name: "json dotted key matched whole", cfg: js(JSONConfig{DeviceID: "dev.eui"}), payload: `{"dev.eui":"0101010101010101"}`,
			check: func(t *testing.T, up gateway.Uplink) {
				if up.DevEUI != mustEUI("0101010101010101") || !up.LocalTime {
					t.Errorf("got %+v", up)
				}
			}},
		{name: "json topic segment", cfg: js(JSONConfig{DeviceID: "topic:2"}), topic: "a/b/0101010101010101", payload: `{}`,
			check: func(t *testing.T, up gateway.Uplink) {
				if up.DevEUI != mustEUI("0101010101010101") {
					t.Errorf("got %+v", up)
				}
			}},
		{name: "json device id missing", cfg: js(JSONConfig{DeviceID: "id"}), payload: `{"x":1}`, wantErr: `device id "id": not in the message`},
		{name: "json device id empty", cfg: js(JSONConfig{DeviceID: "id"}), payload: `{"id":""}`, wantErr: "want a non-empty string"},
		{name: "json time out of range", cfg: js(JSONConfig{DeviceID: "id", Time: "t", TimeFormat: TimeUnix}), payload: `{"id":"a","t":99999999999999}`, wantErr: "outside 1970..2262"},
		{name: "json time huge float", cfg: js(JSONConfig{DeviceID: "id", Time: "t", TimeFormat: TimeUnixMS}), payload: `{"id":"a","t":1e300}`, wantErr: "out of range"},
		{name: "json time wrong type", cfg: js(JSONConfig{DeviceID: "id", Time: "t"}), payload: `{"id":"a","t":true}`, wantErr: "want a string or number"},
		{name: "json object path missing", cfg: js(JSONConfig{DeviceID: "id", Object: "v"}), payload: `{"id":"a"}`, wantErr: `object "v": not in the message`},
		{name: "json number out of float range", cfg: js(JSONConfig{DeviceID: "id"}), payload: `{"id":"a","v":[1e999]}`, wantErr: "out of range"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Name = "test"
			p, err := NewParser(c.cfg, func() time.Time { return testClock })
			if err != nil {
				t.Fatal(err)
			}
			up, err := p.Parse(c.topic, []byte(c.payload))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, up)
		})
	}
}

func TestNewParserRejectsBadConfig(t *testing.T) {
	for _, c := range []Config{
		{Format: "chirpstack-v5"},
		{Format: FormatJSON},
		{Format: FormatJSON, JSON: JSONConfig{DeviceID: "topic:x"}},
		{Format: FormatJSON, JSON: JSONConfig{DeviceID: "id", TimeFormat: "iso"}},
	} {
		if _, err := NewParser(c, nil); err == nil {
			t.Errorf("NewParser(%+v) succeeded", c)
		}
	}
}

// assertUplink compares field by field, so a failure says which field.
func assertUplink(t *testing.T, got, want gateway.Uplink) {
	t.Helper()
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range gv.NumField() {
		name := gv.Type().Field(i).Name
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		if name == "Time" {
			if !got.Time.Equal(want.Time) || got.Time.Location() != time.UTC {
				t.Errorf("Time = %v, want %v in UTC", got.Time, want.Time)
			}
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s = %s\nwant %s", name, show(g), show(w))
		}
	}
}

func show(v any) string { return strings.ReplaceAll(fmt.Sprintf("%#v", v), "gateway.", "") }

// TestFieldKey: a key selects a field as encoding/json selects a struct
// field: the exact name first, else the one equal under Unicode case
// folding, also through runes that fold to ASCII.
func TestFieldKey(t *testing.T) {
	names := []string{"time", "Time2", "rssi", "spreadingFactor", "s"}
	for _, tt := range []struct{ key, want string }{
		{"time", "time"},
		{"TIME", "time"},
		{"tImE", "time"},
		{"time2", "Time2"},
		{"rssi", "rssi"},
		{"RSSI", "rssi"},
		{"rſſi", "rssi"}, // U+017F LATIN SMALL LETTER LONG S folds to s
		{"ſ", "s"},
		{"spreading\u212aactor", ""}, // KELVIN SIGN folds to k, not f
		{"spreadingfactor", "spreadingFactor"},
		{"\u212a", ""},
		{"snr", ""},
		{"", ""},
		{"times", ""},
		{"tim", ""},
	} {
		if got := fieldKey(tt.key, names...); got != tt.want {
			t.Errorf("fieldKey(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
	// The Kelvin sign selects a field with a k.
	if got := fieldKey("\u212aey", "key", "other"); got != "key" {
		t.Errorf("fieldKey(KELVIN SIGN + ey) = %q, want key", got)
	}
	// An exact name wins over one that only folds to the key.
	if got := fieldKey("Time", "time", "Time"); got != "Time" {
		t.Errorf("fieldKey(Time) = %q, want the exact Time", got)
	}
}
