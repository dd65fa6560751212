// Package journal is the durable write-ahead log that the saga and
// two-phase-commit runners share: before a runner does anything that must
// survive a crash, it appends a record that says so, and it acts only once
// the append has returned. After a crash, the log tells a new runner what
// every unfinished transaction had done.
//
// # The log
//
// A Log groups records by transaction and numbers them 1, 2, 3 ... within
// each. Append takes the sequence number the caller expects to follow, so
// that an append based on a stale view fails with ErrConflict instead of
// forking the transaction:
//
//	recs, err := log.Load(ctx, txID) // what happened so far
//	...
//	err = log.Append(ctx, txID, uint64(len(recs)), journal.Record{
//		Epoch: epoch, Kind: "saga.step.started", Step: "charge", Attempt: 1,
//	})
//	if err != nil {
//		return err // not durable: do not charge
//	}
//	charge(ctx)
//
// A nil error means durable; any other error means not appended. An
// Append of several records is atomic. Each record carries its owner's
// epoch: a runner that takes a transaction over after a crash appends a
// record with a higher epoch, after which its predecessor's appends fail
// with ErrFenced and it must stop before any further effect. An End record
// closes a transaction: it leaves Pending, and Forget may then drop its
// records, leaving a tombstone so that its ID is not started again by
// mistake.
//
// The record's Kind and Payload belong to the runner; the journal never
// reads them. Its Carrier holds the trace context and baggage that the
// runner's propagators injected, so that the span of a recovered
// transaction can link to the trace that began it.
//
// # Implementations
//
// NewMemory keeps the log in memory, for tests and for processes that
// accept losing their transactions in a crash. Open is the file log, the
// discipline of etcd's wal: segment files that start with a magic number
// and a format version and are preallocated; every group commit one batch,
// framed with its length and a CRC-32C, written and fdatasynced before any
// of its appends returns; rotation at a size limit; compaction into a
// snapshot segment written under a temporary name, renamed atomically and
// made durable with a sync of the directory. Only one process may open a
// directory: a second fails at once.
//
// Concurrent appends share one write and one fdatasync (group commit): the
// more appenders, the more records per sync, while each caller still waits
// for its own. WithMaxGroup(1) turns it off.
//
// To use a store of your own, such as a database table, implement Log and
// run the conformance suite in package journaltest against it.
//
// # Leases
//
// A Log that implements Leaser lets the runners of several processes
// share it: each unfinished transaction is owned by the one runner that
// holds its lease and renews it, and another runner claims it only once the
// lease has expired (its owner died, or lost the store). A lease's epoch
// is a fencing token: granting it raises the transaction's epoch, so the
// log refuses what the previous owner still tries to write. Memory and File
// implement Leaser for their one process, so that the runners have one code
// path; their leases live in memory and end with the process. The
// PostgreSQL log (journal/pgjournal) keeps them in the database, on the
// database's clock.
//
// # Crashes
//
// Only one batch is unsynced at any time, so a crash can damage only the
// last batch, which no caller was told was durable, and only by tearing
// it: a disk writes a 512-byte sector whole or not at all, so a torn batch
// runs past the end of its file or has a sector that is still zeros, as
// preallocated. Open truncates a torn last batch and goes on. A crash
// cannot explain a batch whose checksum fails although every sector of it
// was written, last or not, nor an invalid batch followed by a valid one:
// Open then returns a *CorruptError that names the file and the offset,
// and drops and changes nothing. Restore the file from a backup or repair
// it by hand. A failed fdatasync fails the log for good (ErrFailed), as
// PostgreSQL learnt it must: the kernel may have dropped the pages it
// could not write, so a retry that succeeds proves nothing. Reopen the log
// to read what is really on disk.
//
// # Telemetry
//
// The runners' spans cover appends, so there is no span per append. Open
// has a journal.open span and compaction a journal.compact span. The
// metrics are append latency, fdatasyncs, records per fdatasync (the group
// commit at work), bytes written and pending transactions. README.md's
// Telemetry reference lists every name.
//
// # Pitfalls
//
//   - The file log keeps every live transaction's records in memory as
//     well: end and Forget transactions when they are done.
//   - Append does not retry. After ErrConflict or ErrFenced, Load again and
//     decide; after ErrFailed, stop and reopen.
//   - A record's payload is limited (WithMaxPayload, 1 MiB by default): a
//     journal holds decisions and small states, not documents. The limit
//     governs new appends only: a log reopened with a smaller one still
//     reads back every record it holds.
//   - Telling a tear from corruption relies on the zeros of preallocation,
//     as in etcd's wal: a damaged last batch with a sector of zeros of its
//     own (a payload of zeros), or whose length was damaged to run into
//     the zeros after it, passes for torn and is truncated.
package journal
