package codecs

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

// FuzzChirpStackFirmware feeds arbitrary device files to the
// [[device.firmware]] reader: no panic, one (version, codec) pair per
// firmware table header, and no value spanning lines. Seeds are in
// testdata/fuzz/FuzzChirpStackFirmware.
func FuzzChirpStackFirmware(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := chirpstackFirmware(b)
		if err != nil {
			return
		}
		tables := 0
		for _, line := range strings.Split(string(b), "\n") {
			if strings.TrimSpace(line) == "[[device.firmware]]" {
				tables++
			}
		}
		if len(out) != tables {
			t.Fatalf("%d pairs for %d firmware tables", len(out), tables)
		}
		for _, p := range out {
			if strings.Contains(p[0]+p[1], "\n") {
				t.Fatalf("value spans lines: %q", p)
			}
		}
	})
}

// fakeRepo answers the device file with device, any other .yaml with
// codec and any .js with a codec that decodes, as a hostile repository
// could.
type fakeRepo struct{ device, codec []byte }

func (r fakeRepo) Read(_ context.Context, path string) ([]byte, error) {
	switch {
	case path == "vendor/acme/dev.yaml":
		return r.device, nil
	case strings.HasSuffix(path, ".yaml"):
		return r.codec, nil
	case strings.HasSuffix(path, ".js"):
		return []byte("function decodeUplink(input) { return {data: {}}; }"), nil
	}
	return nil, fmt.Errorf("%s: %w", path, fs.ErrNotExist)
}

func (r fakeRepo) String() string { return "fake" }

// FuzzTTNCodec follows arbitrary device and codec files of a The Things
// Network repository: no panic, and a codec found is a file of the vendor
// folder, never a path out of it. Seeds are in testdata/fuzz/FuzzTTNCodec.
func FuzzTTNCodec(f *testing.F) {
	f.Fuzz(func(t *testing.T, device, codec []byte) {
		found, err := findCodec(context.Background(), fakeRepo{device, codec}, "acme", "dev", "")
		if err != nil {
			return
		}
		name, ok := strings.CutPrefix(found.origin, "vendor/acme/")
		if !ok || strings.Contains(name, "/") || strings.Contains(name, "..") {
			t.Fatalf("codec file %q is not a file of the vendor folder", found.origin)
		}
		for _, ex := range found.examples {
			if ex.in.Bytes == nil {
				t.Fatalf("example %q has no bytes", ex.name)
			}
		}
	})
}
