// Package influx delivers points to InfluxDB: it encodes them as line
// protocol (AppendPoint) and writes them through the v2 write API
// (/api/v2/write, which InfluxDB 1.8 serves with bucket "db/rp") with the
// Sink, which gathers concurrent writes into batched requests (gzipped
// unless InfluxDB is on this machine) and applies the status-code policy
// of ARCHITECTURE §6: retry what InfluxDB may take later, split what is too
// large, reject only what it refuses for good.
//
// It must not decode payloads, parse feeds or build points: it stores the
// points it is given, byte for byte the same for the same point.
package influx
