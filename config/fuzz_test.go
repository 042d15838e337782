package config

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParse feeds arbitrary files to parse. Whatever the input, parse must
// not panic, must fail with *Problems (never another error) and lines
// inside the file, and a Config it accepts must pass Validate in code too.
// Seeds: testdata/fuzz/FuzzParse plus example.yaml.
func FuzzParse(f *testing.F) {
	f.Add(Example)
	f.Add([]byte(base))
	env := envOf(map[string]string{"SENSORGATE_TOKEN": "t", "CHIRPSTACK_MQTT_PASSWORD": "p", "TTS_API_KEY": "k", "INFLUX_TOKEN": "i", "EMPTY": ""})
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := parse(b, "fuzz.yaml", env)
		if err != nil {
			var p *Problems
			if !errors.As(err, &p) || len(p.List) == 0 {
				t.Fatalf("error %v (%T) is not a non-empty *Problems", err, err)
			}
			// YAML breaks lines at LF, CR and CRLF, and numbers them so:
			// "\r\r0" has its 0 on line 3.
			breaks := bytes.Count(b, []byte("\n")) + bytes.Count(b, []byte("\r")) - bytes.Count(b, []byte("\r\n"))
			maxLine := breaks + 2
			for _, pr := range p.List {
				if pr.Line < 0 || pr.Line > maxLine || pr.Msg == "" {
					t.Fatalf("problem %+v outside the file's %d lines", pr, maxLine)
				}
			}
			return
		}
		if cfg == nil {
			t.Fatal("nil Config without an error")
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted config fails Validate: %v", err)
		}
		// What validate accepts, the mqtt, lorawan and influx packages
		// must accept when the daemon starts.
		if err := cfg.Influx.Validate(); err != nil {
			t.Fatalf("influx accepted here but not by the influx package: %v", err)
		}
		for i, s := range cfg.Sources {
			if err := s.validateInPackage(); err != nil {
				t.Fatalf("sources[%d] accepted here but not by its package: %v", i, err)
			}
		}
	})
}
