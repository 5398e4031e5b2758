package statusapi

import (
	"time"

	"github.com/incumbent-io/incumbent/election"
)

// View is the JSON document of /v1/status and of each /v1/watch event.
type View struct {
	// Lease and Namespace name the election.
	Lease     string `json:"lease"`
	Namespace string `json:"namespace"`
	// Identity is this candidate's identity.
	Identity string `json:"identity"`
	// State is where this candidate stands: starting, following,
	// campaigning, held back, leading, stepping down or stopped (see
	// election.State); Reason says why, in words.
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Leader is the current holder; empty when the lease is free or unknown.
	Leader string `json:"leader"`
	// IsLeader is true while this candidate is inside a term. Act on the
	// leader's behalf only while it is true, and stop at once when it turns
	// false.
	IsLeader bool `json:"isLeader"`
	// Term is the fencing token of the holder's term: while this candidate
	// leads, its own term's token; 0 while unknown. Pass it with every write
	// to a resource that can refuse a lower one.
	Term int64 `json:"term"`
	// ValidUntil, while this candidate leads, is the latest moment its term
	// lasts unless renewed (this machine's clock); ValidForSeconds is the
	// time left until then when the answer was made. An application that
	// polls stops acting before it, even if it cannot reach the sidecar.
	ValidUntil      *time.Time `json:"validUntil,omitempty"`
	ValidForSeconds *float64   `json:"validForSeconds,omitempty"`
	// StopBy, while this candidate steps down, is when the application
	// must have stopped acting (the term's end plus the grace); the lease
	// is released then, or earlier once the application acknowledges
	// (POST /v1/stepped-down on the control endpoint).
	StopBy *time.Time `json:"stopBy,omitempty"`
	// RenewedAt is the holder's own renewal stamp; null when unknown.
	RenewedAt *time.Time `json:"renewedAt"`
	// LeaseDurationSeconds is the duration the holder wrote.
	LeaseDurationSeconds float64 `json:"leaseDurationSeconds"`
	// Known is false until the lease record has been read once.
	Known bool `json:"known"`
}

// ViewOf converts an election.Status, as of now.
func ViewOf(s election.Status, lease, namespace string) View {
	v := View{Lease: lease, Namespace: namespace, Identity: s.Identity, State: string(s.State), Reason: s.Reason,
		Leader: s.Leader, IsLeader: s.IsLeader, Term: s.Term, LeaseDurationSeconds: s.LeaseDuration.Seconds(), Known: s.Known}
	if !s.RenewedAt.IsZero() {
		t := s.RenewedAt.UTC()
		v.RenewedAt = &t
	}
	if !s.Deadline.IsZero() {
		at := s.Deadline.UTC()
		switch s.State {
		case election.StateLeading:
			left := max(0, time.Until(s.Deadline).Seconds())
			v.ValidUntil, v.ValidForSeconds = &at, &left
		case election.StateSteppingDown:
			v.StopBy = &at
		}
	}
	return v
}

// Contrib is the document of GET /, the answer of the retired
// contrib leader-elector.
type Contrib struct {
	Name string `json:"name"`
}
