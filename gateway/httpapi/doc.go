// Package httpapi is sensorgate's HTTP API: liveness and readiness
// probes, the OpenAPI description, and the /api/v1 routes operators use
// to onboard and run sensors: devices (CRUD, bulk CSV/YAML import with a
// dry run, export), device health, unknown devices and their adoption,
// dead letters (list, replay) and decode tests.
//
// Every /api/ route needs the bearer token, which the server cannot run
// without. Requests whose Host is not one of the server's names are
// refused (DNS rebinding), and a request that changes state must declare
// a JSON (or import) body and come from the API's own origin when it
// names one (guard.go). Bodies are bounded, errors are JSON
// {"error": "...", "detail": ...}.
//
// It also serves /metrics (the handler of the registry it is given), and
// the status page: an HTML shell with its script and style sheet embedded
// (status/), which reads the /api/v1 routes with the token the operator
// enters, so the shell and assets are public and hold no data.
//
// It serves what it is given (Options) and owns no state: it must not
// open stores, start sources or decide policy; cmd/sensorgate wires it.
// Further routes are added with Server.Handle.
package httpapi
