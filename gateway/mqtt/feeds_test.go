package mqtt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// feedsDir is the shared feed corpus (testdata/feeds/README.md).
const feedsDir = "../../testdata/feeds"

// testClock is the local clock of every parser in tests, so messages
// without a time parse deterministically.
var testClock = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// feedFile is one message of testdata/feeds.
type feedFile struct {
	Name    string // dir/name, e.g. "chirpstack-v4/docs-example"
	Topic   string
	Payload []byte
	Parser  *Parser
}

// loadFeeds reads every message under dir (relative to feedsDir), with the
// parser its directory's source.yaml describes.
func loadFeeds(t testing.TB, dir string) []feedFile {
	t.Helper()
	configs, err := filepath.Glob(filepath.Join(feedsDir, dir, "*", "source.yaml"))
	if err != nil || len(configs) == 0 {
		t.Fatalf("no feed directories under %s: %v", filepath.Join(feedsDir, dir), err)
	}
	var out []feedFile
	for _, sy := range configs {
		b, err := os.ReadFile(sy)
		if err != nil {
			t.Fatal(err)
		}
		var cfg Config
		if err := yaml.Unmarshal(b, &cfg); err != nil {
			t.Fatalf("%s: %v", sy, err)
		}
		cfg.Name = "test"
		p, err := NewParser(cfg, func() time.Time { return testClock })
		if err != nil {
			t.Fatalf("%s: %v", sy, err)
		}
		files, _ := filepath.Glob(filepath.Join(filepath.Dir(sy), "*.json"))
		for _, f := range files {
			payload, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			topic, err := os.ReadFile(strings.TrimSuffix(f, ".json") + ".topic")
			if err != nil {
				t.Fatalf("%s has no .topic sidecar: %v", f, err)
			}
			rel, _ := filepath.Rel(filepath.Join(feedsDir, dir), f)
			out = append(out, feedFile{
				Name:    strings.TrimSuffix(filepath.ToSlash(rel), ".json"),
				Topic:   strings.TrimSpace(string(topic)),
				Payload: payload,
				Parser:  p,
			})
		}
	}
	return out
}

// feedPayload returns one file's bytes, for benchmarks and fuzz seeds.
func feedPayload(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(feedsDir, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
