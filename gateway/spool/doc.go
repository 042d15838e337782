// Package spool is sensorgate's durable on-disk FIFO: the MQTT side
// appends encoded points before it acknowledges a message, the InfluxDB
// side reads them, and a record leaves the spool only when the reader
// acks it after InfluxDB answered 2xx. It is what lets sensorgate promise
// that every reading reaches InfluxDB through InfluxDB outages of hours,
// kill -9 and power cuts.
//
// The package stores opaque byte records. It must not know about points,
// line protocol, MQTT or InfluxDB, and it imports no other sensorgate
// package.
//
// # Contract
//
//   - Append returns nil only once the record is durable per the fsync
//     policy. With fsync "always" (the default) that is after fdatasync:
//     nothing acknowledged is lost, also not by a power cut. With an
//     interval such as "1s" the record is in the kernel when Append
//     returns (kill -9 loses nothing) and on disk within one interval: a
//     power cut can lose the records acknowledged in the last interval
//     before it. Sealed segments are always synced before the next one
//     is used.
//   - Concurrent Append calls are safe and share work (group commit): the
//     records of every Append arriving while a write is under way go out
//     together in the next write and one fdatasync. Records become
//     visible to Read once their group is committed, so a Read can return
//     records appended by other goroutines in the same group.
//   - Delivery is at least once. Read returns records in append order
//     after the last one read; Ack(p) releases every record up to and
//     including p (acks are cumulative, so ack in order). A
//     record read but not acked is read again after a restart (Read
//     starts at the persisted ack position), so the consumer must be
//     idempotent, which it is: the same record always yields
//     byte-identical points. With an fsync interval the ack position
//     itself is synced every interval, so a power cut can also re-deliver
//     up to one interval of acked records.
//   - One reader is enough, and the design assumes it (the delivery
//     loop): Read and Ack are serialized, a second reader would only
//     share one cursor. The exception is a live reader (StartLive,
//     live.go): during a backlog it reads what is appended from its start
//     on, ahead of the reader, which stops short of it and, once there,
//     continues after the live reader's last record. Acks stay one
//     cumulative position.
//   - Positions (sequence numbers) start at 1 and are never reused.
//   - A record larger than a segment (segment_bytes minus 32 header
//     bytes) is rejected with ErrTooLarge; Append never splits records.
//   - A full disk (ENOSPC) or any other write error fails the Appends of
//     that group with an error saying what to do; the partial write is
//     cut off again, so the spool stays consistent and later Appends
//     work once there is room. A failed fsync is different: the kernel
//     may have dropped the data and will not say so again, so the spool
//     refuses further Appends until a restart re-verifies the files.
//   - The files never exceed max_bytes: before a group is written, the
//     oldest segments are dropped until it fits, even if they hold
//     records not yet delivered, so the newest readings keep flowing
//     during a long outage. Each drop is logged once (records, bytes,
//     positions) and counted in Stats; it is never silent. Append never
//     fails because of the cap.
//
// # On disk
//
// The directory holds segment files named by the position of their first
// record (00000000000000000001.seg, ...), an ack file and a lock file
// (flock, so two processes cannot share a spool; the kernel drops it when
// a process dies). A segment starts with a 16-byte header (magic and
// first position); each record is length, CRC-32C (Castagnoli) over
// length, time and data, append time, data. The ack file holds the ack
// position in two checksummed slots in different sectors, written
// alternately, so a torn write leaves the previous position readable.
//
// With fsync "always" the active segment is filled with zeros up to a
// megabyte ahead of its last record. An fdatasync then writes only the
// records' pages; when the file grows it must also allocate blocks and
// write the inode: on ext4, a lone append and fsync took about 170 µs of
// CPU that way against about 115 µs into zeros (BenchmarkAppendAlways,
// goroutines=1, medians of three interleaved runs). The price is that those bytes are written twice
// (once as zeros, in steps of 1 MiB), which matters on flash only at
// sustained high rates. The zeros count towards max_bytes and Stats.Bytes;
// on a disk too full for them the records go in without them.
// Sealing a segment and Close cut them off, so only a crash leaves them,
// and Open takes zeros after the last record for what they are: no repair
// and no warning.
//
// Open reconciles what a crash left: it checks every segment header,
// verifies every record of the last segment and cuts off the first bad
// one and all after it (a torn write: those records were never
// acknowledged), logging what it cut; it resets a last segment caught
// half-created, deletes segments that were acked but not yet removed, and
// pulls an ack position that is ahead of the data back to the last
// record. A bad header on a sealed segment is damage Open will not guess
// about: it returns an error naming the file to move away. Records in
// sealed segments are verified when read; a damaged one (which only a
// failing disk produces) is logged and the rest of its segment skipped
// and counted, so delivery does not stall.
//
// # Why not a library
//
// The issue suggested github.com/tidwall/wal, which Telegraf's disk
// buffer uses. It does not meet the requirements, and bending it would
// take more code than this package:
//
//   - No checksums: an entry is a uvarint length and the data, so a
//     damaged record is returned as data.
//   - A torn or partial last entry makes Open fail with ErrCorrupt
//     instead of being repaired (Telegraf issue 18528: "failed to open
//     wal file: log corrupt" after a crash); a daemon that must survive
//     power cuts needs the repair.
//   - Write and WriteBatch take one mutex and fsync each call: many
//     goroutines are not grouped into one fsync, so group commit would
//     have to be built around it anyway.
//   - TruncateFront rewrites the rest of the segment into a new file on
//     every call and cannot remove the last entry (Telegraf PR 17247
//     works around a re-sent metric after restart), and the ack position
//     is not persisted at all.
//   - No size bound with drop-oldest accounting, and it keeps the whole
//     tail segment in memory.
//
// The segment queue here is about 1,500 lines with comments, with the
// repair, ack and drop rules above written to be tested one by one,
// including by killing a child process with SIGKILL mid-append. Group
// commit is a writer goroutine owned by the Spool (stopped by Close):
// appenders checksum their record in parallel, copy it into the pending
// batch under a mutex and wait for that batch's fdatasync. Ideas (segment files named by
// position, reconciling files on open) follow VictoriaMetrics'
// lib/persistentqueue; no code is taken from it.
package spool
