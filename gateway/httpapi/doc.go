// Package httpapi is sensorgate's HTTP API: liveness and readiness
// probes, the OpenAPI description, and the /api/v1 routes operators use
// to onboard and run sensors: devices (CRUD, bulk CSV/YAML import with a
// dry run, export), device health, unknown devices and their adoption,
// dead letters (list, replay) and decode tests.
//
// Every /api/ route needs the bearer token when one is configured, and
// the server refuses to listen beyond loopback without one. Bodies are
// bounded, errors are JSON {"error": "...", "detail": ...}.
//
// It serves what it is given (Options) and owns no state: it must not
// open stores, start sources or decide policy; cmd/sensorgate wires it.
// Other routes (/metrics, the status page) are added with Server.Handle.
package httpapi
