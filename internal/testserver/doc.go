// Package testserver starts the real servers integration tests talk to:
// Mosquitto and InfluxDB 1.8, each on a free loopback port with its own
// data directory, stopped (by PID) when the test ends. Nothing here is
// mocked, and nothing listens beyond 127.0.0.1.
package testserver
