package election

import (
	"time"

	"github.com/incumbent-io/incumbent/store"
)

// Status is what a candidate or an observer knows about an election at one
// moment.
type Status struct {
	// Lease names the record, e.g. "lease default/db".
	Lease string
	// Identity is this candidate's identity; empty for an Observer.
	Identity string
	// Leader is the holder named by the latest record observed; empty when
	// the lease is free, absent, or not yet read.
	Leader string
	// IsLeader is true while this candidate is inside a term: from the
	// acquisition until the term's context is cancelled.
	IsLeader bool
	// Term is the fencing token of the current holder's term: while this
	// candidate leads, its own term's token (Term.Token); otherwise the
	// token the holder recorded in the record, zero when it has not (a
	// client-go holder, or one that has not renewed since it acquired).
	Term int64
	// Transitions is the record's count of holder changes (client-go's
	// leaseTransitions). It is informative, not a fencing token.
	Transitions int64
	// RenewedAt is the holder's own renewal stamp (its wall clock).
	RenewedAt time.Time
	// ObservedAt is the local time at which this version was first seen.
	ObservedAt time.Time
	// LeaseDuration is the duration written by the holder.
	LeaseDuration time.Duration
	// Known is false until the record has been read once.
	Known bool
}

// statusOf derives a status from an observation and the term in progress,
// if any. While a term lasts, the candidate is the leader and its term's
// token is the term, whatever the latest observation says: a watch event
// older than the candidate's own write, or a deletion it is about to undo,
// must not make a leader report another holder or token.
func statusOf(lease, identity string, o observation, term *Term) Status {
	s := Status{Lease: lease, Identity: identity, Known: o.known}
	if o.exists {
		s.Leader = o.rec.Holder
		s.Term = o.rec.Term
		s.Transitions = o.rec.Transitions
		s.RenewedAt = o.rec.RenewTime
		s.LeaseDuration = o.rec.LeaseDuration
		s.ObservedAt = o.at
	}
	if term != nil {
		s.IsLeader = true
		s.Leader = identity
		s.Term = term.Token()
		s.Known = true
	}
	return s
}

// sameStatus reports whether two statuses differ only in renewal stamps, so
// that subscribers are told about changes of leadership, not every renewal.
func sameStatus(a, b Status) bool {
	return a.Leader == b.Leader && a.IsLeader == b.IsLeader && a.Term == b.Term &&
		a.Known == b.Known && a.LeaseDuration == b.LeaseDuration
}

// heldBy reports whether rec is held by this exact process.
func heldBy(rec store.Record, identity, instance string) bool {
	return rec.Holder == identity && rec.Instance == instance
}
