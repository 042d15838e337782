//go:build unix

package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
)

// BenchmarkList1GB builds a 1 GB store and lists from it the way the
// status page (newest 50) and the CLI (oldest 50, a device, a reason)
// do, and reopens it. Letters are 64 KiB datagrams (the Semtech UDP
// flood of the issue) or 1 KiB messages (a broken MQTT feed). Building
// takes a while; run one at a time:
//
//	go test -run '^$' -bench 'List1GB/raw=64KiB' -benchtime 20x ./gateway/deadletter/
func BenchmarkList1GB(b *testing.B) {
	for _, raw := range []int{64 << 10, 1 << 10} {
		b.Run(fmt.Sprintf("raw=%dKiB", raw>>10), func(b *testing.B) {
			ctx := context.Background()
			path := filepath.Join(b.TempDir(), FileName)
			opt := Options{Config: Config{MaxBytes: 2 << 30}}
			s, err := Open(path, opt)
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			dl := gateway.DeadLetter{Source: "udp", Reason: gateway.ReasonMalformed, Detail: "not a Semtech UDP packet", Raw: make([]byte, raw)}
			start := time.Now()
			for i := 0; s.Stats().Bytes < 1<<30; {
				for j := range dl.Raw {
					dl.Raw[j] = byte(rng.Uint32())
				}
				dl.Time = time.Unix(1_780_000_000+int64(i), 0).UTC()
				dl.DevEUI = fmt.Sprintf("%016x", i%5000)
				if err := s.Put(ctx, dl); errors.Is(err, ErrQueueFull) {
					s.Flush(ctx)
					continue
				} else if err != nil {
					b.Fatal(err)
				}
				if i++; i%1000 == 0 {
					s.Flush(ctx)
				}
			}
			s.Flush(ctx)
			st := s.Stats()
			b.Logf("built %d letters, %d MB in %d segments in %s", st.Letters, st.Bytes>>20, st.Segments, time.Since(start).Round(time.Millisecond))
			s.Close()

			b.Run("open", func(b *testing.B) {
				defer reportCPU(b)()
				for range b.N {
					s, err := Open(path, opt)
					if err != nil {
						b.Fatal(err)
					}
					s.Close()
				}
			})
			s, err = Open(path, opt)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			for _, tc := range []struct {
				name string
				f    Filter
			}{
				{"newest-50", Filter{Newest: true, Limit: 50}},
				{"oldest-50", Filter{Limit: 50}},
				{"since-1h-50", Filter{Since: time.Unix(1_780_000_000+int64(st.Letters)-3600, 0), Limit: 50}},
				{"device-newest-50", Filter{DevEUI: fmt.Sprintf("%016x", 42), Newest: true, Limit: 50}},
				{"reason-none", Filter{Reason: gateway.ReasonDecode, Limit: 50}},
				{"id", Filter{IDs: []uint64{st.Letters / 2}}},
			} {
				b.Run(tc.name, func(b *testing.B) {
					b.ReportAllocs()
					read := s.listRead.Load()
					defer reportCPU(b)()
					for range b.N {
						ls, err := s.List(ctx, tc.f)
						if err != nil || len(ls) == 0 && tc.f.Reason == "" {
							b.Fatalf("%d letters, %v", len(ls), err)
						}
					}
					b.ReportMetric(float64(s.listRead.Load()-read)/float64(b.N), "read-B/op")
				})
			}
			// What GET /api/v1/deadletters?order=newest&limit=50 does: list,
			// then encode the letters (raw messages in base64) as its body.
			b.Run("newest-50-json", func(b *testing.B) {
				b.ReportAllocs()
				var size int
				defer reportCPU(b)()
				for range b.N {
					ls, err := s.List(ctx, Filter{Newest: true, Limit: 50})
					if err != nil {
						b.Fatal(err)
					}
					body, err := json.Marshal(map[string]any{"dead_letters": ls, "count": len(ls), "limit": 50})
					if err != nil {
						b.Fatal(err)
					}
					size = len(body)
				}
				b.ReportMetric(float64(size), "body-B")
			})
		})
	}
}

// reportCPU reports the process's CPU time (user and system) per
// operation from now until the returned function runs: on a shared
// machine it says what an operation costs better than the wall time.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() {
		b.ReportMetric(float64((cpu()-start).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	}
}
