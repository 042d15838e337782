// Package gateway is the pipeline vocabulary: Uplink (what a feed delivers),
// Point (what InfluxDB stores), Source and Sink, dead letters, and the
// Pipeline that turns one into the other.
//
// It never imports its subpackages (gateway/mqtt, gateway/influx, …): they
// import it, and cmd/sensorgate wires them together.
package gateway
