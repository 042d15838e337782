// Package influx delivers points to InfluxDB. The Writer, the pipeline's
// sink, encodes them as line protocol (AppendPoint) into the spool; the
// Deliverer reads the spool, cuts it into batches and posts them through
// the Client to the v2 write API (/api/v2/write, which InfluxDB 1.8 serves
// with bucket "db/rp") or 1.x's /write, gzipped unless InfluxDB is on this
// machine, applying the status-code policy of ARCHITECTURE §6: retry what
// InfluxDB may take later, split what is too large, keep as dead letters
// only the records it refuses for good. deliver.go is that loop, whole.
//
// It must not decode payloads, parse feeds or build points: it stores the
// points it is given, byte for byte the same for the same point.
package influx
