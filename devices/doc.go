// Package devices holds what sensorgate knows about each sensor: its EUI,
// operator-given name, decoder model, tags and variables; the Registry
// that finds a device for an uplink; the Store that persists the registry
// in an embedded SQLite database under the state directory (bulk CSV/YAML
// import with a per-row report, all or nothing); and the side channels
// kept per device: link Health (last seen, uplinks per day, frame loss,
// radio, battery, silence) and the list of Unknowns that sent uplinks but
// are not registered.
//
// It is a leaf package: it imports no other sensorgate package, and it does
// not decode payloads or talk to any server. The Registry is the hot-path
// lookup; nothing here reads the database per uplink.
package devices
