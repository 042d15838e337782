package chirpstackpg_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway/chirpstackpg"
)

// FuzzRowEvent holds Row.Event to its promises over any column content
// (seed corpus in testdata/fuzz/FuzzRowEvent): it never panics; what it
// returns is JSON, a problem or not, so a dead letter can show the row;
// and an event the chirpstack-v4 parser takes carries the row's device,
// payload, counter and id.
func FuzzRowEvent(f *testing.F) {
	f.Add("57433366-50a6-4dc2-8145-2df1bbc70d9e", int64(1684741625404859), "1000000000000001", "ca739e26-7b67-4f14-b69e-d568c22a5a75",
		`{}`, `null`, `[{"gatewayId":"6a7e111a10000000","rssi":-35,"snr":11.5}]`, `{"frequency":868500000,"modulation":{"lora":{"bandwidth":125000,"spreadingFactor":7}}}`,
		[]byte{0, 4, 29, 1}, int64(4), int64(2), int64(5), uint16(0))
	f.Add("5e1e2a3c-8f5d-4f0a-9a77-2a1c0b9d7e11", int64(1709637753123456), "010101010101010A", "17c82e96-be03-4f38-aef3-f83d48582d97",
		`{"site":"townhall"}`, `{"co2":1068,"pir":"idle","temperature":26.9}`, `[]`, `{}`, []byte("\x01\x75\x64"), int64(1234), int64(85), int64(5), uint16(0))
	f.Add("x", int64(0), "", "", `{"a":`, `[1,2`, `{"rssi":"-3"}`, `"txInfo"`, []byte(nil), int64(-1), int64(300), int64(99), uint16(0xffff))
	f.Add("\"},\"devEui\":\"0000000000000000", int64(-62135596800000000), "01\"}", "a/b/+/#", `null`, ` {"x": 1e400} `, `[{"gatewayId":"zz"}]`, `null`,
		[]byte{0xff}, int64(1<<40), int64(0), int64(0), uint16(0x5555))
	p := newParser(f)
	f.Fuzz(func(t *testing.T, id string, micros int64, devEUI, appID, tags, object, rxInfo, txInfo string, data []byte, fCnt, fPort, dr int64, nulls uint16) {
		at := time.UnixMicro(micros).UTC()
		r := chirpstackpg.Row{
			DeduplicationID: &id, Time: &at, ApplicationID: &appID, DevEUI: &devEUI, Tags: &tags, Object: &object,
			RxInfo: &rxInfo, TxInfo: &txInfo, Data: &data, FCnt: &fCnt, FPort: &fPort, DR: &dr,
		}
		// Each bit of nulls makes one column NULL.
		for i, null := range []func(){
			func() { r.DeduplicationID = nil }, func() { r.Time = nil }, func() { r.ApplicationID = nil },
			func() { r.DevEUI = nil }, func() { r.Tags = nil }, func() { r.Object = nil }, func() { r.RxInfo = nil },
			func() { r.TxInfo = nil }, func() { r.Data = nil }, func() { r.FCnt = nil }, func() { r.FPort = nil }, func() { r.DR = nil },
		} {
			if nulls&(1<<i) != 0 {
				null()
			}
		}
		ev, err := r.Event([]byte("prefix"))
		if !bytes.HasPrefix(ev, []byte("prefix")) {
			t.Fatalf("Event did not append: %q", ev)
		}
		ev = ev[len("prefix"):]
		if !json.Valid(ev) {
			t.Fatalf("Event wrote no JSON (error %v): %s", err, ev)
		}
		var re *chirpstackpg.RowError
		if err != nil {
			if !errors.As(err, &re) || re.Error() == "" {
				t.Fatalf("error %T %v, want a *RowError", err, err)
			}
			return
		}
		up, err := p.ParseEvent("up", r.Topic(), ev)
		if err != nil {
			return // the parser refuses it: a dead letter, as the live message would be
		}
		if !bytes.Equal(up.Payload, data) {
			t.Fatalf("payload %x, want %x", up.Payload, data)
		}
		if up.ID != id && id != "" {
			t.Fatalf("id %q, want %q", up.ID, id)
		}
		if !strings.EqualFold(up.DevEUI.String(), devEUI) {
			t.Fatalf("DevEUI %s, want %s", up.DevEUI, devEUI)
		}
		if r.FCnt != nil && (!up.HasFCnt || int64(up.FCnt) != fCnt) {
			t.Fatalf("fCnt %d (%v), want %d", up.FCnt, up.HasFCnt, fCnt)
		}
		if !up.Time.Equal(at) {
			t.Fatalf("time %s, want %s", up.Time, at)
		}
	})
}
