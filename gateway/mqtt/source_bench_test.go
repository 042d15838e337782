package mqtt

import (
	"context"
	"flag"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/spool"
	"github.com/sensorgate/sensorgate/internal/simulate"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// BenchmarkSourceBacklog drains a persistent session's backlog of b.N
// ChirpStack v4 uplinks (~1.2 KB) from a real Mosquitto through the
// Source, each handled as the daemon does minus decoding: parsed, its
// payload appended to a real spool at fsync=always, acknowledged after
// the group commit. It is the MQTT side's cost per message (receive,
// dispatch, parse, commit, acknowledgement); Mosquitto runs in its own
// process, so cpu-ns/op and allocs/op are sensorgate's alone:
//
//	go test -run '^$' -bench SourceBacklog -benchtime 20000x ./gateway/mqtt
//
// -source.cpuprofile writes a CPU profile of the drain alone (not of the
// publishing before it).
func BenchmarkSourceBacklog(b *testing.B) {
	m := testserver.StartMosquitto(b)
	sp, err := spool.Open(spool.Config{Dir: b.TempDir(), Fsync: spool.FsyncAlways}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	cfg := Config{
		Name: "bench", Type: "mqtt", Format: FormatChirpStackV4, Broker: m.URL(),
		Topics: []string{"application/+/device/+/event/up"}, ClientID: "bench-backlog",
	}
	src, err := New(cfg, &memDeadLetters{}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	var handled atomic.Int64
	h := func(ctx context.Context, up gateway.Uplink) error {
		if err := sp.Append(ctx, up.Raw); err != nil {
			return err
		}
		handled.Add(1)
		return nil
	}

	// Create the persistent session, then queue the backlog in it.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, h) }()
	benchWait(b, "subscribed", src.Ready)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	publishBacklog(b, m.URL(), b.N)

	b.ReportAllocs()
	b.ResetTimer()
	cpu0, syncs0 := benchCPU(b), sp.Stats().Syncs
	_, writes0 := benchIOCalls(b)
	if *sourceProfile != "" {
		f, err := os.Create(*sourceProfile)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- src.Run(ctx, h) }()
	benchWait(b, "the backlog handled", func() bool { return handled.Load() >= int64(b.N) })
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(benchCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
	_, writes1 := benchIOCalls(b)
	b.ReportMetric(float64(writes1-writes0)/float64(b.N), "writes/op")
	b.ReportMetric(float64(b.N)/float64(max(1, sp.Stats().Syncs-syncs0)), "msgs/fsync")
}

var sourceProfile = flag.String("source.cpuprofile", "", "BenchmarkSourceBacklog: write a CPU profile of the drain to this file")

// publishBacklog publishes n simulated uplinks at QoS 1, many in flight at
// once, and waits until the broker took them all.
func publishBacklog(b *testing.B, broker string, n int) {
	b.Helper()
	fleet, err := simulate.NewFleet(simulate.Options{Format: simulate.ChirpStackV4, Devices: 500, Seed: 99})
	if err != nil {
		b.Fatal(err)
	}
	c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID("bench-publisher").SetCleanSession(true))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("publisher connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	toks := make([]paho.Token, 0, 1000)
	for i := 0; i < n; i++ {
		msg := fleet.Next()
		toks = append(toks, c.Publish(msg.Topic, 1, false, msg.Payload))
		if len(toks) == cap(toks) || i == n-1 {
			for _, tok := range toks {
				if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
					b.Fatalf("publish: %v", tok.Error())
				}
			}
			toks = toks[:0]
		}
	}
}

func benchWait(b *testing.B, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// benchIOCalls returns this process's read and write system calls so far
// (syscr and syscw of /proc/self/io).
func benchIOCalls(b *testing.B) (reads, writes int64) {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Skipf("no /proc/self/io: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "syscr":
			reads = n
		case "syscw":
			writes = n
		}
	}
	return reads, writes
}

// benchCPU is this process's user and system CPU time so far.
func benchCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
