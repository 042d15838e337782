package devices

import (
	"syscall"
	"testing"
	"time"
)

// cpuNow is the process's user and system CPU time: on a loaded machine
// cpu-ns/op moves much less than ns/op.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkHealthObserve is device health's per-uplink cost on the
// single-instance path: 1,000 devices reporting in turn, each with the
// next frame counter, radio and battery.
func BenchmarkHealthObserve(b *testing.B) {
	benchObserve(b, NewHealth(0))
}

// benchObserve observes b.N uplinks of 1,000 devices into h.
func benchObserve(b *testing.B, h *Health) {
	const n = 1000
	t0 := time.Now().Add(-time.Hour)
	euis := make([]EUI, n)
	for i := range euis {
		euis[i] = EUI{0x70, byte(i >> 8), byte(i)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuNow()
	defer func() { b.ReportMetric(float64(cpuNow()-start)/float64(b.N), "cpu-ns/op") }()
	for i := 0; i < b.N; i++ {
		d := i % n
		h.Observe(Observation{EUI: euis[d], Time: t0.Add(time.Duration(i) * time.Millisecond), Name: "d", Model: "m", Source: "s",
			FCnt: uint32(i / n), HasFCnt: true, RSSI: -90, HasRSSI: true, SNR: 7, HasSNR: true, Battery: 3.6, HasBattery: true})
	}
}

// BenchmarkHealthObserveShared is BenchmarkHealthObserve on a Health
// shared between instances (frame-counter sets, no journal): the
// PostgreSQL path's in-memory cost per uplink.
func BenchmarkHealthObserveShared(b *testing.B) {
	h := NewHealth(0)
	h.Share()
	benchObserve(b, h)
}
