package devices

import (
	"context"
	"testing"
	"time"
)

// BenchmarkSharedHealthSync100k measures one sync of an instance whose
// 100,000 devices each sent a frame since the last one (a fleet at one
// uplink per device per sync interval, far above a real fleet's rate),
// against the machine's PostgreSQL: write is the changed devices' rows,
// read is another instance taking them in. idle is a sync with nothing
// changed. Each iteration's frames are observed with the timer stopped.
func BenchmarkSharedHealthSync100k(b *testing.B) {
	const n = 100000
	ctx := context.Background()
	db := newStoreDB(b, DriverPostgres)
	var stores [2]*Store
	var hs [2]*Health
	for i := range stores {
		stores[i] = db.open(b, nil)
		hs[i] = NewHealth(0)
		hs[i].SetMaxUnknown(n)
		if _, err := stores[i].ShareHealth(ctx, hs[i]); err != nil {
			b.Fatal(err)
		}
	}
	euis := make([]EUI, n)
	for i := range euis {
		euis[i] = EUI{0x70, 1, byte(i >> 16), byte(i >> 8), byte(i)}
	}
	t0 := time.Now().UTC().Add(-time.Hour)
	fcnt := uint32(0)
	observe := func() {
		fcnt++
		for _, e := range euis {
			hs[0].Observe(Observation{EUI: e, Time: t0.Add(time.Duration(fcnt) * time.Second), FCnt: fcnt, HasFCnt: true, Unknown: true})
		}
	}
	b.Run("write", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			observe()
			b.StartTimer()
			if err := stores[0].SyncHealth(ctx, hs[0]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/n*1000, "ns/device")
	})
	b.Run("read", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			observe()
			if err := stores[0].SyncHealth(ctx, hs[0]); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := stores[1].SyncHealth(ctx, hs[1]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/n*1000, "ns/device")
	})
	b.Run("idle", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := stores[1].SyncHealth(ctx, hs[1]); err != nil {
				b.Fatal(err)
			}
		}
	})
	if r, _ := hs[1].Get(euis[n-1], t0.Add(time.Duration(fcnt)*time.Second)); r.Uplinks24h != int(fcnt) || r.Lost24h != 0 {
		b.Errorf("the reading instance: %d uplinks, %d lost; want %d and 0", r.Uplinks24h, r.Lost24h, fcnt)
	}
}
