package script

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/decoders"
)

func versionCodec(v string) string {
	return "function decodeUplink(input) { return { data: { version: '" + v + "' } }; }\n"
}

func writeFile(t *testing.T, path, src string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// decodeVersion decodes with whatever the registry holds for model and
// returns the data's "version", or "" if the model resolves to no script.
func decodeVersion(reg *decoders.Registry, model string) string {
	d, ok := reg.Lookup(model)
	if !ok {
		return ""
	}
	if _, isScript := d.(*Codec); !isScript {
		return "native"
	}
	res, err := d.Decode(decoders.Input{Bytes: []byte{1}})
	if err != nil {
		return "error: " + err.Error()
	}
	v, _ := res.DataMap()["version"].(string)
	return v
}

// await polls until decodeVersion returns want, or fails at the deadline.
func await(t *testing.T, reg *decoders.Registry, model, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := decodeVersion(reg, model)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %q after 10s, want %q", model, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHotReload runs a Watcher and rewrites, adds and removes files under
// it; each change shows in the next decodes without a restart.
func TestHotReload(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "city-sensor.js"), versionCodec("one"))
	reg := decoders.NewRegistry()
	w := NewWatcher(dir, reg, Options{PollInterval: 10 * time.Millisecond, Timeout: 10 * time.Second})
	if err := w.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := decodeVersion(reg, "city-sensor"); got != "one" {
		t.Fatalf("after Sync: %q", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	// Rewrite in place.
	writeFile(t, filepath.Join(dir, "city-sensor.js"), versionCodec("two, longer"))
	await(t, reg, "city-sensor", "two, longer")

	// Replace by rename, as editors and the import command do.
	tmp := filepath.Join(dir, ".city-sensor.js.tmp")
	writeFile(t, tmp, versionCodec("three"))
	if err := os.Rename(tmp, filepath.Join(dir, "city-sensor.js")); err != nil {
		t.Fatal(err)
	}
	await(t, reg, "city-sensor", "three")

	// A new file; and one that overrides a native decoder.
	writeFile(t, filepath.Join(dir, "second.js"), versionCodec("new"))
	await(t, reg, "second", "new")
	writeFile(t, filepath.Join(dir, "elsys-ers.js"), versionCodec("override"))
	await(t, reg, "elsys-ers", "override")

	// Removal: the script is gone, the native decoder is back.
	if err := os.Remove(filepath.Join(dir, "elsys-ers.js")); err != nil {
		t.Fatal(err)
	}
	await(t, reg, "elsys-ers", "native")
	if err := os.Remove(filepath.Join(dir, "second.js")); err != nil {
		t.Fatal(err)
	}
	await(t, reg, "second", "")
	if got := w.Models(); !equalStrings(got, []string{"city-sensor"}) {
		t.Fatalf("Models() = %v", got)
	}
}

// TestBrokenReload: a version that does not compile is reported and not
// registered; the previous version keeps decoding.
func TestBrokenReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "meter.js")
	writeFile(t, path, versionCodec("good"))
	writeFile(t, filepath.Join(dir, "Bad Name.js"), versionCodec("x"))
	writeFile(t, filepath.Join(dir, "notes.txt"), "not a codec")
	writeFile(t, filepath.Join(dir, ".hidden.js"), "syntax error (")
	reg := decoders.NewRegistry()
	w := NewWatcher(dir, reg, relaxed)
	ctx := context.Background()
	err := w.Sync(ctx)
	if !errors.Is(err, ErrLoad) || !strings.Contains(err.Error(), "Bad Name.js") {
		t.Fatalf("Sync: %v, want the bad file name reported", err)
	}
	if got := decodeVersion(reg, "meter"); got != "good" {
		t.Fatalf("meter: %q", got)
	}

	writeFile(t, path, "function decodeUplink(input) { return {data: {version: 'broken'}}")
	err = w.Sync(ctx)
	if !errors.Is(err, ErrLoad) || !strings.Contains(err.Error(), "meter.js does not compile") {
		t.Fatalf("Sync: %v, want meter.js reported", err)
	}
	if got := decodeVersion(reg, "meter"); got != "good" {
		t.Fatalf("after a broken rewrite: %q, want the previous version", got)
	}
	// Unchanged since: not reported again.
	if err := w.Sync(ctx); err != nil {
		t.Fatalf("second Sync: %v", err)
	}
	writeFile(t, path, versionCodec("fixed"))
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := decodeVersion(reg, "meter"); got != "fixed" {
		t.Fatalf("after the fix: %q", got)
	}
}

// TestSameSizeRewrite: a rewrite of the same size right after a Sync has,
// on a coarse file clock, the same mtime; it must still be seen.
func TestSameSizeRewrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "meter.js")
	writeFile(t, path, versionCodec("aa"))
	reg := decoders.NewRegistry()
	w := NewWatcher(dir, reg, relaxed)
	ctx := context.Background()
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	info, _ := os.Stat(path)
	writeFile(t, path, versionCodec("bb"))
	if err := os.Chtimes(path, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := decodeVersion(reg, "meter"); got != "bb" {
		t.Fatalf("meter: %q", got)
	}
}

// TestSymlinkSwap: a Kubernetes ConfigMap volume updates files by swapping
// a "..data" symlink to a new folder; the codec symlinks stay the same.
func TestSymlinkSwap(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"v1", "v2"} {
		if err := os.Mkdir(filepath.Join(root, v), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, v, "meter.js"), versionCodec(v))
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("v1", filepath.Join(root, "..data")))
	must(os.Symlink("..data/meter.js", filepath.Join(root, "meter.js")))
	reg := decoders.NewRegistry()
	w := NewWatcher(root, reg, relaxed)
	must(w.Sync(context.Background()))
	if got := decodeVersion(reg, "meter"); got != "v1" {
		t.Fatalf("meter: %q", got)
	}
	must(os.Symlink("v2", filepath.Join(root, "..data_tmp")))
	must(os.Rename(filepath.Join(root, "..data_tmp"), filepath.Join(root, "..data")))
	must(w.Sync(context.Background()))
	if got := decodeVersion(reg, "meter"); got != "v2" {
		t.Fatalf("after the swap: %q", got)
	}
	if got := w.Models(); !equalStrings(got, []string{"meter"}) {
		t.Fatalf("Models() = %v (the v1/v2 folders are not codecs)", got)
	}
}

// TestMissingFolder: a folder that disappears keeps the loaded codecs.
func TestMissingFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "codecs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "meter.js"), versionCodec("kept"))
	reg := decoders.NewRegistry()
	w := NewWatcher(dir, reg, relaxed)
	if err := w.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(context.Background()); err == nil || !strings.Contains(err.Error(), "decoders.scripts") {
		t.Fatalf("Sync of a missing folder: %v", err)
	}
	if got := decodeVersion(reg, "meter"); got != "kept" {
		t.Fatalf("meter: %q", got)
	}
}

func TestLoad(t *testing.T) {
	codecs, err := Load(codecsDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var models []string
	for m := range codecs {
		models = append(models, m)
	}
	sort.Strings(models)
	want := []string{"decentlab-dl-pm", "dragino-lht65", "elsys-ers-co2", "milesight-em310-udl"}
	if !equalStrings(models, want) {
		t.Fatalf("models %v, want %v", models, want)
	}
	if _, err := Load(filepath.Join(codecsDir, "absent"), Options{}); err == nil {
		t.Fatal("no error for a missing folder")
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestLoadModel: one model's file is loaded into the registry, replacing
// the built-in decoder, and no other file of the folder is read; a model
// without a file keeps its built-in decoder; a file that does not load is
// the error.
func TestLoadModel(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "cayenne-lpp.js"), versionCodec("script"))
	writeFile(t, filepath.Join(dir, "broken.js"), "function decodeUplink(input) {")
	reg := decoders.NewRegistry()
	w := NewWatcher(dir, reg, Options{})
	path, err := w.LoadModel("cayenne-lpp")
	if err != nil || path != filepath.Join(dir, "cayenne-lpp.js") {
		t.Fatalf("cayenne-lpp: %q %v", path, err)
	}
	if got := decodeVersion(reg, "cayenne-lpp"); got != "script" {
		t.Fatalf("cayenne-lpp decodes as %q, want the script", got)
	}
	if got := w.Models(); !equalStrings(got, []string{"cayenne-lpp"}) {
		t.Fatalf("models %v: only the model asked for is loaded", got)
	}
	if path, err := w.LoadModel("elsys-ers"); err != nil || path != "" || decodeVersion(reg, "elsys-ers") != "native" {
		t.Fatalf("elsys-ers: %q %v, decodes as %q", path, err, decodeVersion(reg, "elsys-ers"))
	}
	if _, err := w.LoadModel("broken"); err == nil || !strings.Contains(err.Error(), "broken.js") {
		t.Fatalf("broken: %v", err)
	}
	if _, ok := reg.Lookup("broken"); ok {
		t.Fatal("a codec that does not compile was registered")
	}
}
