// Package election gives a component one active replica: several candidates
// campaign for one lease record, exactly one of them holds it at a time, and
// the holder's work runs inside a Term whose context ends before anybody else
// can take over.
//
// # The algorithm
//
// The record (package store) names a holder, a lease duration, a
// transitions counter and a version. Every write is a compare-and-set on the
// version last read, so two candidates can never both believe they wrote
// over the same state.
//
//   - Followers watch the record and read it every RetryPeriod only while the
//     watch is down. A released record (empty holder) is taken at once, so a
//     graceful hand-over costs a few round trips, not a poll interval.
//   - A follower takes over an unreleased record only when it has seen no
//     change to it for the holder's LeaseDuration, counted on its own
//     monotonic clock from the moment it first observed the latest version.
//     Timestamps in the record are never compared with a local clock.
//   - The leader renews every RetryPeriod. Its authority is counted from the
//     moment it sent its last successful renewal; a renewal whose outcome is
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
//     one-shot.
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
// token (Term.Token): the record's transitions counter after acquisition,
// which rises on every change of holder, including a re-acquisition after a
// release. Pass it with every write to the protected resource and have the
// resource refuse tokens lower than the highest it has seen.
//
// Deleting the record resets what the backend stores; the elector never
// deletes it. Candidates that saw a holder before a deletion wait out that
// holder's lease, re-create the record with the next token, and a leader
// whose record vanished re-creates it with its own token; but a candidate
// started after the deletion knows nothing and may start again from token 0.
//
// # Interoperation
//
// On Kubernetes (package store/kube) the record is exactly the Lease spec
// that client-go's leaderelection.LeaseLock writes, so incumbent candidates
// and client-go candidates sharing one Lease exclude each other. client-go
// candidates do not honour hand-off reservations and poll instead of
// watching.
package election
