package mqtt

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// benchParse parses one feed file (compacted, as brokers carry it) in a
// loop.
func benchParse(b *testing.B, format, file string) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, feedPayload(b, file)); err != nil {
		b.Fatal(err)
	}
	payload := buf.Bytes()
	topicFile, err := os.ReadFile(filepath.Join(feedsDir, file+".topic"))
	if err != nil {
		b.Fatal(err)
	}
	topic := strings.TrimSpace(string(topicFile)) // its device is the message's: the check runs
	p, err := NewParser(Config{Name: "bench", Format: format}, func() time.Time { return testClock })
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Parse(topic, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseChirpStackV4 parses a ~1.2 KB event: object, tags, three
// gateways.
func BenchmarkParseChirpStackV4(b *testing.B) {
	benchParse(b, FormatChirpStackV4, "chirpstack-v4/multi-gateway-object-upper")
}

func BenchmarkParseTTS(b *testing.B) {
	benchParse(b, FormatTTSV3, "tts-v3/decoded-normalized-two-gateways")
}

func BenchmarkParseChirpStackV3(b *testing.B) {
	benchParse(b, FormatChirpStackV3, "chirpstack-v3/json-objectjson-two-gateways")
}
