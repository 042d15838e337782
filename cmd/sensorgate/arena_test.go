package main

import (
	"context"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/influx"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/internal/simulate"
)

// linesSink encodes each Write's points, keyed by the uplink's first
// line, and is done with them when Write returns (a PointsCopier), so
// the pipeline builds points in reused memory.
type linesSink struct {
	mu    sync.Mutex
	lines map[string]string
}

func (s *linesSink) CopiesPoints() {}

func (s *linesSink) Write(_ context.Context, pts []gateway.Point) error {
	var buf []byte
	for _, p := range pts {
		var err error
		if buf, err = influx.AppendPoint(buf, p); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines[string(buf)] += "x"
	return nil
}

// TestReusedPointMemory handles a simulated stream from four goroutines
// through a sink that lets the pipeline reuse point memory, and checks
// that every uplink's lines are exactly those Points gives (allocated
// afresh): no uplink's points show another's fields or tags.
func TestReusedPointMemory(t *testing.T) {
	for _, format := range []string{"chirpstack-v4", "tts-v3"} {
		t.Run(format, func(t *testing.T) {
			fleet, err := simulate.NewFleet(simulate.Options{Format: format, Devices: 50, Seed: 7})
			if err != nil {
				t.Fatal(err)
			}
			reg, err := devices.NewRegistry(fleet.Devices())
			if err != nil {
				t.Fatal(err)
			}
			parser, err := mqtt.NewParser(mqtt.Config{Name: "feed", Format: format}, nil)
			if err != nil {
				t.Fatal(err)
			}
			sink := &linesSink{lines: map[string]string{}}
			p := &gateway.Pipeline{
				Devices: reg, Decoders: decoders.NewRegistry(), Sink: sink,
				Sources:     map[string]gateway.SourcePolicy{"feed": {AcceptUnknown: true, GatewayPoints: true}},
				AllowedTags: []string{"district", "site"}, Log: zerolog.Nop(), Counters: &gateway.Counters{},
			}
			var ups []gateway.Uplink
			for range 2000 {
				m := fleet.Next()
				up, err := parser.Parse(m.Topic, m.Payload)
				if err != nil {
					t.Fatal(err)
				}
				ups = append(ups, up)
			}
			want := map[string]string{}
			for _, up := range ups {
				pts, _, err := p.Points(up)
				if err != nil {
					t.Fatal(err)
				}
				var buf []byte
				for _, pt := range pts {
					if buf, err = influx.AppendPoint(buf, pt); err != nil {
						t.Fatal(err)
					}
				}
				want[string(buf)] += "x"
			}
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < len(ups); i += 4 {
						if err := p.Handle(context.Background(), ups[i]); err != nil {
							t.Error(err)
						}
					}
				}()
			}
			wg.Wait()
			if len(sink.lines) != len(want) {
				t.Fatalf("%d distinct uplinks written, want %d", len(sink.lines), len(want))
			}
			for lines, n := range want {
				if sink.lines[lines] != n {
					t.Fatalf("uplink written %d times, want %d:\n%s", len(sink.lines[lines]), len(n), lines)
				}
			}
		})
	}
}
