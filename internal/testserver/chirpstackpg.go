package testserver

import (
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
)

// chirpStackSchema creates the tables of ChirpStack v4's PostgreSQL
// integration (see the file's header).
//
//go:embed chirpstack_integration.sql
var chirpStackSchema string

// ChirpStackIntegrationDB creates a database of the test's own
// (PostgresDB) holding ChirpStack v4's PostgreSQL integration tables,
// empty, and returns its DSN.
func ChirpStackIntegrationDB(t TB) string {
	t.Helper()
	dsn := PostgresDB(t)
	PostgresExec(t, dsn, chirpStackSchema)
	return dsn
}

// PostgresExec runs SQL (one or more statements, no parameters) in the
// database at dsn.
func PostgresExec(t TB, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("testserver: connect: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatalf("testserver: %.200s: %v", sql, err)
	}
}

// csUplinkEvent is the part of a ChirpStack v4 uplink event (MQTT
// integration, JSON) the PostgreSQL integration stores.
type csUplinkEvent struct {
	DeduplicationID string    `json:"deduplicationId"`
	Time            time.Time `json:"time"`
	DeviceInfo      struct {
		TenantID          string          `json:"tenantId"`
		TenantName        string          `json:"tenantName"`
		ApplicationID     string          `json:"applicationId"`
		ApplicationName   string          `json:"applicationName"`
		DeviceProfileID   string          `json:"deviceProfileId"`
		DeviceProfileName string          `json:"deviceProfileName"`
		DeviceName        string          `json:"deviceName"`
		DevEUI            string          `json:"devEui"`
		Tags              json.RawMessage `json:"tags"`
	} `json:"deviceInfo"`
	DevAddr   string          `json:"devAddr"`
	ADR       bool            `json:"adr"`
	DR        int16           `json:"dr"`
	FCnt      int64           `json:"fCnt"`
	FPort     int16           `json:"fPort"`
	Confirmed bool            `json:"confirmed"`
	Data      string          `json:"data"`
	Object    json.RawMessage `json:"object"`
	RxInfo    json.RawMessage `json:"rxInfo"`
	TxInfo    json.RawMessage `json:"txInfo"`
}

// InsertChirpStackUplinks stores ChirpStack v4 uplink events (the MQTT
// integration's JSON) in event_up as ChirpStack's PostgreSQL integration
// does for each: the device info in columns, time as a timestamptz
// (microseconds: the driver cuts the nanoseconds, as ChirpStack's does),
// data as bytes, tags, object, rx_info and tx_info as JSON (object JSON
// null, tags {} and rx_info [] when the event has none).
func InsertChirpStackUplinks(t TB, dsn string, events ...[]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("testserver: connect: %v", err)
	}
	defer conn.Close(context.Background())
	rows := make([][]any, 0, len(events))
	for i, b := range events {
		var e csUplinkEvent
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("testserver: event %d is not a ChirpStack v4 uplink event: %v", i, err)
		}
		data, err := base64.StdEncoding.DecodeString(e.Data)
		if err != nil {
			t.Fatalf("testserver: event %d: data: %v", i, err)
		}
		orJSON := func(m json.RawMessage, empty string) string {
			if len(m) == 0 {
				return empty
			}
			return string(m)
		}
		d := e.DeviceInfo
		rows = append(rows, []any{e.DeduplicationID, e.Time, d.TenantID, d.TenantName, d.ApplicationID, d.ApplicationName,
			d.DeviceProfileID, d.DeviceProfileName, d.DeviceName, d.DevEUI, orJSON(d.Tags, "{}"), e.DevAddr,
			e.ADR, e.DR, e.FCnt, e.FPort, e.Confirmed, data, orJSON(e.Object, "null"), orJSON(e.RxInfo, "[]"), orJSON(e.TxInfo, "null")})
	}
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"event_up"}, []string{"deduplication_id", "time", "tenant_id", "tenant_name",
		"application_id", "application_name", "device_profile_id", "device_profile_name", "device_name", "dev_eui", "tags",
		"dev_addr", "adr", "dr", "f_cnt", "f_port", "confirmed", "data", "object", "rx_info", "tx_info"}, pgx.CopyFromRows(rows))
	if err != nil {
		t.Fatalf("testserver: insert %d uplink events into event_up: %v", len(events), err)
	}
}

// ChirpStackEventTime is the time a ChirpStack v4 event JSON carries, for
// tests that pick a range.
func ChirpStackEventTime(t TB, event []byte) time.Time {
	t.Helper()
	var e struct {
		Time time.Time `json:"time"`
	}
	if err := json.Unmarshal(event, &e); err != nil {
		t.Fatalf("testserver: %v", err)
	}
	return e.Time
}
