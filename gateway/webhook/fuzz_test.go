package webhook

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
)

// FuzzRequest sends arbitrary requests (format, query, content type,
// body) through the source's handler. Whatever comes, the answer is one of
// the statuses the source promises, a 204 is exactly one uplink handed on
// or one event counted, a 400 is exactly one dead letter holding the body,
// and nothing else reaches the pipeline or the dead letters.
func FuzzRequest(f *testing.F) {
	seeds, _ := filepath.Glob("../../testdata/feeds/*/*.json")
	bad, _ := filepath.Glob("../../testdata/feeds/bad/*/*.json")
	events, _ := filepath.Glob("../../testdata/webhooks/*/*.json")
	for i, p := range append(append(seeds, bad...), events...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		ev := strings.TrimSuffix(filepath.Base(p), ".json")
		f.Add(uint8(i), "event="+ev, "application/json", b)
		f.Add(uint8(i), "", "", b)
	}
	f.Add(uint8(1), "event=up", "application/octet-stream", []byte("\x0a\x10"))
	handlers := map[string]*Source{}
	for _, format := range Formats {
		cfg := Config{Name: "fuzz", Format: format, Listen: "127.0.0.1:0", Auth: Auth{None: true}, MaxBodyBytes: 1 << 16}
		if format == mqtt.FormatJSON {
			cfg.JSON = mqtt.JSONConfig{DeviceID: "id", Time: "t", TimeFormat: mqtt.TimeUnix}
		}
		s, err := New(cfg, &letters{}, &gateway.Counters{}, zerolog.Nop(), WithClock(func() time.Time { return time.Unix(1.7e9, 0) }))
		if err != nil {
			f.Fatal(err)
		}
		handlers[format] = s
	}
	f.Fuzz(func(t *testing.T, format uint8, query, contentType string, body []byte) {
		s := handlers[Formats[int(format)%len(Formats)]]
		// Fresh state per input: the handler's own counters and letters.
		dl := &letters{}
		s.dl, s.counters = dl, &gateway.Counters{}
		var ups []gateway.Uplink
		h := s.Handler(func(_ context.Context, up gateway.Uplink) error { ups = append(ups, up); return nil })
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.URL.RawQuery = query
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		events := 0
		for name, n := range s.counters.Snapshot() {
			if strings.HasPrefix(name, "webhook.events.") {
				events += int(n)
			}
		}
		letters := dl.all()
		switch rec.Code {
		case http.StatusNoContent:
			if len(ups)+events != 1 || len(letters) != 0 {
				t.Fatalf("204 with %d uplinks, %d events, %d letters", len(ups), events, len(letters))
			}
			for _, up := range ups {
				if !bytes.Equal(up.Raw, body) || up.Time.IsZero() {
					t.Fatalf("uplink %+v: Raw is not the body, or no time", up)
				}
			}
		case http.StatusBadRequest:
			if len(letters) != 1 || !bytes.Equal(letters[0].Raw, body) || len(ups) != 0 {
				t.Fatalf("400 with %d letters, %d uplinks", len(letters), len(ups))
			}
		case http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			if len(letters)+len(ups)+events != 0 {
				t.Fatalf("%d with something taken", rec.Code)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}
