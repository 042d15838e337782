package codecs

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/decoders/script"
)

// The fake repositories hold test codecs written for sensorgate, laid out
// like the real ones (see their README.md).
const (
	ttnRepo        = "../../testdata/codecs/ttn-repo"
	chirpstackRepo = "../../testdata/codecs/chirpstack-repo"
)

// runImport imports models from the repository at from with im and
// returns its report.
func runImport(t *testing.T, im Importer, from string, models ...string) (string, error) {
	t.Helper()
	src, err := OpenSource(from, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var report bytes.Buffer
	im.Source, im.Report = src, &report
	err = im.Import(context.Background(), models)
	return report.String(), err
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestCodecsImportTTN(t *testing.T) {
	dir := t.TempDir()
	out, err := runImport(t, Importer{Dir: dir}, ttnRepo, "elsys/ers-co2", "dragino/lht65")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{
		"elsys/ers-co2: codec ers-co2-codec (vendor/elsys/elsys.js)",
		"PASS  1 temperature, humidity, light, motion and co2",
		"PASS  2 battery and a type the codec does not know",
		"PASS  2 Unknown FPort",
		"(model dragino-lht65)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The written codec is the daemon's: it loads and decodes as the model.
	c, err := script.LoadFile(filepath.Join(dir, "elsys-ers-co2.js"), script.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Model() != "elsys-ers-co2" || !c.HasNormalize() {
		t.Fatalf("model %q normalize %v", c.Model(), c.HasNormalize())
	}
	src, _ := os.ReadFile(filepath.Join(dir, "elsys-ers-co2.js"))
	if !strings.HasPrefix(string(src), "// Imported by 'sensorgate codecs import' from "+ttnRepo+": vendor/elsys/elsys.js.\n") {
		t.Fatalf("no provenance line: %.120s", src)
	}
	res, err := c.Decode(decoders.Input{FPort: 1, Bytes: []byte{0x06, 0x03, 0x08}})
	if err != nil || res.DataMap()["co2"] != 776.0 {
		t.Fatalf("decode: %v %v", res.DataMap(), err)
	}
	// Nothing but the codecs was written (no temporary files left).
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"dragino-lht65.js", "elsys-ers-co2.js"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("folder holds %v, want %v", names, want)
	}
}

func TestCodecsImportFailingExample(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "acme-wrong.js")
	out, err := runImport(t, Importer{Dir: dir}, ttnRepo, "acme/wrong")
	if err == nil {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"PASS  1 agrees", `FAIL  2 disagrees: data {"level":20}, want {"level":21}`, "not written: 1 of 2 examples failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if exists(dst) {
		t.Fatal("a codec with a failing example was written")
	}
	// -force writes it, and still fails the command.
	out, err = runImport(t, Importer{Dir: dir, Force: true}, ttnRepo, "acme/wrong")
	if err == nil || !exists(dst) || !strings.Contains(out, "despite 1 failed examples (-force)") {
		t.Fatalf("-force: err %v, written %v\n%s", err, exists(dst), out)
	}
}

func TestCodecsImportFirmware(t *testing.T) {
	dir := t.TempDir()
	out, err := runImport(t, Importer{Dir: dir}, ttnRepo, "acme/multi")
	if err == nil || !strings.Contains(out, "firmware 1.0: multi-v1-codec; firmware 2.0: multi-v2-codec): choose one with -firmware") {
		t.Fatalf("err %v\n%s", err, out)
	}
	out, err = runImport(t, Importer{Dir: dir, Firmware: "2.0"}, ttnRepo, "acme/multi")
	if err != nil || !strings.Contains(out, "PASS  1 version 2 frame") {
		t.Fatalf("err %v\n%s", err, out)
	}
	out, err = runImport(t, Importer{Dir: dir, Firmware: "3.0"}, ttnRepo, "acme/multi")
	if err == nil || !strings.Contains(out, `has no firmware version "3.0" (it has 1.0, 2.0)`) {
		t.Fatalf("err %v\n%s", err, out)
	}
	// Several firmware versions and regions naming one codec need no flag.
	if out, err := runImport(t, Importer{Dir: dir}, ttnRepo, "elsys/ers-co2"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

func TestCodecsImportRefusals(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ model, msg string }{
		{"acme/escape", `uplinkDecoder.fileName "../../../elsys-ers-co2.js" is not a plain file name`},
		{"acme/broken", "acme-broken.js does not compile"},
		{"acme/nothing", "neither vendor/acme/nothing.yaml"},
	} {
		out, err := runImport(t, Importer{Dir: dir}, ttnRepo, tc.model)
		if err == nil || !strings.Contains(out, tc.msg) {
			t.Errorf("%s: err %v, output lacks %q:\n%s", tc.model, err, tc.msg, out)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("files written: %v", entries)
	}
}

func TestCodecsImportChirpStack(t *testing.T) {
	dir := t.TempDir()
	out, err := runImport(t, Importer{Dir: dir}, chirpstackRepo, "milesight/em310-udl", "decentlab/dl-pm")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{
		"milesight/em310-udl: codec em310-udl.js (vendors/milesight/codecs/em310-udl.js)",
		"PASS  2 with the mounting height variable",
		"PASS  1 battery only",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	c, err := script.LoadFile(filepath.Join(dir, "decentlab-dl-pm.js"), script.Options{})
	if err != nil || c.Style() != script.StyleChirpStackV3 {
		t.Fatalf("%v %v", c, err)
	}
}

// TestCodecsImportHTTP fetches single files from a repository served over
// HTTP, as from raw.githubusercontent.com.
func TestCodecsImportHTTP(t *testing.T) {
	var requested []string
	fileServer := http.FileServer(http.Dir(ttnRepo))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requested = append(requested, r.URL.Path)
		fileServer.ServeHTTP(w, r)
	}))
	defer srv.Close()
	dir := t.TempDir()
	out, err := runImport(t, Importer{Dir: dir}, srv.URL+"/", "dragino/lht65")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := []string{"/vendor/dragino/lht65.yaml", "/vendor/dragino/lht65-codec.yaml", "/vendor/dragino/lht65.js"}
	if !reflect.DeepEqual(requested, want) {
		t.Fatalf("requested %v, want only the device's files %v", requested, want)
	}
	if !exists(filepath.Join(dir, "dragino-lht65.js")) {
		t.Fatal("not written")
	}
	out, err = runImport(t, Importer{Dir: dir}, srv.URL, "acme/nothing")
	if err == nil || !strings.Contains(out, "neither vendor/acme/nothing.yaml") {
		t.Fatalf("err %v\n%s", err, out)
	}
}

func TestChirpStackFirmware(t *testing.T) {
	src := `[device]
name = "x"
codec = "not-firmware.js"

[[device.firmware]]
version = "1.0" # first
profiles = [
    "EU868-1_0_3.toml",
]
codec = 'literal.js'

[[device.firmware]]
version = "2.0"
codec = "two.js"

[device.metadata]
codec = "metadata.js"
`
	got, err := chirpstackFirmware([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if want := [][2]string{{"1.0", "literal.js"}, {"2.0", "two.js"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
	if _, err := chirpstackFirmware([]byte("[[device.firmware]]\ncodec = x.js\n")); err == nil {
		t.Fatal("unquoted value accepted")
	}
}

// TestCodecsImportWarnsAboutState: each example is checked in a fresh
// state (so a codec that numbers its calls passes every example), and a
// codec whose output changes when its runtime is reused gets a warning
// naming the codec and the example; a stateless codec gets none.
func TestCodecsImportWarnsAboutState(t *testing.T) {
	dir := t.TempDir()
	out, err := runImport(t, Importer{Dir: dir}, ttnRepo, "acme/counter")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{
		"PASS  1 First reading",
		"PASS  2 Second reading",
		`WARN  1 First reading: codec acme-counter.js keeps state between calls: decoded after 2 other decodes in the same runtime it gives {"data":{"reading":16,"sequence":3}`,
		`WARN  2 Second reading: codec acme-counter.js keeps state between calls: decoded after 1 other decodes in the same runtime it gives {"data":{"reading":32,"sequence":2}`,
		"in a fresh one {\"data\":{\"reading\":32,\"sequence\":1}",
		"wrote " + filepath.Join(dir, "acme-counter.js"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, err = runImport(t, Importer{Dir: t.TempDir()}, ttnRepo, "dragino/lht65")
	if err != nil || strings.Contains(out, "WARN") {
		t.Fatalf("stateless codec: %v\n%s", err, out)
	}
}
