// Package election gives a component one active replica: several candidates
// campaign for one lease record, exactly one of them holds it at a time, and
// the holder's work runs inside a Term whose context ends before anybody else
// can take over.
//
// # The algorithm
//
// The record (package store) names a holder, a lease duration, a
// transitions counter, a version and a revision. Every write is a
// compare-and-set on the version last read, so two candidates can never both
// believe they wrote over the same state.
//
//   - Followers watch the record and read it every RetryPeriod only while the
//     watch is down (or refused: the watch permission is optional). A
//     released record (empty holder) is taken at once, so a graceful
//     hand-over costs a few round trips, not a poll interval.
//   - A follower takes over an unreleased record only when it has seen no
//     change to it for the holder's LeaseDuration (or its own, if longer),
//     counted on its own monotonic clock from the moment it first observed
//     the latest version. Timestamps in the record are never compared with a
//     local clock. That rule is one pure function (decide.go).
//   - The leader renews every RenewInterval (by default RetryPeriod), and
//     every RetryPeriod after a renewal failed. Its authority is counted
//     from the moment it sent its last successful renewal; a renewal whose outcome is
//     unknown (timeout, lost reply) counts as not renewed, and the record is
//     read again before the next decision. The term's context is cancelled
//     at lastRenewSent + RenewDeadline, or at once when the lease is lost.
//   - The lease is released only after the term's work (Config.Lead) has
//     returned, by a compare-and-set on the version this process last wrote:
//     a release never clears a lease somebody else holds.
//   - Each process carries a random instance marker beside its identity. A
//     record held by the same identity but another instance is treated as
//     held by someone else.
//   - After a term ends the candidate follows and campaigns again: Run is not
//     one-shot. After a resignation it holds back one LeaseDuration, so that
//     another candidate goes first (after an operator's release request,
//     only until another candidate has taken the lease); after Withdraw it
//     never campaigns again.
//
// The follower's side is campaign.go, the leader's lead.go, what a candidate
// knows of the record tracker.go, and Status says where it stands (State).
//
// # Timing
//
// Let drift bound the relative rate difference of any two clocks. Config is
// rejected unless
//
//	(RenewDeadline + Grace)*(1+Drift) < LeaseDuration*(1-Drift)
//
// A leader's work stops, by its own clock, at most RenewDeadline + Grace
// after it sent its last successful renewal; no follower can have observed
// that renewal before it was sent, and each waits LeaseDuration on its own
// clock after observing it. Both sides are measured on different clocks,
// so each is scaled by the worst rate difference. The inequality makes the
// first moment strictly earlier than the second. With the defaults (15s,
// 10s, 2s, grace 4s) the margin is 0.71s.
//
// # Fencing, and what no election can promise
//
// The inequality holds only if the leader's process actually runs. A leader
// paused by the kernel, a stop-the-world pause, a VM migration or SIGSTOP for
// longer than its margin wakes up believing it still leads while another
// candidate already does. No lease-based election can prevent that; only the
// resource being protected can. Every term therefore carries a fencing
// token (Term.Token). Pass it with every write to the protected resource and
// have the resource refuse tokens lower than the highest it has seen.
// Where the resource cannot check tokens, the server can be made to refuse
// a deposed leader itself: the Kubernetes API server with the admission
// policy `incumbent fence` prints, etcd with store/etcd's IsHolder in the
// leader's transactions; and package writegate keeps the leader's own
// client from sending a write once its term has ended (docs/fencing.md).
//
// The token is the store revision of the write that acquired the lease (see
// store.Record.Revision): on Kubernetes the resourceVersion of that write
// (comparable since Kubernetes 1.35, KEP-5504), on etcd its mod revision, in
// the file store a sequence kept beside the record. It is at least 1, and
// every later term's token is larger, even after the record was deleted and
// created again by a candidate that never saw it. Tokens are large and
// sparse (a Kubernetes or etcd revision counts every write of the cluster):
// compare them as integers, never as strings. The record's transitions
// counter (client-go's leaseTransitions) still counts changes of holder, for
// people and for client-go, but is not a token. The holder records its
// token in the record with its first renewal, at once after acquiring, so
// that followers and observers can report it (Status.Term).
//
// What tokens rest on: a store whose revisions never go back. Restoring etcd
// from a snapshot without bumping its revision (etcdutl snapshot restore
// --bump-revision ... --mark-compacted, as the Kubernetes documentation
// asks), or moving the record to another store, makes them go back; tokens
// may then repeat until the store's revisions pass the highest seen before.
// Candidates take the restored record as it is, so that the election goes
// on, and log it as an error.
//
// Deleting the record never lowers tokens, but it can let two candidates act
// at once: the elector never deletes it, and candidates that saw it held
// wait out that holder's lease (counted from when they saw the deletion)
// before creating it again; a leader whose record vanished re-creates it
// with its own token. A candidate that never saw the record, though, cannot
// tell it from one that never existed: it creates it at once, and overlaps
// the old holder's term until that holder's next renewal fails (plus its
// grace). Fencing orders them: the newcomer's token is the larger.
//
// # Many elections in one process
//
// A process may campaign in many elections at once: one lease per shard,
// per tenant or per bucket, as bucketed controllers do. Run one Elector per
// election, all with the same identity, and make their stores share what
// can be shared: on Kubernetes one kube.Client (kube.NewClient, then
// Client.Store for each Lease) gives them one HTTP/2 connection and one
// watch of the namespace's Leases, fanned out by name, while each keeps its
// own rate limiter, timeouts and renewals, so that a busy election cannot
// starve another's. Its elections start following the shared watch without
// a request of their own, and a follower then costs neither requests nor a
// goroutine of its own (store.Follower); idle followers send nothing, so
// nearly all the traffic of many elections is their leaders' renewals:
// RenewInterval trades it for fewer chances to renew before RenewDeadline.
// The etcd store shares one client (etcd.New takes it) and the file store
// one folder. See Example_manyElections.
//
// # Interoperation
//
// On Kubernetes (package store/kube) the record is exactly the Lease spec
// that client-go's leaderelection.LeaseLock writes, so incumbent candidates
// and client-go candidates sharing one Lease exclude each other. client-go
// candidates do not honour hand-off reservations, poll instead of watching,
// and offer no fencing token (Status.Term is 0 while one holds the lease).
package election
