// Package simulate makes realistic, deterministic uplink streams — the
// messages ChirpStack v4 or The Things Stack would publish for a fleet of
// Cayenne LPP weather sensors — and publishes them to an MQTT broker. It
// serves `sensorgate simulate`, the demo, the integration tests and the
// end-to-end benchmark, so they all exercise the same messages.
//
// The same seed always yields the same messages, byte for byte.
package simulate
