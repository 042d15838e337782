package config

import (
	"testing"

	"github.com/sensorgate/sensorgate/gateway/deadletter"
)

func TestDeadLettersSection(t *testing.T) {
	c, err := parseString(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DeadLetters.MaxBytes != deadletter.DefaultMaxBytes {
		t.Fatalf("deadletters.max_bytes default %d", c.DeadLetters.MaxBytes)
	}
	cases := []struct {
		name string
		src  string
		want []want
	}{
		{"set", lines("deadletters:", "  max_bytes: 1073741824"), nil},
		{"zero", lines("deadletters:", "  max_bytes: 0"), []want{{2, "deadletters.max_bytes", "at least 1048576"}}},
		{"negative", lines("deadletters:", "  max_bytes: -5"), []want{{2, "deadletters.max_bytes", "256 MiB"}}},
		{"too small", lines("deadletters:", "  max_bytes: 4096"), []want{{2, "deadletters.max_bytes", "at least"}}},
		{"misspelled", lines("deadletters:", "  max_byte: 4096"), []want{{2, "deadletters.max_byte", ""}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseString(tc.src+base, nil)
			checkProblems(t, err, tc.want)
		})
	}
}
