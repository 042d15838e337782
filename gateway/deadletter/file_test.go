package deadletter

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
)

func TestPutReadAll(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []gateway.DeadLetter{
		{Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Source: "cs", Topic: "a/b", Reason: gateway.ReasonMalformed, Detail: "bad json", Raw: []byte("{nope")},
		{Time: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC), Source: "tts", DevEUI: "0101010101010101", Reason: gateway.ReasonDecode, Detail: "truncated", Raw: []byte{0, 1, 2, 0xff}},
	}
	for _, dl := range want {
		if err := s.Put(context.Background(), dl); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadAll(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestReadAllSkipsTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	line := `{"time":"2026-01-02T03:04:05Z","source":"s","reason":"malformed","detail":"x","raw":"eyJ9"}` + "\n"
	if err := os.WriteFile(path, []byte(line+`{"time":"2026-01-02T0`), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadAll(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || string(got[0].Raw) != `{"}` {
		t.Fatalf("got %+v, want the one whole record", got)
	}
}

func TestPutAfterCloseFails(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), FileName))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Put(context.Background(), gateway.DeadLetter{}); err == nil {
		t.Fatal("Put on a closed store succeeded; the message would be lost silently")
	}
}
