package main

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/devices"
	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/health"
	"github.com/sensorgate/sensorgate/gateway/influx"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/internal/simulate"
)

// encodingSink encodes points as the InfluxDB sink would and drops them.
// Buffers are pooled, as in influx.Writer, so concurrent handlers share
// it.
type encodingSink struct{ bufs sync.Pool }

func (s *encodingSink) Write(_ context.Context, pts []gateway.Point) error {
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	buf := (*bp)[:0]
	var err error
	for _, p := range pts {
		if buf, err = influx.AppendPoint(buf, p); err != nil {
			break
		}
	}
	*bp = buf
	s.bufs.Put(bp)
	return err
}

// benchFleet is the simulated stream of one feed format and a pipeline
// to take it, as the daemon wires one.
func benchFleet(b testing.TB, format string) ([]simulate.Message, *mqtt.Parser, *gateway.Pipeline) {
	return benchFleetOf(b, format, 100, 1000)
}

// benchFleetOf is benchFleet with n devices registered and m messages.
func benchFleetOf(b testing.TB, format string, n, m int) ([]simulate.Message, *mqtt.Parser, *gateway.Pipeline) {
	b.Helper()
	fleet, err := simulate.NewFleet(simulate.Options{Format: format, Devices: n, Seed: 3})
	if err != nil {
		b.Fatal(err)
	}
	msgs := make([]simulate.Message, m)
	for i := range msgs {
		msgs[i] = fleet.Next()
	}
	reg, err := devices.NewRegistry(fleet.Devices())
	if err != nil {
		b.Fatal(err)
	}
	parser, err := mqtt.NewParser(mqtt.Config{Name: "bench", Format: format}, nil)
	if err != nil {
		b.Fatal(err)
	}
	p := &gateway.Pipeline{
		Devices: reg, Decoders: decoders.NewRegistry(), Sink: &encodingSink{}, DeadLetters: nil,
		Sources: map[string]gateway.SourcePolicy{"bench": {AcceptUnknown: true, GatewayPoints: true}}, AllowedTags: []string{"district", "site"},
		Log: zerolog.Nop(), Counters: &gateway.Counters{},
	}
	return msgs, parser, p
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds cpu-ns/op: the CPU the process spent per message,
// garbage collection included. On a shared, loaded machine it moves much
// less than ns/op, which counts the time other processes held the CPU.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// runPipeline parses and handles msgs in turn b.N times, reporting
// allocations and CPU per message.
func runPipeline(b *testing.B, msgs []simulate.Message, parser *mqtt.Parser, p *gateway.Pipeline) {
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime(b)
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
	reportCPU(b, start)
}

// BenchmarkPipeline is the per-message CPU work of the daemon without the
// network: parse a ~1 KB ChirpStack v4 uplink, look the device up, decode
// Cayenne LPP, normalize, build points and encode line protocol.
func BenchmarkPipeline(b *testing.B) {
	for _, format := range []string{simulate.ChirpStackV4, simulate.TTSV3} {
		b.Run(format, func(b *testing.B) {
			msgs, parser, p := benchFleet(b, format)
			runPipeline(b, msgs, parser, p)
		})
	}
}

// BenchmarkPipelineFleetSize is BenchmarkPipeline's work with 500 and
// 100,000 devices registered, the messages spread over them (issue 22:
// CPU per uplink must not grow with the fleet); with health=true each
// message is also observed by device health, as in the daemon, which has
// heard every device once before (a city's steady state: a health record
// per device). The 20,000 messages are cycled, so from the second round
// on health sees frames it counted already (its early return). Run with
// GODEBUG=gctrace=1 to see what the collector spends marking the
// per-device state.
func BenchmarkPipelineFleetSize(b *testing.B) {
	for _, withHealth := range []bool{false, true} {
		for _, n := range []int{500, 100000} {
			b.Run(fmt.Sprintf("health=%v/devices=%d", withHealth, n), func(b *testing.B) {
				msgs, parser, p := benchFleetOf(b, simulate.ChirpStackV4, n, 20000)
				if withHealth {
					// Every device heard once already, as in a city's steady
					// state: the health table is the fleet's size.
					h := devices.NewHealth(devices.DefaultSilentFactor)
					reg := p.Devices.(*devices.Registry)
					fleet, err := simulate.NewFleet(simulate.Options{Format: simulate.ChirpStackV4, Devices: n, Seed: 3})
					if err != nil {
						b.Fatal(err)
					}
					t0 := msgs[0].Time.Add(-time.Hour)
					for _, d := range fleet.Devices() {
						h.Observe(devices.Observation{EUI: d.EUI, Time: t0, Name: d.Name, Model: d.Model, Source: "bench", RSSI: -90, HasRSSI: true})
					}
					p.Observer = &health.Observer{Health: h, Registry: reg}
				}
				runPipeline(b, msgs, parser, p)
			})
		}
	}
}

// BenchmarkPipelineParallel runs BenchmarkPipeline's work from GOMAXPROCS
// goroutines, as the MQTT source's concurrent handlers do: compare
// -cpu 1,2 to see whether throughput scales across cores or something on
// the per-message path serializes.
func BenchmarkPipelineParallel(b *testing.B) {
	msgs, parser, p := benchFleet(b, simulate.ChirpStackV4)
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime(b)
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for i := 0; pb.Next(); i++ {
			m := msgs[i%len(msgs)]
			up, err := parser.Parse(m.Topic, m.Payload)
			if err != nil {
				b.Error(err)
				return
			}
			if err := p.Handle(ctx, up); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportCPU(b, start)
}
