package webhook

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
)

// BenchmarkRequest is one webhook uplink through the source's handler
// (auth, body, kind, parse) to a pipeline that takes it at once, in
// process; parse-only is the feed parser alone on the same message, so
// the difference is what HTTP adds.
func BenchmarkRequest(b *testing.B) {
	for _, c := range []struct{ format, file string }{
		{mqtt.FormatTTSV3, "tts-v3/decoded-normalized-two-gateways"},
		{mqtt.FormatChirpStackV4, "chirpstack-v4/multi-gateway-object-upper"},
	} {
		body, err := os.ReadFile("../../testdata/feeds/" + c.file + ".json")
		if err != nil {
			b.Fatal(err)
		}
		cfg := testConfig(c.format)
		s, err := New(cfg, &letters{}, &gateway.Counters{}, zerolog.Nop())
		if err != nil {
			b.Fatal(err)
		}
		h := s.Handler(func(context.Context, gateway.Uplink) error { return nil })
		b.Run(c.format+"/handler", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/hook/", bytes.NewReader(body))
				req.Header.Set("X-Secret", "s3cret")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusNoContent {
					b.Fatal(rec.Code)
				}
			}
		})
		b.Run(c.format+"/parse-only", func(b *testing.B) {
			p, _ := mqtt.NewParser(cfg.WithDefaults().ParserConfig(), time.Now)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := p.Parse("/hook/", body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
