// Package chirpstackpg reads uplinks back from ChirpStack v4's PostgreSQL
// integration, for `sensorgate backfill --chirpstack-pg`: the uplinks a
// live feed never received (sensorgate down, a broker that dropped a
// backlog) are in that integration's event_up table.
//
// A Reader connects to the integration's database, checks that it holds
// ChirpStack's event_up table and may read it, and streams its rows in
// (time, deduplication_id) order through one server-side cursor in a
// read-only transaction: one row is in memory at a time, and a row larger
// than MaxRowBytes is reported by its size without its content being
// fetched. Row.Event rebuilds from a row the uplink event ChirpStack's
// MQTT integration published for it (protobuf JSON, the topic it used),
// so the caller runs it through the chirpstack-v4 feed's own parser and
// the same pipeline: the points are those the live feed wrote.
//
// What the table does not keep cannot be rebuilt: relayRxInfo,
// regionConfigId, deviceInfo.deviceClassEnabled (none of which the
// parser reads) and joinServerContext, so an uplink ChirpStack forwarded
// still encrypted (a join server holding the AppSKey) comes back as if
// it were decrypted.
//
// It reads PostgreSQL and builds messages; it neither parses them nor
// writes anything (cmd/sensorgate wires the parser and the pipeline).
package chirpstackpg
