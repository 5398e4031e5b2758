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
	// Leader is the current holder; empty when the lease is free or unknown.
	Leader string `json:"leader"`
	// IsLeader is true while this candidate is inside a term.
	IsLeader bool `json:"isLeader"`
	// Term is the fencing token of the holder's term.
	Term int64 `json:"term"`
	// RenewedAt is the holder's own renewal stamp; null when unknown.
	RenewedAt *time.Time `json:"renewedAt"`
	// LeaseDurationSeconds is the duration the holder wrote.
	LeaseDurationSeconds float64 `json:"leaseDurationSeconds"`
	// Known is false until the lease record has been read once.
	Known bool `json:"known"`
}

// ViewOf converts an election.Status.
func ViewOf(s election.Status, lease, namespace string) View {
	v := View{Lease: lease, Namespace: namespace, Identity: s.Identity, Leader: s.Leader,
		IsLeader: s.IsLeader, Term: s.Term, LeaseDurationSeconds: s.LeaseDuration.Seconds(), Known: s.Known}
	if !s.RenewedAt.IsZero() {
		t := s.RenewedAt.UTC()
		v.RenewedAt = &t
	}
	return v
}

// Contrib is the document of GET /, the answer of the retired
// contrib leader-elector.
type Contrib struct {
	Name string `json:"name"`
}
