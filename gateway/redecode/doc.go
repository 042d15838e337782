// Package redecode re-decodes stored uplinks: it reads the raw payloads
// back from InfluxDB's uplink measurement, runs them through the
// pipeline's current decoders and normalization (gateway.Pipeline.Points,
// the code live uplinks take), deletes the device's previous decoder
// output in the range and writes the new points through the spool with
// the same identity (measurement, tags, time), so analysts see corrected
// history and a renamed or dropped field leaves no orphan.
//
// The work goes device by device and, within a device, window by window
// of at most Runner.MaxChunk uplinks (counted first), so memory is
// bounded whatever the range. Each window deletes first and reads the raw
// uplinks second: an uplink that reaches InfluxDB while the window is
// processed either is read (and written again, identically) or was
// decoded by the live pipeline after the delete, so none is lost. The
// range ends at the job's start at the latest, so uplinks arriving during
// the job lie outside it. Re-running a range writes the same points
// again, so an interrupted job is resumed by running it again.
//
// It must not write raw receptions, events or health (gateway.DecoderOutput
// says what it may replace), and it does not import InfluxDB's client:
// Store is declared here and cmd/sensorgate hands it gateway/influx's.
package redecode
