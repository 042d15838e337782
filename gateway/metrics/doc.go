// Package metrics is sensorgate's Prometheus exposition: one registry of
// its own (never the global default) with the daemon's metric families.
//
// Most families are read from existing state when Prometheus scrapes
// (spool Stats, the InfluxDB client's Stats, the pipeline's Counters,
// sources' Ready), so the per-message path pays nothing for them. The
// few that need per-message labels (uplinks by source and result, decode
// errors by model) come from the pipeline's Observer hook, and dead
// letters by reason from a decorator of the dead-letter store; every
// label value comes from a closed set (configured source names, decoder
// models, dead-letter reasons, HTTP status classes), never a device id.
//
// It must not decide policy nor hold state beyond counters: cmd wires it
// to the parts it reads, and gateway/httpapi serves its Handler.
package metrics
