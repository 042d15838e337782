package ttsstorage

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

// FuzzParseLine: no line makes ParseLine panic; what it accepts is one
// JSON object, and an error line is a *StreamError.
func FuzzParseLine(f *testing.F) {
	f.Add([]byte(`{"result":{"end_device_ids":{"device_id":"dev1"},"received_at":"2020-08-24T10:08:44.868680817Z","uplink_message":{"f_port":10}}}`))
	f.Add([]byte(`{"error":{"code":14,"message":"unavailable"}}`))
	f.Add([]byte(`{"result":null}`))
	f.Add([]byte(`{"result":{"received_at":5}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := ParseLine(line)
		var se *StreamError
		switch {
		case errors.As(err, &se):
		case err != nil:
			if m.Up != nil {
				t.Fatalf("error %v with a message", err)
			}
		case m.Up != nil:
			var obj map[string]json.RawMessage
			if json.Unmarshal(m.Up, &obj) != nil {
				t.Fatalf("accepted %q, which is no JSON object", m.Up)
			}
		}
	})
}

// FuzzLineReader: whatever a server sends, lines come back without their
// newline and never longer than the bound; a longer one only by length.
func FuzzLineReader(f *testing.F) {
	f.Add([]byte("a\nbb\r\n\n"), 4)
	f.Add([]byte("0123456789\nshort\nno newline"), 4)
	f.Add(bytes.Repeat([]byte("x"), 200), 64)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		if max < 1 || max > 1<<16 {
			return
		}
		lr := newLineReader(bytes.NewReader(data), max)
		lr.skipMax = 4 * max
		total := 0
		for range len(data) + 1 {
			line, long, err := lr.next()
			if err == io.EOF {
				if total > len(data) {
					t.Fatalf("read %d bytes of %d", total, len(data))
				}
				return
			}
			if err == errEndlessLine {
				if long <= lr.skipMax {
					t.Fatalf("gave up on a line of %d bytes, bound %d", long, lr.skipMax)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if long > 0 {
				if line != nil || long <= max {
					t.Fatalf("long line of %d (max %d) with %d bytes kept", long, max, len(line))
				}
				total += long
				continue
			}
			if len(line) > max || bytes.IndexByte(line, '\n') >= 0 {
				t.Fatalf("line %q: longer than %d or holds a newline", line, max)
			}
			total += len(line)
		}
		t.Fatal("more lines than bytes")
	})
}
