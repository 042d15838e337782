package config

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/sensorgate/sensorgate/gateway/mqtt"
)

// TestStarterExamples validates every starter config in examples/ (linked
// from the README's Quickstart) with and without its secrets set, and
// checks each is the kind of source its name promises, short and
// commented.
func TestStarterExamples(t *testing.T) {
	cases := []struct {
		file, typ, format string
	}{
		{"chirpstack-v4.yaml", SourceMQTT, mqtt.FormatChirpStackV4},
		{"the-things-stack.yaml", SourceMQTT, mqtt.FormatTTSV3},
		{"semtech-udp.yaml", SourceSemtechUDP, ""},
		{"json-sensors.yaml", SourceMQTT, mqtt.FormatJSON},
	}
	files, err := filepath.Glob("examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, c := range cases {
		want = append(want, filepath.Join("examples", c.file))
	}
	slices.Sort(files)
	slices.Sort(want)
	if !slices.Equal(files, want) {
		t.Errorf("examples/ holds %q, this test covers %q: add a case for each file", files, want)
	}
	envRef := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join("examples", c.file)
			b := mustRead(t, path)
			// Load reads the process environment: the file must be valid
			// as an operator first runs it, secrets not yet exported.
			for _, m := range envRef.FindAllSubmatch(b, -1) {
				t.Setenv(string(m[1]), "")
			}
			cfg, err := Load(path)
			if err != nil {
				t.Fatalf("%s does not validate without its secrets: %v", path, err)
			}
			set := map[string]string{}
			for _, m := range envRef.FindAllSubmatch(b, -1) {
				if len(m[2]) == 0 {
					t.Errorf("${%s} has no default: the example fails while the variable is unset; write ${%s:-}", m[1], m[1])
				}
				set[string(m[1])] = "secret-" + string(m[1])
			}
			if _, err := parse(b, path, envOf(set)); err != nil {
				t.Errorf("%s does not validate with its secrets set: %v", path, err)
			}
			if len(cfg.Sources) != 1 {
				t.Fatalf("%d sources, want the one the example is about", len(cfg.Sources))
			}
			s := cfg.Sources[0]
			if s.Type != c.typ {
				t.Errorf("source type %q, want %q", s.Type, c.typ)
			}
			if c.format != "" && (s.MQTT == nil || s.MQTT.Format != c.format) {
				t.Errorf("source is not of format %q: %+v", c.format, s.MQTT)
			}
			if err := s.validateInPackage(); err != nil {
				t.Errorf("valid here but not for the source's package: %v", err)
			}
			if !bytes.HasPrefix(b, []byte("# sensorgate starter config: ")) {
				t.Errorf("%s does not open with a comment saying what it is for", path)
			}
			if n := bytes.Count(b, []byte("\n")); n > 60 {
				t.Errorf("%s has %d lines: a starter config stays short (config/example.yaml documents every key)", path, n)
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
