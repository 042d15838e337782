package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileWarnings(t *testing.T) {
	withSecrets := base + lines("  - name: b", "    type: mqtt", "    format: chirpstack-v4", "    broker: tcp://127.0.0.1:1883",
		"    topics: [a/+]", "    username: u", "    password: hunter2") + lines("http:", "  token: s3cret-token")
	tests := []struct {
		name string
		src  string
		mode os.FileMode
		want string // "" for no warning
	}{
		{"literal secrets, world-readable", withSecrets, 0o644, "mode 0644) is readable by others and holds secrets written into it (http.token, sources[1].password): chmod 600"},
		{"literal secrets, group-readable", withSecrets, 0o640, "is readable by its group"},
		{"literal secrets, owner only", withSecrets, 0o600, ""},
		{"environment references only", edit(base, "  bucket: sensors", "  bucket: sensors", "  token: ${INFLUX_TOKEN}") + lines("http:", `  token: "${SENSORGATE_TOKEN}"`), 0o644, ""},
		{"a default is written into the file", edit(base, "  bucket: sensors", "  bucket: sensors", "  token: ${INFLUX_TOKEN:-admin:admin}"), 0o644, "(influx.token)"},
		{"a reference with text around it", base + lines("http:", `  token: "tok-${SUFFIX}"`), 0o644, "(http.token)"},
		{"no secrets", base, 0o644, ""},
		{"empty secrets", base + lines("http:", `  token: ""`), 0o644, ""},
		{"not YAML", "{{{", 0o644, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sensorgate.yaml")
			if err := os.WriteFile(path, []byte(tt.src), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil { // past the umask
				t.Fatal(err)
			}
			got := FileWarnings(path)
			switch {
			case tt.want == "" && len(got) != 0:
				t.Fatalf("warnings %q, want none", got)
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)):
				t.Fatalf("warnings %q, want one with %q", got, tt.want)
			}
			for _, w := range got {
				if strings.Contains(w, "hunter2") || strings.Contains(w, "s3cret") {
					t.Errorf("the warning holds the secret: %s", w)
				}
			}
		})
	}
	if got := FileWarnings(filepath.Join(t.TempDir(), "missing.yaml")); got != nil {
		t.Errorf("missing file: %q", got)
	}
}
