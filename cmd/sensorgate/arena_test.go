package main

import (
	"context"
	"sync"
	"testing"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/influx"
	"github.com/sensorgate/sensorgate/internal/simulate"
)

// linesSink counts the uplinks it is given by their encoded lines; like
// every gateway.Sink it is done with the points when Write returns, so
// the pipeline builds them in reused memory.
type linesSink struct {
	mu    sync.Mutex
	lines map[string]int
}

func (s *linesSink) Write(_ context.Context, pts []gateway.Point) error {
	buf, err := encode(pts)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines[buf]++
	return nil
}

func encode(pts []gateway.Point) (string, error) {
	var buf []byte
	for _, p := range pts {
		var err error
		if buf, err = influx.AppendPoint(buf, p); err != nil {
			return "", err
		}
	}
	return string(buf), nil
}

// TestReusedPointMemory handles a simulated stream from four goroutines
// through a sink that lets the pipeline reuse point memory, and checks
// that every uplink's lines are exactly those Points gives (allocated
// afresh): no uplink's points show another's fields or tags.
func TestReusedPointMemory(t *testing.T) {
	for _, format := range []string{simulate.ChirpStackV4, simulate.TTSV3} {
		t.Run(format, func(t *testing.T) {
			msgs, parser, p := benchFleet(t, format)
			policy := p.Sources["bench"]
			policy.GatewayPoints = true // more points, tags and fields per uplink
			p.Sources["bench"] = policy
			sink := &linesSink{lines: map[string]int{}}
			p.Sink = sink

			ups := make([]gateway.Uplink, len(msgs))
			want := map[string]int{}
			for i, m := range msgs {
				up, err := parser.Parse(m.Topic, m.Payload)
				if err != nil {
					t.Fatal(err)
				}
				pts, _, err := p.Points(up)
				if err != nil {
					t.Fatal(err)
				}
				lines, err := encode(pts)
				if err != nil {
					t.Fatal(err)
				}
				ups[i] = up
				want[lines]++
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
				if got := sink.lines[lines]; got != n {
					t.Fatalf("uplink written %d times, want %d:\n%s", got, n, lines)
				}
			}
		})
	}
}
