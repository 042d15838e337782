package ttsstorage

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// BenchmarkBackfill is the Storage Integration side of a refill: HTTP
// pages from the test server, line reading, parsing into uplinks, batches
// handed to a handler that takes them at once (the pipeline and spool
// are measured by their own benchmarks). Reported per uplink.
func BenchmarkBackfill(b *testing.B) {
	const n = 10000
	srv := testserver.StartTTSStorage(b, testApp, testKey)
	for i := range n {
		if err := srv.Store(storedUp(fmt.Sprint("dev-", i%100), i, t0.Add(time.Duration(i)*time.Millisecond))); err != nil {
			b.Fatal(err)
		}
	}
	parser, err := mqtt.NewParser(mqtt.Config{Name: "tts", Format: mqtt.FormatTTSV3}, nil)
	if err != nil {
		b.Fatal(err)
	}
	client, err := New("tts", Config{URL: srv.URL(), APIKey: NewAPIKey(testKey), ApplicationID: testApp, RequestInterval: time.Nanosecond}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	fill := &Backfill{Client: client, Parser: parser, DeadLetters: &recorder{}, Log: zerolog.Nop(),
		Handler: func(context.Context, gateway.Uplink) error { return nil }}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := fill.Run(context.Background(), Range{}, nil)
		if err != nil || res.Uplinks < n {
			b.Fatalf("%d uplinks, %v", res.Uplinks, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/uplink")
}
