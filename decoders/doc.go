// Package decoders turns device payload bytes into values: each decoder
// returns the same Data a The Things Stack or ChirpStack codec returns for
// that device, and Samples of catalogue quantities (the normalized
// vocabulary every point in InfluxDB uses).
//
// It holds the Decoder interface, the built-in decoder table (builtin.go),
// one file per vendor family, the quantity catalogue (catalogue.go) and
// normalization (normalize.go). It is a leaf: it imports no other sensorgate
// package and does no I/O.
package decoders
