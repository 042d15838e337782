// Package devices holds what sensorgate knows about each sensor: its EUI,
// operator-given name, decoder model, tags and variables, and the Registry
// that finds a device for an uplink.
//
// It is a leaf package: it imports no other sensorgate package, and it does
// not decode payloads or talk to any server.
package devices
