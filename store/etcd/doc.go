// Package etcd keeps an election's record in one etcd v3 key, for
// deployments that have an etcd cluster but no Kubernetes API server. It
// implements store.Store; the election algorithm (package election) is the
// same as for every other backend.
//
// # Key layout
//
// The record of the election name lives in the single key
//
//	<prefix>/<name>      default prefix: /incumbent/leases
//
// whose value is a JSON object (see the Value type) with a "format" field,
// currently 1. A value that is not such an object, carries another format,
// or holds a field of the wrong type is malformed: Get and Watch report an
// error wrapping store.ErrMalformed, and Create and Update refuse to
// overwrite it. Fields this version does not know are kept on Update, so
// that replicas of different versions can share one key during an upgrade.
// Values that parse but make no sense (a negative lease duration, say) are
// returned as they are, for store.Record.Validate to report.
//
// # Compare-and-set
//
// A record's Version is the key's mod revision, as a decimal string. Every
// write is one transaction:
//
//   - Create: if CreateRevision(key) == 0 then put, else ErrConflict.
//   - Update: if ModRevision(key) == Version then put; else read the key in
//     the same transaction and return ErrNotFound when it is gone,
//     ErrConflict when it changed.
//
// etcd revisions are unique across the whole cluster, so equal mod revisions
// mean the very same write: a record deleted and re-created in between never
// matches. An Update from a version this Store has not read, written or
// watched itself first reads the key, to carry over unknown fields and to
// refuse a malformed value; the usual renewal costs one round trip.
//
// # Watch
//
// Watch follows the key from the revision after Version (or from now),
// turning puts into records and deletions into deleted events, in revision
// order. The watch is opened with etcd's "require leader" option, so a
// member cut off from its cluster's leader ends the watch instead of
// stalling silently. When the revisions to replay were compacted away, the
// watch delivers one event with Err wrapping rpctypes.ErrCompacted and
// closes; the caller reads the record again and watches from its version.
//
// # Many elections: Keyspace
//
// A process that campaigns in many elections under one prefix makes their
// Stores with one Keyspace (NewKeyspace, then Keyspace.Store for each
// election) instead of New. The records, writes and fence keys are the
// same; the Watches of a Keyspace's Stores share one etcd watch of the
// whole prefix, <prefix>/, fanned out by election name, where each Store
// of New watches its own key. The Keyspace keeps the newest value of each
// record under the prefix in memory (an informer's cache), so that a Watch
// from a version is told what changed since without a request; it merges
// successive changes of a record that its reader has not taken yet into the
// newest, never a deletion, and after a compaction removed what the shared
// watch must replay, it reads the prefix again and tells each Watch the
// current state of its record instead of ending it. The shared watch runs
// while any of those Watches does. Read permission on the prefix is needed
// for it: see Permissions.
//
// # When etcd restarts
//
// While the member the client talks to is down, requests fail once their
// context ends, and the client keeps the watch open and resumes it from the
// last revision it delivered once the member is back (ending it with
// ErrCompacted if that revision is gone). A leader whose renewals fail steps
// down at its renew deadline, as with any backend; once etcd is back, the
// record, unchanged, is taken over by compare-and-set, and the fencing token
// (the record's transitions counter) keeps rising because it lives in the
// value, which etcd persists.
//
// # Why not etcd leases and sessions
//
// etcd has its own leases (a TTL kept alive by the client) and an election
// recipe built on them (clientv3/concurrency). This package deliberately
// uses neither: the key carries no etcd lease and never expires on its own.
// Who may take over, and when, is decided above the store interface by
// package election, which judges expiry only by each candidate's own
// monotonic clock and steps a leader down before any follower may take
// over. That keeps one algorithm, with one set of guarantees and one fencing
// token, for every backend; an etcd lease would add a second, server-side
// clock whose expiry the leader cannot observe in time.
//
// # Fencing the leader's own transactions
//
// With the option WithFenceKey, the Store also keeps the key
//
//	<prefix>/<name>/term
//
// (no election name contains "/", so it is nobody's record), written in the
// same transaction as each acquisition and deleted with each release, so
// that its mod revision is the fencing token of the term in office.
// Store.IsHolder(token) compares it: a leader that puts that comparison in
// its own transactions has them refused by etcd itself once its term is
// over, as etcd's concurrency.Mutex.IsOwner does for a mutex.
//
// # Permissions
//
// With etcd authentication enabled, the client's user needs read and write
// permission on the key (etcdctl role grant-permission <role> readwrite
// <prefix>/<name>; with WithFenceKey, on <prefix>/<name>/term too). The
// Stores of a Keyspace need, besides, read permission on the whole prefix
// for their shared watch (etcdctl role grant-permission <role> --prefix
// read <prefix>/). A refusal is reported as an error wrapping
// store.ErrPermission that names the operation and the key (and, for the
// shared watch, the prefix).
package etcd
