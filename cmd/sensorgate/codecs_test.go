package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fake repository holds test codecs written for sensorgate, laid out
// like the real one (see its README.md); decoders/codecs tests the import
// itself.
const ttnRepo = "../../testdata/codecs/ttn-repo"

func runImport(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := codecsCommand(context.Background(), append([]string{"import"}, args...), &stdout, &stderr)
	return stdout.String() + stderr.String(), err
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestCodecsImportCommand: the flags reach the import, and a device that
// fails is an error of the command, not a usage error, even with -force.
func TestCodecsImportCommand(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "acme-wrong.js")
	out, err := runImport(t, "-to", dir, "-from", ttnRepo, "acme/wrong")
	if err == nil || errors.Is(err, errUsage) {
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
	out, err = runImport(t, "-to", dir, "-from", ttnRepo, "-force", "acme/wrong")
	if err == nil || errors.Is(err, errUsage) || !exists(dst) || !strings.Contains(out, "despite 1 failed examples (-force)") {
		t.Fatalf("-force: err %v, written %v\n%s", err, exists(dst), out)
	}
	out, err = runImport(t, "-to", dir, "-from", ttnRepo, "-firmware", "2.0", "acme/multi")
	if err != nil || !strings.Contains(out, "PASS  1 version 2 frame") {
		t.Fatalf("-firmware: err %v\n%s", err, out)
	}
	if _, err := runImport(t, "-to", dir, "-from", filepath.Join(dir, "missing"), "acme/multi"); !errors.Is(err, os.ErrNotExist) || errors.Is(err, errUsage) {
		t.Fatalf("a missing -from folder: err %v, want it named", err)
	}
}

func TestCodecsUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"import", "-from", ttnRepo, "elsys/ers-co2"},
		{"import", "-to", dir},
		{"import", "-to", dir, "Elsys/ERS"},
		{"import", "-to", dir, "../etc"},
		{"import", "-to", dir, "elsys"},
		{"frobnicate"},
		{},
	} {
		var stdout, stderr bytes.Buffer
		if err := codecsCommand(context.Background(), args, &stdout, &stderr); !errors.Is(err, errUsage) {
			t.Errorf("%v: err %v, want a usage error", args, err)
		}
	}
	var stdout bytes.Buffer
	if err := codecsCommand(context.Background(), []string{"help"}, &stdout, &stdout); err != nil || !strings.Contains(stdout.String(), "VENDOR/DEVICE") {
		t.Fatalf("help: %v", err)
	}
}
