package gateway

import (
	"os"
	"strings"
	"testing"
)

// TestUplinkFieldTypesDocumented: the schema page (docs/schema.md) names
// every integer field of the uplink point as an integer, and every float
// one as float.
func TestUplinkFieldTypesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/schema.md")
	if err != nil {
		t.Fatal(err)
	}
	_, schema, ok := strings.Cut(string(doc), "\n## Measurements, tags and time\n")
	if !ok {
		t.Fatal("docs/schema.md has no \"Measurements, tags and time\" section")
	}
	ints, rest, ok := strings.Cut(schema, "are integers")
	if !ok {
		t.Fatal("the schema section names no integer fields")
	}
	ints = ints[strings.LastIndex(ints, "`uplink`'s"):]
	floats, _, _ := strings.Cut(rest, "float")
	up := Uplink{HasFCnt: true, HasFPort: true, Payload: []byte{1}}
	up.Radio.DR, up.Radio.SF, up.Radio.Frequency = 5, 7, 868100000
	up.Radio.Gateways = []GatewayRx{{ID: "g", RSSI: -80, SNR: 5, HasSNR: true}}
	var a arena
	for _, f := range uplinkPoint(up, nil, false, &a).Fields { // rssi and snr too
		name := "`" + f.Key + "`"
		switch f.Kind {
		case Int:
			if !strings.Contains(ints, name) {
				t.Errorf("uplink field %s is an integer; docs/schema.md does not say so", f.Key)
			}
		case Float:
			if !strings.Contains(floats, name) {
				t.Errorf("uplink field %s is a float; docs/schema.md does not say so", f.Key)
			}
		}
	}
}
