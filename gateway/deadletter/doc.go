// Package deadletter keeps messages that could not become points, with
// their raw bytes and the reason, in a JSON-lines file under the state
// directory, so nothing the daemon received is silently lost and every
// message can be replayed after a fix.
//
// Letters are numbered by their position in the file (ids are stable: the
// file is append-only); List filters them; a Replayer runs them through
// the current pipeline and appends a mark per replay, so a replayed letter
// stays on record instead of being deleted.
//
// It stores, lists and replays dead letters; it does not decide what is
// dead (the pipeline does) and does not parse feed messages (the caller
// hands it the source's parser).
package deadletter
