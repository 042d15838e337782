package deadletter

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/sensorgate/sensorgate/gateway"
)

// FuzzOpen feeds arbitrary bytes to Open as the store's only segment.
// Open must not fail or panic on any contents: damaged runs are skipped
// and counted, a torn end cut off. The store then lists what checked,
// takes a letter, and after a reopen lists the same letters plus the new
// one with nothing more to repair. Seeds are in testdata/fuzz/FuzzOpen:
// whole segments, torn, flipped and zeroed ones, a foreign file.
func FuzzOpen(f *testing.F) {
	f.Fuzz(fuzzBody)
}

func fuzzBody(t *testing.T, seg []byte) {
	{
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), FileName)
		if err := os.MkdirAll(path, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(path, segName(1)), seg, 0o640); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, Options{Config: Config{MaxBytes: 64 << 20}})
		if err != nil {
			t.Fatalf("Open failed on damaged contents: %v", err)
		}
		before, err := s.List(ctx, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		newest, err := s.List(ctx, Filter{Newest: true})
		if err != nil || len(newest) != len(before) {
			t.Fatalf("newest first lists %d letters, oldest first %d (%v)", len(newest), len(before), err)
		}
		for i := 1; i < len(before); i++ {
			if before[i].ID <= before[i-1].ID {
				t.Fatalf("ids not increasing: %d after %d", before[i].ID, before[i-1].ID)
			}
		}
		if err := s.Put(ctx, letter("after", 1)); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, err = Open(path, Options{Config: Config{MaxBytes: 64 << 20}})
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer s.Close()
		after, err := s.List(ctx, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before)+1 || after[len(after)-1].Source != "after" {
			t.Fatalf("reopen lists %d letters, want the %d read before and the new one", len(after), len(before))
		}
	}
}

// FuzzDecodeLetter checks the fast letter decoder against encoding/json:
// whatever JSON encoding/json reads, decodeLetter reads the same way.
// Seeds are in testdata/fuzz/FuzzDecodeLetter.
func FuzzDecodeLetter(f *testing.F) {
	f.Fuzz(func(t *testing.T, js []byte) {
		var want, got gateway.DeadLetter
		if json.Unmarshal(js, &want) != nil {
			_ = decodeLetter(js, &got) // must not panic
			return
		}
		if err := decodeLetter(js, &got); err != nil {
			t.Fatalf("encoding/json reads %q, decodeLetter fails: %v", js, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeLetter %+v, encoding/json %+v", got, want)
		}
	})
}
