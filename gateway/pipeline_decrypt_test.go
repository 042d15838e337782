package gateway

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/devices"
)

// TestDecryptEncryptedUplink: a payload a network server forwarded still
// encrypted is decrypted with the registry's AppSKey (the injected
// function stands in for lorawan.DecryptFRMPayload), or dead-lettered
// with a reason an operator can act on.
func TestDecryptEncryptedUplink(t *testing.T) {
	appSKey := devices.Key{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	sessAddr := devices.DevAddr{0x26, 0x01, 0x02, 0x03}
	reg, err := devices.NewRegistry([]devices.Device{
		{EUI: euiA, Name: "keyed", Model: "temp-test", Session: &devices.Session{DevAddr: sessAddr, NwkSKey: devices.Key{9}, AppSKey: appSKey}},
		{EUI: euiB, Name: "keyless", Model: "temp-test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	type call struct {
		key  devices.Key
		addr devices.DevAddr
		fcnt uint32
		up   bool
	}
	var calls []call
	xor := func(key devices.Key, addr devices.DevAddr, fcnt uint32, uplink bool, b []byte) ([]byte, error) {
		calls = append(calls, call{key, addr, fcnt, uplink})
		if len(b) > 2 {
			return nil, errors.New("too long for this fake")
		}
		out := make([]byte, len(b))
		for i := range b {
			out[i] = b[i] ^ 0xff
		}
		return out, nil
	}
	newPipeline := func(decrypt func(devices.Key, devices.DevAddr, uint32, bool, []byte) ([]byte, error)) (*Pipeline, *recordingSink, *recordingDL) {
		sink, dl := &recordingSink{}, &recordingDL{}
		return &Pipeline{
			Devices: reg, Sink: sink, DeadLetters: dl, Counters: &Counters{}, Decrypt: decrypt,
			Decoders: decoderTable{"temp-test": decoders.Mapped{
				DecodeRecord: func(in decoders.Input, r *decoders.Record) error {
					r.Number("temp", float64(int16(in.Bytes[0])<<8|int16(in.Bytes[1]))/10)
					return nil
				},
				Map: []decoders.Mapping{{Key: "temp", Quantity: "air.temperature"}},
			}},
			Sources: map[string]SourcePolicy{"ns": {AcceptUnknown: true}},
		}, sink, dl
	}
	msgAddr := devices.DevAddr{0x26, 0xaa, 0xbb, 0xcc}
	enc := []byte{0x00 ^ 0xff, 0xE2 ^ 0xff} // 22.6 °C once decrypted

	tests := []struct {
		name      string
		up        Uplink
		decrypt   bool
		wantCall  *call
		wantTemp  float64
		wantError string // substring of the dead letter's detail; "" = points
	}{
		{"with the message's DevAddr", Uplink{DevEUI: euiA, DevAddr: msgAddr}, true, &call{appSKey, msgAddr, 70000, true}, 22.6, ""},
		{"with the session's DevAddr when the feed has none", Uplink{DevEUI: euiA}, true, &call{appSKey, sessAddr, 70000, true}, 22.6, ""},
		{"registered without a session", Uplink{DevEUI: euiB}, true, nil, 0, "the registry holds no AppSKey for 0202020202020202: add the device's session"},
		{"unknown device accepted from a network server", Uplink{DevEUI: euiNone}, true, nil, 0, "no AppSKey for 0909090909090909"},
		{"no frame counter", Uplink{DevEUI: euiA, FCnt: 0, HasFCnt: false}, true, nil, 0, "no frame counter"},
		{"no decrypter", Uplink{DevEUI: euiA}, false, nil, 0, "no decrypter"},
		{"decryption fails", Uplink{DevEUI: euiA, Payload: []byte{1, 2, 3}}, true, &call{appSKey, sessAddr, 70000, true}, 0, "too long for this fake"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls = nil
			var p *Pipeline
			var sink *recordingSink
			var dl *recordingDL
			if tt.decrypt {
				p, sink, dl = newPipeline(xor)
			} else {
				p, sink, dl = newPipeline(nil)
			}
			up := tt.up
			up.Source, up.Time, up.Encrypted, up.FPort, up.HasFPort = "ns", t0, true, 2, true
			if tt.name != "no frame counter" {
				up.FCnt, up.HasFCnt = 70000, true
			}
			if up.Payload == nil {
				up.Payload = enc
			}
			if err := p.Handle(context.Background(), up); err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.wantCall == nil && len(calls) > 0:
				t.Errorf("decrypt called: %+v", calls)
			case tt.wantCall != nil && (len(calls) != 1 || calls[0] != *tt.wantCall):
				t.Errorf("decrypt calls %+v, want one %+v", calls, *tt.wantCall)
			}
			if tt.wantError != "" {
				if len(dl.dls) != 1 || dl.dls[0].Reason != ReasonEncrypted || !strings.Contains(dl.dls[0].Detail, tt.wantError) {
					t.Fatalf("dead letters %+v, want one %s: …%s…", dl.dls, ReasonEncrypted, tt.wantError)
				}
				if string(dl.dls[0].Raw) != string(up.Raw) || len(sink.pts) != 0 {
					t.Fatalf("dead letter raw %q, points %+v", dl.dls[0].Raw, sink.pts)
				}
				return
			}
			if len(dl.dls) != 0 {
				t.Fatalf("dead letters %+v", dl.dls)
			}
			var temp float64
			var payload string
			for _, pt := range sink.pts {
				for _, f := range pt.Fields {
					switch {
					case pt.Measurement == "air" && f.Key == "temperature":
						temp = f.F
					case pt.Measurement == "uplink" && f.Key == "payload":
						payload = f.S
					}
				}
			}
			if temp != tt.wantTemp || payload != "AOI=" {
				t.Errorf("temperature %v, uplink payload %q; want %v and the decrypted bytes AOI=", temp, payload, tt.wantTemp)
			}
			if p.Counters.Get("payloads_decrypted") != 1 {
				t.Errorf("payloads_decrypted = %d", p.Counters.Get("payloads_decrypted"))
			}
		})
	}
}
