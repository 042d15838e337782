package spool

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// benchRecord is a typical spooled record: one uplink's points, ~1 KB.
var benchRecord = payload(1, 1024)

func openBench(b *testing.B, fsync string) *Spool {
	b.Helper()
	s, err := Open(Config{Dir: b.TempDir(), Fsync: fsync, MaxBytes: 1 << 30}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// benchAppend appends 1 KB records from goroutines concurrent appenders
// and reports appends/s: with several appenders this is the group-commit
// rate.
func benchAppend(b *testing.B, fsync string, goroutines int) {
	s := openBench(b, fsync)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(benchRecord)))
	b.ResetTimer()
	cpu0 := benchCPU(b)
	if goroutines == 1 {
		for b.Loop() {
			if err := s.Append(ctx, benchRecord); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		// RunParallel starts parallelism × GOMAXPROCS goroutines.
		b.SetParallelism(max(1, goroutines/max(1, testingProcs())))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.Append(ctx, benchRecord); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	b.ReportMetric(float64((benchCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/record")
	if n := s.syncs.Load(); n > 0 {
		// The group-commit factor, independent of the disk's latency.
		b.ReportMetric(float64(b.N)/float64(n), "records/fsync")
	}
}

func BenchmarkAppendAlways(b *testing.B) {
	for _, g := range []int{1, 64, 256} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) { benchAppend(b, FsyncAlways, g) })
	}
}

// BenchmarkAppendPaced appends at a steady 10,000 records/s with up to 100
// appenders waiting, as a live stream through a broker window of 100
// reaches the daemon. At full speed group commits fill up whatever the
// writer does; at a steady rate what a record costs depends on how the
// writer gathers, so this reports CPU per record (user and system, so the
// fsyncs count) and records per fsync. ns/op is the pacing, not a cost.
func BenchmarkAppendPaced(b *testing.B) {
	const rate, window = 10_000, 100
	s := openBench(b, FsyncAlways)
	ctx := context.Background()
	b.ReportAllocs()
	slots := make(chan struct{}, window)
	var wg sync.WaitGroup
	cpu0 := benchCPU(b)
	start := time.Now()
	for i := range b.N {
		// Release records in 1 ms steps of rate/1000: a timer per record
		// would cost more than the appends.
		if i%(rate/1000) == 0 {
			if d := time.Until(start.Add(time.Duration(i) * time.Second / rate)); d > 0 {
				time.Sleep(d)
			}
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Append(ctx, benchRecord); err != nil {
				b.Error(err)
			}
			<-slots
		}()
	}
	wg.Wait()
	b.ReportMetric(float64((benchCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/record")
	if n := s.syncs.Load(); n > 0 {
		b.ReportMetric(float64(b.N)/float64(n), "records/fsync")
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

func BenchmarkAppendInterval(b *testing.B) {
	for _, g := range []int{1, 64} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) { benchAppend(b, "1s", g) })
	}
}

// BenchmarkReadAck reads and acks 1 KB records in batches of 1000, as the
// delivery loop does; ns/op is per record. Records are appended in rounds
// (untimed) so the spool stays far below max_bytes whatever b.N is.
func BenchmarkReadAck(b *testing.B) {
	s := openBench(b, "1s")
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(benchRecord)))
	for n := 0; n < b.N; {
		b.StopTimer()
		k := min(10000, b.N-n)
		for range k {
			if err := s.Append(ctx, benchRecord); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		for got := 0; got < k; {
			recs, err := s.Read(ctx, 1000, 0)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Ack(recs[len(recs)-1].Pos); err != nil {
				b.Fatal(err)
			}
			got += len(recs)
		}
		n += k
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func testingProcs() int { return runtime.GOMAXPROCS(0) }

// BenchmarkAppendReadAck is the spool as the daemon uses it: 256
// concurrent appenders at fsync=always (the MQTT handlers) while one
// reader reads and acks in batches of 1000 (the delivery loop). ns/op and
// records/s count a record once it has been appended, read and acked.
func BenchmarkAppendReadAck(b *testing.B) {
	s := openBench(b, FsyncAlways)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	b.SetBytes(int64(len(benchRecord)))
	acked := make(chan error, 1)
	b.ResetTimer()
	go func() {
		for got := 0; got < b.N; {
			recs, err := s.Read(ctx, 1000, 0)
			if err == nil {
				err = s.Ack(recs[len(recs)-1].Pos)
			}
			if err != nil {
				acked <- err
				return
			}
			got += len(recs)
		}
		acked <- nil
	}()
	b.SetParallelism(max(1, 256/max(1, testingProcs())))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Append(ctx, benchRecord); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if err := <-acked; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
