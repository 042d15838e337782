package influx

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/spool"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

var drainProfile = flag.String("drain.cpuprofile", "", "BenchmarkSpooledDrain: write a CPU profile of the drain to this file")

// BenchmarkSpooledDrain delivers a spool holding b.N records, each a
// message's five points (~1 KB of line protocol: an uplink point and four
// readings), to a real InfluxDB through the Deliverer with its
// defaults, as the daemon does after a backlog: read, batch, post,
// acknowledge. InfluxDB runs in its own process, so cpu-ns/op and
// allocs/op are sensorgate's delivery side alone:
//
//	go test -run '^$' -bench SpooledDrain -benchtime 50000x ./gateway/influx
func BenchmarkSpooledDrain(b *testing.B) {
	db := testserver.StartInfluxDB(b)
	sp, err := spool.Open(spool.Config{Dir: b.TempDir(), Fsync: "1s"}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	ctx := context.Background()
	var rec []byte
	for i := 0; i < b.N; i++ {
		rec = rec[:0]
		for _, p := range messagePoints(i) {
			if rec, err = AppendPoint(rec, p); err != nil {
				b.Fatal(err)
			}
		}
		if err := sp.Append(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
	c, err := New(Config{URL: db.URL(), Bucket: db.Bucket()}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	s := NewDeliverer(c, sp, &memDL{}, zerolog.Nop())

	if *drainProfile != "" {
		f, err := os.Create(*drainProfile)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile() // if the drain fails
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := benchCPU(b)
	runCtx, cancel := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- s.Run(runCtx) }()
	deadline := time.Now().Add(5 * time.Minute)
	for sp.Stats().Pending > 0 {
		if time.Now().After(deadline) {
			b.Fatalf("%d records still pending after 5 minutes", sp.Stats().Pending)
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(benchCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
	pprof.StopCPUProfile()
	cancel()
	<-runDone
	if n := db.Count(b, "uplink"); n != b.N {
		b.Fatalf("InfluxDB holds %d uplink points, want %d", n, b.N)
	}
}

// messagePoints are the points of message i: an uplink point and four
// readings of device i%500, tagged as the pipeline tags them.
func messagePoints(i int) []gateway.Point {
	dev := i % 500
	eui := fmt.Sprintf("a81758fffe%06x", dev)
	tags := []gateway.Tag{
		{Key: "dev_eui", Value: eui}, {Key: "device", Value: fmt.Sprintf("sensor-%03d", dev)}, {Key: "district", Value: "north"},
		{Key: "model", Value: "cayenne-lpp"}, {Key: "site", Value: fmt.Sprintf("school-%d", dev%40)}, {Key: "source", Value: "city-chirpstack"},
	}
	t := time.Unix(1700000000, 0).Add(time.Duration(i) * time.Second)
	return []gateway.Point{
		{Measurement: "uplink", Tags: tags, Time: t, Fields: []gateway.Field{
			gateway.FloatField("dr", 5), gateway.IntField("f_cnt", int64(i)), gateway.IntField("f_port", 85),
			gateway.FloatField("frequency", 868100000), gateway.IntField("gateways", 2),
			gateway.StringField("payload", "AWcA4QJoUANzJ8EEAgGQ"), gateway.FloatField("rssi", -97), gateway.FloatField("snr", 7.25)}},
		{Measurement: "air", Tags: tags, Time: t, Fields: []gateway.Field{
			gateway.FloatField("relativeHumidity", 40+float64(i%20)), gateway.FloatField("temperature", 20.5+float64(i%7)/10)}},
		{Measurement: "air", Tags: tags, Time: t, Fields: []gateway.Field{gateway.FloatField("pressure", 1013.2)}},
		{Measurement: "device", Tags: tags, Time: t, Fields: []gateway.Field{gateway.FloatField("battery", 3.6)}},
		{Measurement: "decoded_cayenne_lpp", Tags: tags, Time: t, Fields: []gateway.Field{
			gateway.FloatField("analog_in_4", 4), gateway.FloatField("barometer_3", 1013.2), gateway.FloatField("humidity_2", 40),
			gateway.FloatField("temperature_1", 22.5)}},
	}
}

// benchCPU is this process's user and system CPU time so far.
func benchCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
