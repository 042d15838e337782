package gateway

import "time"

// SchemaVersion is the version of the InfluxDB schema the pipeline
// writes (docs/schema.md, "Schema versions"). It changes when a
// measurement, tag or field that existing queries read changes.
//
//   - 1: until issue 21.
//   - 2: decoded_<model> without the values a catalogue quantity holds;
//     uplink without rssi and snr when every reception has an
//     uplink_gateway point; the points of an uplink at its time cut to
//     the millisecond.
const SchemaVersion = 2

// SchemaMeasurement holds one point per daemon start: the schema version
// and the sensorgate version that wrote the points from then on, so that
// a query (SELECT * FROM "sensorgate") tells which schema a stretch of
// history has.
const SchemaMeasurement = "sensorgate"

// SchemaPoint is the point a daemon writes when it starts, at t.
func SchemaPoint(version string, t time.Time) Point {
	return Point{Measurement: SchemaMeasurement, Time: t, Fields: []Field{
		IntField("schema_version", SchemaVersion), StringField("version", version),
	}}
}
