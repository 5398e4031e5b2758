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
	// leads or steps down, its own term's token; 0 while unknown. Pass it
	// with every write to a resource that can refuse a lower one, and with
	// the acknowledgement of a step-down (POST /v1/stepped-down?term=N).
	Term int64 `json:"term"`
	// ValidUntil, while this candidate leads, is how long the application
	// may act on this answer (this machine's clock): the earlier of the
	// term's end unless renewed and the grace from now, since a term that
	// ends early (a release, a transfer, SIGTERM) is handed over a grace
	// after its end. ValidForSeconds is the time left until then when the
	// answer was made. An application that polls acts only until the
	// validUntil of its latest answer, and so polls more often than the
	// grace; it then stops in time even if it cannot reach the sidecar.
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

// ViewOf converts an election.Status, as of now; grace is the sidecar's
// --grace, which bounds ValidUntil (zero: no bound, for an observer).
func ViewOf(s election.Status, lease, namespace string, grace time.Duration) View {
	v := View{Lease: lease, Namespace: namespace, Identity: s.Identity, State: string(s.State), Reason: s.Reason,
		Leader: s.Leader, IsLeader: s.IsLeader, Term: s.Term, LeaseDurationSeconds: s.LeaseDuration.Seconds(), Known: s.Known}
	if !s.RenewedAt.IsZero() {
		t := s.RenewedAt.UTC()
		v.RenewedAt = &t
	}
	if s.State == election.StateSteppingDown && s.Token != 0 {
		v.Term = s.Token
	}
	if !s.Deadline.IsZero() {
		switch s.State {
		case election.StateLeading:
			until := s.Deadline
			if now := time.Now(); grace > 0 && now.Add(grace).Before(until) {
				until = now.Add(grace)
			}
			at, left := until.UTC(), max(0, time.Until(until).Seconds())
			v.ValidUntil, v.ValidForSeconds = &at, &left
		case election.StateSteppingDown:
			at := s.Deadline.UTC()
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
