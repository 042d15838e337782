// Package gateways holds what sensorgate knows about each LoRaWAN
// gateway: the operator's name and tags for it (from the gateways file or
// the API) and its health from its statistics messages (last seen, its
// stats interval, whether it went silent, its latest counts and
// location). The Table is bounded: gateways heard but not configured are
// kept up to a limit, the least recently heard evicted and counted.
//
// It imports only devices (for the EUI and the search matcher); the
// pipeline reaches it through small interfaces cmd wires.
package gateways
