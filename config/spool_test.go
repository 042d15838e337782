package config

import (
	"testing"

	"github.com/sensorgate/sensorgate/gateway/spool"
)

func TestSpoolSection(t *testing.T) {
	c, err := parseString("state_dir: /srv/sg\n"+base, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Spool.Dir != "/srv/sg/spool" || c.Spool.Fsync != spool.FsyncAlways || c.Spool.MaxBytes != spool.DefaultMaxBytes {
		t.Fatalf("spool defaults: %+v", c.Spool)
	}
	cases := []struct {
		name string
		src  string
		want []want
	}{
		{"interval fsync", lines("spool:", "  fsync: 1s"), nil},
		{"bad fsync", lines("spool:", "  fsync: sometimes"), []want{{2, "spool.fsync", "always"}}},
		{"zero max_bytes", lines("spool:", "  max_bytes: 0"), []want{{2, "spool.max_bytes", "1 GiB"}}},
		{"segment too small", lines("spool:", "  segment_bytes: 10"), []want{{2, "spool.segment_bytes", "outside"}}},
		{"max_bytes below two segments", lines("spool:", "  max_bytes: 100000", "  segment_bytes: 65536"), []want{{1, "spool", "two segments"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseString(tc.src+base, nil)
			checkProblems(t, err, tc.want)
		})
	}
}
