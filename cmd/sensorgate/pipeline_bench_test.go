package main

import (
	"context"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/influx"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/internal/simulate"
)

// encodingSink encodes points as the InfluxDB sink would and drops them.
type encodingSink struct{ buf []byte }

func (s *encodingSink) Write(_ context.Context, pts []gateway.Point) error {
	s.buf = s.buf[:0]
	for _, p := range pts {
		var err error
		if s.buf, err = influx.AppendPoint(s.buf, p); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkPipeline is the per-message CPU work of the daemon without the
// network: parse a ~1 KB ChirpStack v4 uplink, look the device up, decode
// Cayenne LPP, normalize, build points and encode line protocol.
func BenchmarkPipeline(b *testing.B) {
	for _, format := range []string{simulate.ChirpStackV4, simulate.TTSV3} {
		b.Run(format, func(b *testing.B) {
			fleet, _ := simulate.NewFleet(simulate.Options{Format: format, Devices: 100, Seed: 3})
			msgs := make([]simulate.Message, 1000)
			for i := range msgs {
				msgs[i] = fleet.Next()
			}
			reg, _ := devices.NewRegistry(fleet.Devices())
			parser, err := mqtt.NewParser(mqtt.Config{Name: "bench", Format: format}, nil)
			if err != nil {
				b.Fatal(err)
			}
			p := &gateway.Pipeline{
				Devices: reg, Decoders: decoders.NewRegistry(), Sink: &encodingSink{}, DeadLetters: nil,
				Sources: map[string]gateway.SourcePolicy{"bench": {AcceptUnknown: true}}, AllowedTags: []string{"district", "site"},
				Log: zerolog.Nop(), Counters: &gateway.Counters{},
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m := msgs[i%len(msgs)]
				up, err := parser.Parse(m.Topic, m.Payload)
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Handle(context.Background(), up); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
