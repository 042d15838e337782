package simulate

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/devices"
)

// TestEncodeUplinkVector: EncodeUplink reproduces brocaar/lorawan's
// "FRMPayload data" vector (testdata/vectors/lorawan-frames.json,
// brocaar-lw10-uplink-hello) byte for byte.
func TestEncodeUplinkVector(t *testing.T) {
	nwk, _ := devices.ParseKey("02020202020202020202020202020202")
	app, _ := devices.ParseKey("01010101010101010101010101010101")
	s := &devices.Session{DevAddr: devices.DevAddr{1, 2, 3, 4}, NwkSKey: nwk, AppSKey: app}
	b, err := EncodeUplink(s, 1, 1, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b); got != "400403020180010001a694642615d6c3b582" {
		t.Fatalf("frame %s", got)
	}
}

func TestSemtechFleetIsDeterministic(t *testing.T) {
	for _, v := range []string{"", devices.MACVersion11} {
		a, _ := NewSemtechFleet(SemtechOptions{Devices: 5, Seed: 3, MACVersion: v})
		b, _ := NewSemtechFleet(SemtechOptions{Devices: 5, Seed: 3, MACVersion: v})
		if _, err := devices.NewRegistry(a.Devices()); err != nil {
			t.Fatalf("%q: fleet devices are not a valid registry: %v", v, err)
		}
		for i := 0; i < 50; i++ {
			ma, mb := a.Next(), b.Next()
			if !bytes.Equal(ma.PHYPayload, mb.PHYPayload) || len(ma.Datagrams) != len(mb.Datagrams) || len(ma.Datagrams) != len(ma.Rx) {
				t.Fatalf("%q message %d differs", v, i)
			}
			for j := range ma.Datagrams {
				if !bytes.Equal(ma.Datagrams[j], mb.Datagrams[j]) {
					t.Fatalf("%q message %d datagram %d differs", v, i, j)
				}
				var body struct {
					Rxpk []struct {
						Time string `json:"time"`
						Data string `json:"data"`
						RSSI int    `json:"rssi"`
					} `json:"rxpk"`
				}
				dg := ma.Datagrams[j]
				if dg[0] != 2 || dg[3] != 0 || !bytes.Equal(dg[4:12], ma.Rx[j].GatewayEUI[:]) {
					t.Fatalf("header %x", dg[:12])
				}
				if err := json.Unmarshal(dg[12:], &body); err != nil || len(body.Rxpk) != 1 {
					t.Fatalf("body %s: %v", dg[12:], err)
				}
				tm, _ := time.Parse(time.RFC3339Nano, body.Rxpk[0].Time)
				if body.Rxpk[0].Data != base64.StdEncoding.EncodeToString(ma.PHYPayload) || body.Rxpk[0].RSSI != ma.Rx[j].RSSI || !tm.Equal(ma.Time) {
					t.Fatalf("rxpk %+v for %+v", body.Rxpk[0], ma)
				}
			}
		}
	}
	if _, err := NewSemtechFleet(SemtechOptions{MACVersion: "1.2"}); err == nil {
		t.Fatal("mac version 1.2 accepted")
	}
}

// TestSemtechMinGateways: with MinGateways every frame is heard by at
// least that many gateways, and the frames are the bytes the same seed
// gives without it.
func TestSemtechMinGateways(t *testing.T) {
	any3, _ := NewSemtechFleet(SemtechOptions{Devices: 5, Gateways: 3, Seed: 3})
	all3, _ := NewSemtechFleet(SemtechOptions{Devices: 5, Gateways: 3, MinGateways: 3, Seed: 3})
	fewer := 0
	for i := 0; i < 50; i++ {
		ma, mb := any3.Next(), all3.Next()
		if !bytes.Equal(ma.PHYPayload, mb.PHYPayload) || len(mb.Rx) != 3 || len(mb.Datagrams) != 3 {
			t.Fatalf("message %d: %d receptions, payload equal %v", i, len(mb.Rx), bytes.Equal(ma.PHYPayload, mb.PHYPayload))
		}
		seen := map[devices.EUI]bool{}
		for _, rx := range mb.Rx {
			seen[rx.GatewayEUI] = true
		}
		if len(seen) != 3 {
			t.Fatalf("message %d: gateways %+v, want three different", i, mb.Rx)
		}
		if len(ma.Rx) < 3 {
			fewer++
		}
	}
	if fewer == 0 {
		t.Fatal("without MinGateways every frame had three gateways: the test proves nothing")
	}
}

// TestSendSemtech runs the sender against a minimal acknowledger: every
// PULL_DATA and PUSH_DATA is answered, and each is sent once.
func TestSendSemtech(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	counts := map[byte]int{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 12 {
				continue
			}
			counts[buf[3]]++
			ack := byte(0x01)
			if buf[3] == 0x02 {
				ack = 0x04
			}
			_, _ = pc.WriteTo([]byte{buf[0], buf[1], buf[2], ack}, from)
		}
	}()
	f, _ := NewSemtechFleet(SemtechOptions{Devices: 2, Gateways: 2, Seed: 1})
	want := 0
	err = SendSemtech(context.Background(), f, SemtechSendOptions{Addr: pc.LocalAddr().String(), Count: 10, OnSent: func(m SemtechMessage) { want += len(m.Datagrams) }})
	if err != nil {
		t.Fatal(err)
	}
	pc.Close()
	<-done
	if counts[0x02] != 2 || counts[0x00] != want {
		t.Fatalf("pull %d push %d, want 2 and %d", counts[0x02], counts[0x00], want)
	}
}

// TestWriteDevicesCSV: the CSV holds the keys in full, so sensorgate reads
// back the very sessions the fleet encrypts with.
func TestWriteDevicesCSV(t *testing.T) {
	for _, v := range []string{devices.MACVersion10, devices.MACVersion11} {
		f, _ := NewSemtechFleet(SemtechOptions{Devices: 4, Seed: 9, MACVersion: v})
		var buf bytes.Buffer
		if err := f.WriteDevicesCSV(&buf); err != nil {
			t.Fatal(err)
		}
		got, err := devices.ParseCSV(&buf)
		if err != nil {
			t.Fatal(err)
		}
		want := f.Devices()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: read back\n%+v\nwant\n%+v", v, got, want)
		}
	}
}
