package lorawan

import (
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/simulate"
)

// BenchmarkFrame measures the per-frame work after the dedup window:
// parse, session lookup, MIC (with the 32-bit FCnt), counter commit and
// FRMPayload decryption of a typical 11-byte sensor payload. Every
// iteration is a new, increasing FCnt, so nothing is a replay.
func BenchmarkFrame(b *testing.B) {
	for _, version := range []string{devices.MACVersion10, devices.MACVersion11} {
		b.Run("lorawan"+version, func(b *testing.B) {
			fleet, err := simulate.NewSemtechFleet(simulate.SemtechOptions{Devices: 1, Seed: 1, MACVersion: version})
			if err != nil {
				b.Fatal(err)
			}
			devs := fleet.Devices()
			reg, err := devices.NewRegistry(devs)
			if err != nil {
				b.Fatal(err)
			}
			f, err := NewFrames("bench", FrameConfig{}, reg, &deadLetters{}, &gateway.Counters{}, zerolog.Nop())
			if err != nil {
				b.Fatal(err)
			}
			const n = 4096
			frames := make([][]Frame, n)
			payload := []byte{1, 0x67, 0, 0xd2, 2, 0x68, 0x50, 3, 0x73, 0x27, 0x7f}
			for i := range frames {
				phy, err := simulate.EncodeUplink(devs[0].Session, uint32(i+1), 2, payload)
				if err != nil {
					b.Fatal(err)
				}
				frames[i] = []Frame{{PHYPayload: phy, Gateway: gateway.GatewayRx{ID: "b827ebfffe000001", RSSI: -80}, DR: -1}}
			}
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%n == 0 && i > 0 {
					b.StopTimer()
					f.state = map[devices.EUI]*fcntState{} // start the counters over
					b.StartTimer()
				}
				up, _, err := f.uplink(frames[i%n], now)
				if err != nil || len(up.Payload) != len(payload) {
					b.Fatalf("frame %d: %v", i, err)
				}
			}
		})
	}
}
