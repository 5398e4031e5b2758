// Package file keeps an election's record in a file on the local machine, so
// that processes on one machine can elect a leader among themselves without
// any server. It is the embedded default of the incumbent binary and of the
// quick start.
//
// # Layout
//
// A folder holds any number of leases. The lease named NAME is kept in
//
//	NAME.json      the record (JSON, see below)
//	NAME.lock      the lock file and the revision sequence, never removed
//	NAME.json.tmp  a write in progress (or left by a writer that crashed)
//
// The folder is created with mode 0700 when it is missing and its parent
// exists; files are created with mode 0600. Processes that share a lease must
// therefore run as the same user. Lease names are restricted to lowercase
// DNS-1123-subdomain-like names (letters, digits, '-' and '.', starting and
// ending with a letter or digit, at most MaxNameLength characters), so a name
// can never reach outside the folder.
//
// # Compare-and-set
//
// Every write (Create, Update) takes an exclusive flock(2) on NAME.lock,
// reads the record, checks it (absent for Create, at the caller's version for
// Update), raises the revision sequence in NAME.lock and fsyncs it (see
// Revision), writes the new record to NAME.json.tmp, fsyncs it, renames it
// over NAME.json and fsyncs the folder. A rename is atomic, so a reader (Get, which
// takes no lock) sees either the old or the new record, and a process killed
// at any point (even with SIGKILL, which also drops its lock) leaves a whole
// record behind. A lock file that is removed while somebody waits on it is
// detected and the lock taken again on the new file. A writer waits for the
// lock by retrying a non-blocking flock (after 1ms, then twice as long each
// time, at most every 50ms) until its context ends, so a holder that is
// stuck (stopped with SIGSTOP, say) costs the writers that give up on it
// nothing but time: no goroutine or file is left behind in the wait.
//
// The Version of a record is "GENERATION.INCARNATION": GENERATION counts the
// writes since the record was created and is stored in the record;
// INCARNATION is random and chosen when the record is created. A record that
// is deleted and created again therefore never repeats a version, and a
// compare-and-set from before the deletion fails.
//
// # Revision
//
// Every record the store returns carries a Revision (see
// store.Record.Revision) larger than that of every write before it,
// including writes made before the record file was deleted and created
// again. NAME.lock keeps the sequence: the largest revision any write has
// taken, as a decimal number (an empty file counts as zero). Under the lock,
// a write takes one more than the larger of that sequence and the revision of
// the record it replaces, writes it into NAME.lock and fsyncs it, and only
// then writes the record, which keeps its revision in "revision". A crash in
// between skips a revision; it never hands one out twice. Reads take the
// revision from the record.
//
// Losing either file alone keeps revisions rising: the sequence outlives the
// record, the record's revision outlives the sequence. Removing both (the
// whole folder, say) starts revisions over at 1, and with them the fencing
// tokens made of them, so never remove a lease's files while its candidates
// run, and never remove NAME.lock while one of them may hold it. That is also
// why a Version is not made of the revision: a version must never repeat. A
// lock file that holds anything but a decimal number is malformed: writes
// fail with an error wrapping store.ErrMalformed that names it until it is
// fixed or removed (reads go on). A watch reports a deletion without a
// revision (zero): the file was removed out of band, by no write of the
// store, so no revision was taken for it.
//
// # Record format
//
// The record is one JSON object, for example:
//
//	{
//	  "format": 2,
//	  "generation": 7,
//	  "incarnation": "3f9a0c1e5b7d2468",
//	  "revision": 31,
//	  "holder": "replica-a",
//	  "instance": "9c1d2e3f4a5b6c7d",
//	  "leaseDuration": "15s",
//	  "acquireTime": "2026-05-01T10:00:00.123456Z",
//	  "renewTime": "2026-05-01T10:00:08.123456Z",
//	  "transitions": 3,
//	  "term": 27
//	}
//
// plus "handoffTo", "transferTo" and "releaseRequested" when set; "term"
// (store.Record.Term) is left out when zero. "format" is the version of this
// layout (FormatVersion); format 1, without "revision" and "term", is no
// longer read. A record that cannot be read exactly (bad JSON, an unknown
// field, an unknown format, a missing generation or revision, or values
// store.Record.Validate rejects) is malformed: Get
// returns an error wrapping store.ErrMalformed that names the file, and
// Create and Update refuse to overwrite it. The operator must fix or remove
// the file; the elector keeps retrying and logging until then.
//
// # Watch
//
// Watch follows the folder with inotify (or the platform's equivalent,
// through fsnotify) and reads the record on each change of NAME.json. The
// Watches of the Stores of one Dir share one notification watch of the
// folder, fanned out to them by file name, which exists while any of them
// runs; a Store that New returns has a Dir of its own. On Linux a user may
// hold only fs.inotify.max_user_instances inotify instances (128 by
// default) across all its processes, so a process that keeps many leases in
// one folder makes their Stores with one Dir (OpenDir). When no
// notification watch can be set up (for example the per-user inotify limit
// is reached) or Options.Poll is set, a Watch reads the record every
// Options.PollInterval instead. Either way a watch reports states, not
// writes: changes made faster than the watch reads the file are coalesced
// into the newest one. States are reported in order, the newest is always
// reported, and a deletion is never coalesced away (a record re-created in
// between is reported as a deletion followed by the new record).
//
// # Caveats
//
// Network filesystems (NFS, SMB/CIFS, and most FUSE filesystems) may not
// honour flock(2) between machines, or may not make a rename atomic for
// readers on other machines. Sharing a lease folder over a network
// filesystem is unsupported: use the Kubernetes or etcd store to elect
// across machines. The store works on Unix systems only; elsewhere New
// returns an error.
package file
