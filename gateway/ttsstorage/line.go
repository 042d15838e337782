package ttsstorage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// MaxLineBytes bounds one line of a response: a stored uplink with a
// decoded and a normalized payload and dozens of gateways is a few tens of
// KiB; a longer line is not one, and is skipped without being held.
const MaxLineBytes = 1 << 20

// Message is one stored ApplicationUp.
type Message struct {
	// Up is the ApplicationUp object, as the MQTT server publishes it. It
	// aliases the line it was read from: valid until the next line.
	Up []byte
	// ReceivedAt is the ApplicationUp's received_at, by which the Storage
	// Integration orders and filters; zero when the message has none.
	ReceivedAt time.Time
}

// StreamError is an {"error": …} line: the server gave up part-way.
type StreamError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *StreamError) Error() string {
	return fmt.Sprintf("the Storage Integration ended the response with an error (code %d): %s", e.Code, e.Message)
}

// errNotResult is a line that is neither a result nor an error.
var errNotResult = errors.New(`want {"result": {…ApplicationUp…}} or {"error": {…}}`)

// ParseLine reads one line of a Storage Integration response. An empty
// line is (Message{}, nil) with a nil Up; an {"error": …} line is a
// *StreamError; anything else that is not {"result": {object}} is an
// error naming what is wrong. It is a pure function of the bytes.
func ParseLine(line []byte) (Message, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return Message{}, nil
	}
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  *StreamError    `json:"error"`
	}
	if err := json.Unmarshal(line, &env); err != nil {
		return Message{}, fmt.Errorf("not JSON: %w", err)
	}
	if env.Error != nil {
		return Message{}, env.Error
	}
	res := bytes.TrimSpace(env.Result)
	if len(res) == 0 || res[0] != '{' {
		return Message{}, errNotResult
	}
	var head struct {
		ReceivedAt *string `json:"received_at"`
	}
	if err := json.Unmarshal(res, &head); err != nil {
		return Message{}, fmt.Errorf("result: %w", err)
	}
	m := Message{Up: res}
	if head.ReceivedAt != nil {
		t, err := time.Parse(time.RFC3339Nano, *head.ReceivedAt)
		if err != nil {
			return Message{}, fmt.Errorf("result.received_at %q: not an RFC 3339 time", truncate(*head.ReceivedAt, 40))
		}
		m.ReceivedAt = t.UTC()
	}
	return m, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
