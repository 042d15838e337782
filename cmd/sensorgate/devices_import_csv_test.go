package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sensorgate/sensorgate/internal/testserver"
)

// TestDevicesImportCSVDialects runs `sensorgate devices import` on the
// spreadsheet exports operators bring: a UTF-8 BOM with bare CR line
// ends imports every row; a misspelt column, a ragged row and a control
// character are refused with the column suggested or the line named, and
// nothing is imported.
func TestDevicesImportCSVDialects(t *testing.T) {
	dir := t.TempDir()
	port := testserver.FreePort(t) // nothing listens: the CLI works on state_dir
	cfgPath := filepath.Join(dir, "sensorgate.yaml")
	cfg := fmt.Sprintf(`
log: {level: warn}
http: {listen: "127.0.0.1:%d"}
state_dir: %s/state
sources:
  - {name: cs4, type: mqtt, format: chirpstack-v4, broker: "tcp://127.0.0.1:1", topics: ["a/+"]}
influx: {url: "http://127.0.0.1:1", bucket: b}
`, port, dir)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), args, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	sheet := filepath.Join(dir, "sheet.csv")
	importText := func(text string) (int, string) {
		if err := os.WriteFile(sheet, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return run("devices", "import", "-c", cfgPath, sheet)
	}

	for _, bad := range []struct{ text, want string }{
		{"dev_eui;name;modle\r0101010101010101;a;cayenne-lpp\r", `unknown column "modle" (column 3): did you mean "model"?`},
		{"dev_eui;name;model\r0101010101010101;a\r", "line 2: 0101010101010101: 2 fields, the header has 3"},
		{"dev_eui;name;model\r\n0101010101010101;a;cayenne-lpp\r\n0202020202020202;b\x1b[1m;\r\n", "line 3: 0202020202020202: name: control character U+001B"},
		// The advice names the CLI's flag, not only the API's parameter.
		{"dev_eui;name;model\n0101010101010101;a;acme-unknown\n", "-dry-run in the CLI"},
	} {
		code, out := importText(bad.text)
		if code == 0 || !strings.Contains(out, bad.want) {
			t.Fatalf("import of %q: exit %d\n%s\nwant a failure saying %q", bad.text, code, out, bad.want)
		}
	}
	if code, out := run("devices", "list", "-c", cfgPath); code != 0 || strings.Contains(out, "0101010101010101") {
		t.Fatalf("a refused import left devices: %d\n%s", code, out)
	}

	code, out := importText("\ufeffdev_eui;name;model;tag:site\r0101010101010101;a;cayenne-lpp;depot\r0202020202020202;b;;\r")
	if code != 0 || !strings.Contains(out, "2 to create") && !strings.Contains(out, "2 created") {
		t.Fatalf("BOM and CR import: %d\n%s", code, out)
	}
	if code, out = run("devices", "export", "-c", cfgPath, "-format", "csv"); code != 0 ||
		!strings.Contains(out, "0101010101010101,a,cayenne-lpp,site=depot") || !strings.Contains(out, "0202020202020202,b,") {
		t.Fatalf("export after import: %d\n%s", code, out)
	}
}
