package election

import (
	"time"

	"github.com/incumbent-io/incumbent/store"
)

// State is where a candidate stands in its election.
type State string

// The states of a candidate, and of an observer.
const (
	// StateStarting: Run has not started, or the record has not been read.
	StateStarting State = "starting"
	// StateFollowing: another candidate holds the lease (or held it when
	// the record was deleted); this one waits for its lease to run out.
	StateFollowing State = "following"
	// StateCampaigning: the lease is free or expired; this candidate is
	// trying to take it.
	StateCampaigning State = "campaigning"
	// StateHeldBack: this candidate could campaign but holds back; Reason
	// says why (it resigned a moment ago, the lease is reserved for another
	// candidate, it withdrew).
	StateHeldBack State = "held back"
	// StateLeading: a term is in progress.
	StateLeading State = "leading"
	// StateSteppingDown: the term has ended (Reason says why); its work is
	// stopping, and the lease is released once it has.
	StateSteppingDown State = "stepping down"
	// StateStopped: Run has returned.
	StateStopped State = "stopped"
	// StateObserving: an Observer, which never campaigns.
	StateObserving State = "observing"
)

// Status is what a candidate or an observer knows about an election at one
// moment.
type Status struct {
	// Lease names the record, e.g. "lease default/db".
	Lease string
	// Identity is this candidate's identity; empty for an Observer.
	Identity string
	// State is where this candidate stands; Reason says why, in words.
	State  State
	Reason string
	// Until, while following or held back, is when the candidate will
	// campaign unless the record changes first (its local clock); zero
	// when only a change of the record can end the wait.
	Until time.Time
	// Leader is the holder named by the latest record observed; empty when
	// the lease is free, absent, or not yet read. While this candidate
	// leads, it is this candidate.
	Leader string
	// IsLeader is true while this candidate is inside a term: from the
	// acquisition until the term's context is cancelled.
	IsLeader bool
	// Term is the fencing token of the current holder's term: while this
	// candidate leads, its own term's token (Term.Token); otherwise the
	// token the holder recorded in the record, zero when it has not (a
	// client-go holder, or one that has not renewed since it acquired).
	Term int64
	// Token, while this candidate leads or steps down, is its own term's
	// fencing token; zero otherwise.
	Token int64
	// Deadline, while this candidate leads, is the moment its term ends
	// unless a renewal succeeds first (lastRenewalSent + RenewDeadline, on
	// its local clock); while it steps down, the moment by which the term's
	// work must have stopped (the term's end + Grace). Zero otherwise.
	Deadline time.Time
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

// phase is the part of a candidate's Status that the observation does not
// give: where its loops stand.
type phase struct {
	state    State
	reason   string
	until    time.Time
	term     *Term     // leading or stepping down: the term
	deadline time.Time // stepping down: the work must have stopped by then
	// campaign, while the candidate follows or campaigns, is its standing:
	// the state is then decided afresh from each observation, so that the
	// status never pairs a newer record with an older decision.
	campaign *standing
}

// statusOf derives a status from an observation, the candidate's phase and
// the time on its clock. While a term lasts, the candidate is the leader
// and its term's token is the term, whatever the latest observation says: a
// watch event older than the candidate's own write, or a deletion it is
// about to undo, must not make a leader report another holder or token.
func statusOf(lease, identity string, o observation, p phase, now time.Time) Status {
	s := Status{Lease: lease, Identity: identity, Known: o.known, State: p.state, Reason: p.reason, Until: p.until}
	if p.campaign != nil && o.known {
		d := decide(o, now, *p.campaign)
		s.State, s.Reason, s.Until = d.state, d.reason, d.until
	}
	if o.exists {
		s.Leader = o.rec.Holder
		s.Term = o.rec.Term
		s.Transitions = o.rec.Transitions
		s.RenewedAt = o.rec.RenewTime
		s.LeaseDuration = o.rec.LeaseDuration
		s.ObservedAt = o.at
	}
	if p.term == nil {
		return s
	}
	s.Token = p.term.Token()
	if p.state == StateLeading {
		s.IsLeader = true
		s.Leader = identity
		s.Term = p.term.Token()
		s.Known = true
		s.Deadline = p.term.Deadline()
	} else {
		s.Deadline = p.deadline
	}
	return s
}

// sameStatus reports whether two statuses differ only in what changes with
// every renewal (stamps, deadlines), so that subscribers are told about
// changes of leadership, term or state, not about every renewal.
func sameStatus(a, b Status) bool {
	return a.Leader == b.Leader && a.IsLeader == b.IsLeader && a.Term == b.Term && a.Token == b.Token &&
		a.State == b.State && a.Reason == b.Reason && a.Known == b.Known && a.LeaseDuration == b.LeaseDuration
}

// heldBy reports whether rec is held by this exact process.
func heldBy(rec store.Record, identity, instance string) bool {
	return rec.Holder == identity && rec.Instance == instance
}
