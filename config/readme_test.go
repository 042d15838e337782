package config

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sensorgate/sensorgate/devices"
)

// TestREADMEMinimalConfig: the config and the devices file the README's
// "A minimal config" shows are valid as they stand, and the devices file
// sets the tags the config lets through to InfluxDB.
func TestREADMEMinimalConfig(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## A minimal config\n")
	if !ok {
		t.Fatal(`README.md has no "A minimal config" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	blocks := yamlBlocks(section)
	if len(blocks) != 2 {
		t.Fatalf("the minimal config section holds %d yaml blocks, want 2 (config, devices file)", len(blocks))
	}
	env := func(name string) (string, bool) { return "secret-" + name, true }
	cfg, err := parse([]byte(blocks[0]), "README.md", env)
	if err != nil {
		t.Fatalf("the README's minimal config does not load: %v", err)
	}
	if len(cfg.Sources) != 1 {
		t.Errorf("the minimal config has %d sources, want 1", len(cfg.Sources))
	}
	devs, err := devices.ParseYAML([]byte(blocks[1]))
	if err != nil {
		t.Fatalf("the README's devices file does not load: %v", err)
	}
	if len(devs) == 0 {
		t.Fatal("the README's devices file holds no device")
	}
	for _, key := range cfg.Devices.Tags {
		if _, ok := devs[0].Tags[key]; !ok {
			t.Errorf("devices.tags allows %q, the example device has no such tag", key)
		}
	}
}

// TestREADMEFeedTable: the README's table of supported feeds has one row
// per format the config accepts, no more and no fewer.
func TestREADMEFeedTable(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Supported feeds\n")
	if !ok {
		t.Fatal(`README.md has no "Supported feeds" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, rows, ok := strings.Cut(section, "|---|---|---|\n")
	if !ok {
		t.Fatal("the Supported feeds section has no table")
	}
	var got []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z0-9-]+)` \\|").FindAllStringSubmatch(rows, -1) {
		got = append(got, m[1])
	}
	want := slices.Clone(feedFormats)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the README's feed table lists %q, the config accepts %q", got, want)
	}
}

// yamlBlocks returns the contents of the ```yaml fences in s, in order.
func yamlBlocks(s string) []string {
	var out []string
	for {
		_, rest, ok := strings.Cut(s, "```yaml\n")
		if !ok {
			return out
		}
		block, after, _ := strings.Cut(rest, "```")
		out = append(out, block)
		s = after
	}
}
