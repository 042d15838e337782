package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCodecsList(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"acme-meter.js", "cayenne-lpp.js", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("function decodeUplink(input) { return {data: {}}; }"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		args []string
		want []string // lines that must be there
		not  []string // model ids that must not
	}{
		{"built-in only", nil,
			[]string{"cayenne-lpp\tnative", "decentlab-dl-pm\tnative", "milesight-am319\tnative", "dragino-lht52\tnative"},
			[]string{"acme-meter", "notes"}},
		{"with scripts", []string{"-scripts", dir},
			[]string{"acme-meter\tscript " + filepath.Join(dir, "acme-meter.js"),
				"cayenne-lpp\tscript " + filepath.Join(dir, "cayenne-lpp.js") + " (replaces the native decoder)",
				"elsys-ers\tnative"},
			[]string{"notes"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if err := codecsCommand(context.Background(), append([]string{"list"}, tc.args...), &stdout, &stderr); err != nil {
				t.Fatalf("%v (stderr %s)", err, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			for _, w := range tc.want {
				if !slices.Contains(lines, w) {
					t.Errorf("no line %q in\n%s", w, stdout.String())
				}
			}
			for _, l := range lines {
				for _, n := range tc.not {
					if strings.HasPrefix(l, n) {
						t.Errorf("line %q should not be listed", l)
					}
				}
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if err := codecsCommand(context.Background(), []string{"list", "-scripts", filepath.Join(dir, "missing")}, &stdout, &stderr); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing scripts folder: err %v, want it named", err)
	}
	if err := codecsCommand(context.Background(), []string{"list", "extra"}, &stdout, &stderr); !errors.Is(err, errUsage) {
		t.Errorf("an argument: err %v, want a usage error", err)
	}
}
