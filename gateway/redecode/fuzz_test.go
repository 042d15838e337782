package redecode

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sensorgate/sensorgate/devices"
)

// FuzzStoredUplink feeds storedUplink what an InfluxDB answer may hold
// in a row of the uplink measurement (any JSON values for time, f_port
// and payload, as another writer could have left them): it must not
// panic, and an uplink it accepts carries exactly the payload's base64
// bytes, an fPort of 0…255 and the row's time.
func FuzzStoredUplink(f *testing.F) {
	f.Add(`[1772431200000000000, 2, "AQID"]`)
	f.Add(`[1772431200000000000, null, ""]`)
	f.Add(`[1772431200000000000, 256, "AQID"]`)
	f.Add(`[1772431200000000000, -1, "AQID"]`)
	f.Add(`[1772431200000000000, 2.5, "AQID"]`)
	f.Add(`[1772431200000000000, 2, "%%not base64"]`)
	f.Add(`[1772431200000000000, 2, 17]`)
	f.Add(`["yesterday", 2, "AQID"]`)
	f.Add(`[1e300, 2, "AQID"]`)
	f.Add(`[1772431200000000000]`)
	f.Add(`[]`)
	eui := devices.EUI{1, 2, 3, 4, 5, 6, 7, 8}
	f.Fuzz(func(t *testing.T, rowJSON string) {
		var row []any
		dec := json.NewDecoder(strings.NewReader(rowJSON))
		dec.UseNumber()
		if dec.Decode(&row) != nil || len(row) == 0 {
			return // InfluxDB's rows always start with the time
		}
		up, err := storedUplink(eui, "cs", row, 1, 2)
		if err != nil {
			return
		}
		s, _ := row[2].(string)
		want, _ := base64.StdEncoding.DecodeString(s)
		if !bytes.Equal(up.Payload, want) || up.DevEUI != eui || up.Source != "cs" {
			t.Fatalf("row %s: uplink %+v", rowJSON, up)
		}
		if n, _ := toInt(row[0]); up.Time.UnixNano() != n {
			t.Fatalf("row %s: time %v", rowJSON, up.Time)
		}
		if up.HasFPort != (len(row) > 1 && row[1] != nil) {
			t.Fatalf("row %s: HasFPort %v", rowJSON, up.HasFPort)
		}
	})
}
