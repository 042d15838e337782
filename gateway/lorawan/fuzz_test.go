package lorawan

import (
	"errors"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
)

// FuzzPacket feeds arbitrary datagrams to the Semtech UDP parser: no
// panic, an ACK only for PUSH_DATA/PULL_DATA echoing version and token,
// and every frame it yields has a PHYPayload and a gateway id. Seeds are
// in testdata/fuzz/FuzzPacket.
func FuzzPacket(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parsePacket(b)
		if err != nil {
			if !errors.Is(err, errNotSemtech) {
				t.Fatalf("error %v does not wrap errNotSemtech", err)
			}
			return
		}
		if a := p.ack(); a != nil {
			if len(a) != 4 || a[0] != b[0] || a[1] != b[1] || a[2] != b[2] || (b[3] != idPushData && b[3] != idPullData) {
				t.Fatalf("ack %x for %x", a, b[:4])
			}
		}
		if p.id != idPushData {
			return
		}
		frames, crc, bad, err := parsePushData(p.gateway, p.body)
		if err != nil {
			if len(frames)+crc+len(bad) != 0 {
				t.Fatal("frames with an error")
			}
			return
		}
		for _, fr := range frames {
			if len(fr.PHYPayload) == 0 || len(fr.Gateway.ID) != 16 || fr.DR != -1 || len(fr.Raw) == 0 {
				t.Fatalf("frame %+v", fr)
			}
			if fr.SF < 0 || fr.SF > 12 || fr.Bandwidth < 0 {
				t.Fatalf("datr %d/%d", fr.SF, fr.Bandwidth)
			}
		}
	})
}

// FuzzFrame feeds arbitrary PHYPayloads, as the first frame of a device
// and after an accepted one, through frame handling with two sessions on
// the fuzzed frame's DevAddr: no panic; every outcome is an uplink of one
// of those devices with an FCnt whose low 16 bits are the frame's, a
// counted drop, or a rejection with a dead-letter reason of the set raw
// frames use. Seeds are in
// testdata/fuzz/FuzzFrame.
func FuzzFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, phy []byte) {
		var addr devices.DevAddr
		if len(phy) >= 5 {
			addr = devices.DevAddr{phy[4], phy[3], phy[2], phy[1]}
		}
		a, b := abpDevice(1, devices.MACVersion10, addr), abpDevice(2, devices.MACVersion11, addr)
		fr, _, _ := newFrames(t, FrameConfig{FCntReset: FCntResetAcceptLow}, lookup{a, b})
		// An accepted frame first, so the fuzzed one also meets state.
		if _, _, err := fr.uplink([]Frame{{PHYPayload: encode(t, a, 70000, 1, "x")}}, time.Now()); err != nil {
			t.Fatal(err)
		}
		for try := 0; try < 2; try++ {
			up, _, err := fr.uplink([]Frame{{PHYPayload: phy, Gateway: gateway.GatewayRx{ID: "g"}, DR: -1}}, time.Now())
			var rej *gateway.Rejection
			switch {
			case err == nil:
				if up.DevEUI != a.EUI && up.DevEUI != b.EUI {
					t.Fatalf("uplink of %s", up.DevEUI)
				}
				if len(phy) < 8 || uint16(up.FCnt) != uint16(phy[6])|uint16(phy[7])<<8 {
					t.Fatalf("FCnt %d from frame %x", up.FCnt, phy)
				}
				if up.FPort == 0 && len(up.Payload) != 0 {
					t.Fatal("MAC commands as payload")
				}
			case errors.Is(err, errDropped):
			case errors.As(err, &rej):
				switch rej.Reason {
				case gateway.ReasonMalformed, gateway.ReasonBadMIC, gateway.ReasonReplay:
				default:
					t.Fatalf("reason %s", rej.Reason)
				}
			default:
				t.Fatalf("error %v", err)
			}
		}
	})
}

// FuzzBridgeUplink feeds arbitrary Gateway Bridge events to the parser:
// no panic, and a frame always has a PHYPayload and a gateway id. Seeds
// are in testdata/fuzz/FuzzBridgeUplink.
func FuzzBridgeUplink(f *testing.F) {
	f.Fuzz(func(t *testing.T, msg []byte) {
		fr, err := ParseBridgeUplink("eu868/gateway/0016c001f153a14c/event/up", msg)
		if err != nil {
			return
		}
		if len(fr.PHYPayload) == 0 || fr.Gateway.ID == "" || fr.DR != -1 {
			t.Fatalf("frame %+v", fr)
		}
	})
}
