package mqtt

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// The scanner-based parsers must agree with the encoding/json ones they
// replaced (reference_test.go) on every input: the same error text, or the
// same uplink. The seeds run as a test on every `go test`; run the
// fuzzers for more (go test -fuzz FuzzDiffChirpStackV4 ./gateway/mqtt).

// diffSeeds are inputs where the two could plausibly part: encoding/json's
// rules for repeated keys, null, case-folded keys, escapes, invalid UTF-8,
// nesting depth and type errors.
var diffSeeds = []string{
	``, ` `, `{`, `}`, `[]`, `null`, `true`, `1`, `"x"`, `{}`, `{} x`, `{}{}`, "{}\n", "\ufeff{}", `{"a":1,}`, `{"a" 1}`, `{,}`, `{"a":}`,
	`{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`, `{"a":.5}`, `{"a":1e+5}`, `{"a":-0.0E-0}`, `{"a":tru}`, `{"a":nul}`, `{"a":[1,]}`,
	`{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12G4"}`, "{\"a\":\"\t\"}", `{"a":"\'"}`, `{"a":1e999}`, `{"a":"` + "\xff" + `"}`,
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	`{"x":` + strings.Repeat(`{"a":`, 10000) + `1` + strings.Repeat(`}`, 10000) + `}`,
}

// csV4Seeds exercise the fields ChirpStack v4 reads.
var csV4Seeds = []string{
	`{"deviceInfo":{"devEui":"0101010101010101"},"time":"2024-01-01T00:00:00Z"}`,
	`{"DEVICEINFO":{"DevEUI":"0101010101010101"},"TIME":"2024-01-01T00:00:00Z","fcnt":3,"FPORT":2}`,
	`{"deviceInfo":{"dev\u0045ui":"0101010101010101"},"tim\u0065":"2024-01-01T00:00:00Z"}`,
	"{\"deviceInfo\":{\"devEui\":\"0101010101010101\"},\"devAddr\":\"01020304\",\"data\":\"AA==\",\"join\u017fERVERCONTEXT\":{\"appS\u212aey\":1}}",
	`{"deviceInfo":{"devEui":"0101010101010101"},"devAddr":"01020304","data":"AA==","join\u017ferverContext":{"appS\u212aey":1}}`,
	"{\"deviceInfo\":{\"devEui\":\"0101010101010101\",\"tags\":{\"\u212aey\":\"v\"}},\"rxInfo\":[{\"r\u017f\u017fi\":-3}]}",
	`{"deviceInfo":{"devEui":"0101010101010101","tags":{"a":"1"}},"deviceInfo":{"tags":{"b":"2"}}}`,
	`{"deviceInfo":{"devEui":"0101010101010101","tags":{"a":"1"}},"deviceInfo":{"tags":null}}`,
	`{"deviceInfo":{"devEui":"0101010101010101","tags":{"a":null}}}`,
	`{"deviceInfo":{"devEui":"0101010101010101","tags":{"a":1}}}`,
	`{"deviceInfo":{"devEui":"0101010101010101","tags":[]}}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"deviceInfo":null,"fCnt":5,"fCnt":null}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"fCnt":"x","fCnt":5}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"fCnt":{"a":1}}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"fCnt":"\u0035"}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"object":{"a":1},"object":{"b":[1,"x",true,null,{}]}}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"object":{"a":1},"object":null}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"object":{"a":1e999}}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"object":{"a":{"b":[1e999]}}}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"object":"x","deviceInfo":7}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"object":"x","time":[}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"rxInfo":[{"gatewayId":"0101010101010102","rssi":-1,"snr":2},{"gatewayId":"0101010101010103"}],"rxInfo":[{"rssi":-5}]}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"rxInfo":[{"gatewayId":"0101010101010102"},{"gatewayId":"0101010101010103"}],"rxInfo":[null],"rxInfo":[null,null]}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"rxInfo":[{"gatewayId":"0101010101010102"}],"rxInfo":[],"rxInfo":[null]}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"rxInfo":[{"gatewayId":"0101010101010102"}],"rxInfo":null}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"rxInfo":{}}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"rxInfo":[1]}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"rxInfo":[{"gatewayId":5}]}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"rxInfo":[{"nsTime":"2024-01-01T00:00:02Z","time":"x"},{"nsTime":"2024-01-01T00:00:01Z"}]}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"rxInfo":[{"time":"2024-01-01T00:00:02Z"},{"nsTime":"bad"}]}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"txInfo":{"frequency":868100000,"modulation":{"lora":{"bandwidth":125000,"spreadingFactor":7}}}}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"txInfo":{"modulation":{"lora":{"bandwidth":125000}}},"txInfo":{"modulation":{"lora":{"spreadingFactor":9}}}}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"txInfo":{"modulation":{"lora":{"spreadingFactor":9}}},"txInfo":{"modulation":{"lora":null}}}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"txInfo":{"modulation":{"lora":"x"}}}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"txInfo":[]}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"devAddr":"01020304","data":"AA==","fCnt":1,"joinServerContext":{"appSKey":null}}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"devAddr":"01020304","data":"AA==","fCnt":1,"joinServerContext":{"appSKey":{"kekLabel":"","aesKey":"AA=="}}}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"data":"AA==","joinServerContext":{"appSKey":""},"joinServerContext":null}`,
	`{"deviceInfo":{"devEui":"0101010101010101"},"joinServerContext":[]}`,
	`{"deviceInfo":{"devEui":"0101010101010101","deviceName":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00\ud800x\udc00\ud800\u0041"}}`,
	"{\"deviceInfo\":{\"devEui\":\"0101010101010101\",\"deviceName\":\"\xed\xa0\x80 \xc3\x28 \xf0\x9f\x98\"}}",
	`{"deviceInfo":{"devEui":"0101010101010101","deviceName":1}}`,
	`{"deviceInfo":{"devEui":"0101010101010101","deviceName":true}}`,
	`{"deviceInfo":{"devEui":"0101010101010101","deviceName":null}}`,
	`{"deduplicationId":"x","deduplicationId":"y","deviceInfo":{"devEui":"0101010101010101"}}`,
}

// ttsSeeds exercise the fields The Things Stack reads.
var ttsSeeds = []string{
	`{"end_device_ids":{"dev_eui":"0101010101010101"},"uplink_message":{"f_cnt":1,"frm_payload":"AA==","received_at":"2024-01-01T00:00:00Z"}}`,
	`{"end_device_ids":{"dev_eui":"0101010101010101"},"uplink_message":null,"uplink_normalized":{"normalized_payload":{"air":{"temperature":1}}},"correlation_ids":["as:up:1"]}`,
	`{"end_device_ids":{"dev_eui":"0101010101010101"},"uplink_message":{"normalized_payload":[{"air":{"temperature":1}},null]}}`,
	`{"end_device_ids":{"dev_eui":"0101010101010101"},"uplink_message":{"normalized_payload":[1]}}`,
	`{"end_device_ids":{"dev_eui":"0101010101010101"},"uplink_message":{"normalized_payload":"x"}}`,
	`{"end_device_ids":{"dev_eui":"0101010101010101"},"uplink_message":{"normalized_payload":[]}}`,
	`{"end_device_ids":{"dev_eui":"0101010101010101"},"uplink_message":{"normalized_payload":{"a":1e999}}}`,
	`{"end_device_ids":{"dev_eui":"0101010101010101"},"uplink_message":{"normalized_payload":[{"a":[1e999]}]}}`,
	`{"end_device_ids":{"dev_eui":"0101010101010101"},"uplink_message":{"normalized_payload":  {"a":1}  }}`,
	`{"end_device_ids":{"dev_eui":"0101010101010101"},"uplink_message":{"decoded_payload":{"a":1e999}}}`,
	`{"end_device_ids":{"dev_eui":"0101010101010101"},"uplink_message":{"settings":{"frequency":"868100000","data_rate":{"lora":{"spreading_factor":7,"bandwidth":125000}},"data_rate_index":5}}}`,
	`{"end_device_ids":{"dev_eui":"0101010101010101"},"uplink_message":{"settings":[]}}`,
	`{"end_device_ids":{"dev_eui":"0101010101010101"},"uplink_message":{"version_ids":{"brand_id":1}}}`,
	`{"end_device_ids":{"dev_eui":"0101010101010101"},"uplink_message":{"attributes":{"a":"b"}},"uplink_message":{"attributes":{"c":"d"},"f_port":3}}`,
	`{"end_device_ids":{"dev_eui":"0101010101010101"},"uplink_message":{"rx_metadata":[{"gateway_ids":{"gateway_id":"gw","eui":"0101010101010102"},"channel_rssi":-5,"snr":1}]}}`,
	`{"end_device_ids":{"dev_eui":"0101010101010101"},"uplink_message":{"rx_metadata":[{"gateway_ids":{"gateway_id":"gw"},"rssi":"x"}]}}`,
	`{"end_device_ids":{"device_id":"abp"},"uplink_message":{"f_cnt":9},"correlation_ids":["as:up:a","as:up:b"],"correlation_ids":["x"],"correlation_ids":[null,null]}`,
	`{"end_device_ids":{"device_id":"abp"},"uplink_message":{},"correlation_ids":"as:up:a"}`,
	`{"end_device_ids":{"device_id":"abp"},"uplink_message":{},"correlation_ids":[1]}`,
	`{"end_device_ids":{"dev_eui":"0101010101010101","dev_addr":"01020304"},"uplink_message":{"f_cnt":2,"frm_payload":"AA==","app_s_key":{"key":"x"}}}`,
	`{"end_device_ids":{"dev_eui":"0101010101010101"},"uplink_message":{"app_s_key":null,"frm_payload":"AA=="}}`,
	`{"end_device_ids":{"dev_eui":"0101010101010101"},"uplink_message":7}`,
	`{"end_device_ids":{"dev_eui":"0101010101010101"},"UPLINK_MESSAGE":{"F_CNT":4},"received_at":"2024-01-01T00:00:00Z"}`,
	`{"end_device_ids":"x"}`,
}

func FuzzDiffChirpStackV4(f *testing.F) {
	fuzzDiff(f, FormatChirpStackV4, refParseChirpStackV4, "chirpstack-v4", csV4Seeds)
}

func FuzzDiffTTS(f *testing.F) {
	fuzzDiff(f, FormatTTSV3, refParseTTS, "tts-v3", ttsSeeds)
}

// fuzzDiff checks that format's parser and the reference agree; seeds are
// diffSeeds, the inline ones and every feed file of dir, good and bad.
func fuzzDiff(f *testing.F, format string, ref parseFunc, dir string, seeds []string) {
	clock := func() time.Time { return testClock }
	p, err := NewParser(Config{Name: "diff", Format: format}, clock)
	if err != nil {
		f.Fatal(err)
	}
	refParser := *p
	refParser.parse = ref

	topic := "t/0101010101010101/up"
	for _, s := range append(append([]string(nil), diffSeeds...), seeds...) {
		f.Add(topic, []byte(s))
	}
	for _, sub := range []string{"", "bad"} {
		for _, ff := range loadFeeds(f, sub) {
			if strings.HasPrefix(ff.Name, dir+"/") {
				f.Add(ff.Topic, ff.Payload)
			}
		}
	}
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		got, gotErr := p.Parse(topic, payload)
		want, wantErr := refParser.Parse(topic, payload)
		if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
			t.Fatalf("input %q\nerror %v\nwant  %v", payload, gotErr, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("input %q\nuplink %s\nwant   %s", payload, show(got), show(want))
		}
	})
}
