// Package deadletter keeps messages that could not become points, with
// their raw bytes and the reason, in a directory under the state
// directory, so nothing the daemon received is silently lost and every
// message can be replayed after a fix.
//
// The store is a directory of segment files of self-checking records
// (length, CRC-32C, a magic no JSON body can contain): a torn or damaged
// record anywhere is skipped and counted, never fatal. Letters are
// numbered 1, 2, 3, … as they arrive; the numbers are stored with them
// and never reused. The files are bounded by max_bytes: the oldest segment
// is dropped, and counted, to make room. Callers queue letters and return
// at once; one writer goroutine appends what is queued and syncs it once
// (a group commit), so receive loops never wait for a disk. Each segment
// has an in-memory summary (ids, time range, reasons) and an offset index,
// so a listing with a limit reads about what it returns, oldest or newest
// first. A Replayer runs letters through the current pipeline and appends
// a mark per replay, so a replayed letter stays on record instead of
// being deleted.
//
// It stores, lists and replays dead letters; it does not decide what is
// dead (the pipeline does) and does not parse feed messages (the caller
// hands it the source's parser).
package deadletter
