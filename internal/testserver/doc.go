// Package testserver starts the real servers integration tests talk to:
// Mosquitto and InfluxDB 1.8, each on a free loopback port with its own
// data directory, stopped (by PID) when the test ends, and PostgreSQL
// databases. Nothing here is mocked, and nothing listens beyond
// 127.0.0.1 — except TTSStorage, which stands in for The Things Stack's
// Storage Integration (a network server that cannot run here) by
// speaking its documented HTTP format.
package testserver
