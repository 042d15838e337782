package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// base is a minimal valid file. Sources come last so that a test can append
// keys to the one source (line 10 on) or add sources.
const base = `influx:
  url: http://127.0.0.1:8086
  bucket: sensors
sources:
  - name: cs
    type: mqtt
    format: chirpstack-v4
    broker: tcp://127.0.0.1:1883
    topics: ["application/+/device/+/event/up"]
`

// edit replaces the one line old of src with new (several lines, or none).
// It panics when old is not exactly one line: the test table is wrong.
func edit(src, old string, new ...string) string {
	if strings.Count(src, old+"\n") != 1 {
		panic(fmt.Sprintf("edit: %q is not exactly one line of the source", old))
	}
	repl := strings.Join(new, "\n")
	if len(new) > 0 {
		repl += "\n"
	}
	return strings.Replace(src, old+"\n", repl, 1)
}

// lines joins lines into a file, so that line numbers can be read off.
func lines(l ...string) string { return strings.Join(l, "\n") + "\n" }

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func parseString(src string, env map[string]string) (*Config, error) {
	return parse([]byte(src), "test.yaml", envOf(env))
}

// want is an expected problem; msg is a substring of its message.
type want struct {
	line int
	path string
	msg  string
}

func problemsOf(t *testing.T, err error) []Problem {
	t.Helper()
	var p *Problems
	if !errors.As(err, &p) {
		t.Fatalf("error %v (%T) is not *Problems", err, err)
	}
	return p.List
}

// checkProblems asserts that err holds exactly the wanted problems, in order.
func checkProblems(t *testing.T, err error, wants []want) {
	t.Helper()
	if len(wants) == 0 {
		if err != nil {
			t.Fatalf("unexpected error:\n%v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error; want %d problems", len(wants))
	}
	got := problemsOf(t, err)
	if len(got) != len(wants) {
		t.Fatalf("got %d problems, want %d:\n%v", len(got), len(wants), err)
	}
	for i, w := range wants {
		g := got[i]
		if g.Line != w.line || g.Path != w.path || !strings.Contains(g.Msg, w.msg) {
			t.Errorf("problem %d = %d %s: %s\nwant %d %s: …%s…", i, g.Line, g.Path, g.Msg, w.line, w.path, w.msg)
		}
	}
}
