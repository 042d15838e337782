package chirpstackpg

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Row is one event_up row as read. ChirpStack declares every column NOT
// NULL, but a table edited by hand or by another writer may hold NULLs,
// so every column may be nil here. The JSON columns (tags, object,
// rx_info, tx_info) are their text, not yet checked.
type Row struct {
	DeduplicationID   *string
	Time              *time.Time
	TenantID          *string
	TenantName        *string
	ApplicationID     *string
	ApplicationName   *string
	DeviceProfileID   *string
	DeviceProfileName *string
	DeviceName        *string
	DevEUI            *string
	Tags              *string
	DevAddr           *string
	ADR               *bool
	DR                *int64
	FCnt              *int64
	FPort             *int64
	Confirmed         *bool
	Data              *[]byte
	Object            *string
	RxInfo            *string
	TxInfo            *string

	// Size is the bytes of the row's variable-length columns, as
	// PostgreSQL counted them. TooLarge is set when Size is over the
	// Reader's MaxRowBytes: then only the fixed-size columns and the
	// deduplication id (when short) were fetched.
	Size     int64
	TooLarge bool
}

// RowError is a row that cannot be an uplink event: a NULL column the
// event needs, a JSON column that holds no JSON, a row over the size
// bound. Its text names the row and the column, for a dead letter's
// detail or a log line.
type RowError struct {
	ID      string // the row's deduplication_id, "" when NULL
	Column  string // the offending column, "" for the row as a whole
	Problem string
}

func (e *RowError) Error() string {
	id := e.ID
	if id == "" {
		id = "(deduplication_id NULL)"
	}
	if e.Column == "" {
		return fmt.Sprintf("event_up row %s: %s", id, e.Problem)
	}
	return fmt.Sprintf("event_up row %s: column %s %s", id, e.Column, e.Problem)
}

// ID returns the row's deduplication id, "" when NULL.
func (r *Row) ID() string { return str(r.DeduplicationID) }

// Topic is the MQTT topic ChirpStack's integration published the row's
// event on (its default topic template): the parser checks that it names
// the event's device.
func (r *Row) Topic() string {
	return "application/" + str(r.ApplicationID) + "/device/" + str(r.DevEUI) + "/event/up"
}

// Event appends to dst the uplink event ChirpStack's MQTT integration
// published for the row: protobuf JSON with camelCase names, top-level
// fields always present (ChirpStack emits their defaults), object left
// out when the row holds JSON null (no codec ran), rx_info and tx_info
// as stored (ChirpStack writes the same JSON into both). A NULL column is
// left out, as a message without the field.
//
// A row that cannot be an event (TooLarge; NULL deduplication_id, time,
// dev_eui or data; a JSON column that holds no JSON) gives a *RowError,
// and the returned bytes are still a JSON object showing what the row
// held (a column that is not JSON as a string), for a dead letter.
func (r *Row) Event(dst []byte) ([]byte, error) {
	id := r.ID()
	if r.TooLarge {
		return dst, &RowError{ID: id, Problem: fmt.Sprintf("is %d bytes, over the bound: not read", r.Size)}
	}
	var problem *RowError
	fail := func(column, what string) {
		if problem == nil {
			problem = &RowError{ID: id, Column: column, Problem: what}
		}
	}
	w := objectWriter{b: append(dst, '{')}
	w.str("deduplicationId", r.DeduplicationID, fail, "deduplication_id")
	if r.Time == nil {
		fail("time", "is NULL")
	} else {
		w.key("time")
		w.b = strconv.AppendQuote(w.b, r.Time.UTC().Format(time.RFC3339Nano))
	}
	w.key("deviceInfo")
	d := objectWriter{b: append(w.b, '{')}
	d.str("tenantId", r.TenantID, nil, "")
	d.str("tenantName", r.TenantName, nil, "")
	d.str("applicationId", r.ApplicationID, nil, "")
	d.str("applicationName", r.ApplicationName, nil, "")
	d.str("deviceProfileId", r.DeviceProfileID, nil, "")
	d.str("deviceProfileName", r.DeviceProfileName, nil, "")
	d.str("deviceName", r.DeviceName, nil, "")
	d.str("devEui", r.DevEUI, fail, "dev_eui")
	d.json("tags", r.Tags, fail, "tags")
	w.b = append(d.b, '}')
	w.str("devAddr", r.DevAddr, nil, "")
	w.bool("adr", r.ADR)
	w.int("dr", r.DR)
	w.int("fCnt", r.FCnt)
	w.int("fPort", r.FPort)
	w.bool("confirmed", r.Confirmed)
	if r.Data == nil {
		fail("data", "is NULL")
	} else {
		w.key("data")
		w.b = append(w.b, '"')
		w.b = base64.StdEncoding.AppendEncode(w.b, *r.Data)
		w.b = append(w.b, '"')
	}
	w.json("object", r.Object, fail, "object")
	w.json("rxInfo", r.RxInfo, fail, "rx_info")
	w.json("txInfo", r.TxInfo, fail, "tx_info")
	w.b = append(w.b, '}')
	if problem != nil {
		return w.b, problem
	}
	return w.b, nil
}

// objectWriter appends the members of a JSON object whose '{' is written.
type objectWriter struct {
	b []byte
	n int
}

func (w *objectWriter) key(k string) {
	if w.n > 0 {
		w.b = append(w.b, ',')
	}
	w.n++
	w.b = strconv.AppendQuote(w.b, k)
	w.b = append(w.b, ':')
}

// str writes a string member; a NULL is left out, and reported through
// fail when the event needs the column.
func (w *objectWriter) str(k string, v *string, fail func(column, what string), column string) {
	if v == nil {
		if fail != nil {
			fail(column, "is NULL")
		}
		return
	}
	w.key(k)
	w.b = appendJSONString(w.b, *v)
}

func (w *objectWriter) bool(k string, v *bool) {
	if v != nil {
		w.key(k)
		w.b = strconv.AppendBool(w.b, *v)
	}
}

func (w *objectWriter) int(k string, v *int64) {
	if v != nil {
		w.key(k)
		w.b = strconv.AppendInt(w.b, *v, 10)
	}
}

// json writes a JSON column as it is stored. JSON null is left out (as
// ChirpStack's MQTT integration leaves out an empty object); text that
// is not one JSON value is reported and written as a string, so the
// event stays JSON and shows what the row held.
func (w *objectWriter) json(k string, v *string, fail func(column, what string), column string) {
	if v == nil {
		return
	}
	s := strings.TrimSpace(*v)
	if s == "null" {
		return
	}
	w.key(k)
	if !json.Valid([]byte(s)) {
		fail(column, "holds no valid JSON")
		w.b = appendJSONString(w.b, s)
		return
	}
	w.b = append(w.b, s...)
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as encoding/json writes it; PostgreSQL text is valid UTF-8 in a
// UTF8 database, so that happens only in another encoding.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
