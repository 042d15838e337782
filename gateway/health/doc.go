// Package health keeps device health and the unknown-device list up to
// date from what the pipeline saw (Observer), and writes device health as
// device_health points (Points). It holds no state of its own: that is
// devices.Health and devices.Unknowns, shared between instances by the
// registry store when it is PostgreSQL. It must not import cmd or the
// adapters (mqtt, influx).
package health
