// Package config reads sensorgate's one YAML configuration file: it expands
// ${ENV} references, rejects unknown keys, fills defaults and validates the
// whole file, reporting every problem at once with its line (Problems), so
// that "sensorgate validate -c FILE" tells an operator everything to fix in
// one run.
//
// It is the only package cmd/sensorgate imports for configuration. The
// section structs belong to the packages that use them (mqtt.Config,
// influx.Config, decoders.Mapping); Config composes them and adds the
// daemon-level sections (log, http, state_dir, devices, decoders).
//
// example.yaml is the documented reference of every key; it is embedded as
// Example and its tests fail when a key is added without documentation.
//
// The package only reads the file it is given. It must not start anything,
// open network connections, create directories or read the files the
// config names (the devices import, the codec folder): cmd does that, so
// validating a config on a laptop checks the same things as on the box.
package config
