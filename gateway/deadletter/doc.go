// Package deadletter keeps messages that could not become points, with
// their raw bytes and the reason, in a JSON-lines file under the state
// directory, so nothing the daemon received is silently lost and every
// message can be replayed after a fix.
//
// It stores and reads dead letters; it does not decide what is dead.
package deadletter
