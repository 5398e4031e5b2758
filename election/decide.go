package election

import (
	"fmt"
	"time"

	"github.com/incumbent-io/incumbent/store"
)

// standing is what a campaign decision needs to know about this candidate,
// besides the record: who it is and what holds it back.
type standing struct {
	identity, instance string
	// ownLease is this candidate's LeaseDuration: how long a malformed
	// record is waited out.
	ownLease time.Duration
	// holdUntil: after a resignation, no acquisition before then unless the
	// lease was handed to this candidate, so that the others go first (after
	// a release request the campaign clears it once another candidate has
	// held the lease).
	holdUntil time.Time
	// retryAt: after an acquisition that failed (not a lost race), no
	// attempt before then.
	retryAt time.Time
	// withdrawn: this candidate never campaigns again.
	withdrawn bool
	// unhealthy, when set, says why this candidate's work is unhealthy: it
	// does not campaign (Config.Health).
	unhealthy string
}

// decision is the outcome of decide.
type decision struct {
	// take: try to acquire the lease now.
	take bool
	// until, when take is false, is when to decide again unless the record
	// changes first; zero means only when it changes.
	until time.Time
	// state and reason describe the candidate meanwhile, for Status.
	state  State
	reason string
	// malformed is the record's defect, when it is waited out as malformed.
	malformed error
	// duplicate: the record is held by this identity in another process.
	duplicate bool
	// about is the record whose lease the decision waits out or judged
	// (the deleted one, for a deletion), for the warnings about it.
	about store.Record
}

// decide is the campaign's rule, a pure function of what this candidate has
// observed (o), the time on its own clock (now) and its standing (c):
//
//   - a record held by someone else is taken only once it has not changed
//     for its holder's lease duration (or this candidate's own, if longer),
//     counted from when this candidate first saw its latest version (o.at);
//     timestamps written in the record are never read;
//   - a record deleted while held is waited out the same way, counted from
//     when the deletion was seen;
//   - a released record is taken at once, unless it is reserved for another
//     candidate (a hand-off), which is honoured for its lease duration;
//   - a record that names this very process is taken back at once (its
//     renewal's answer was lost, say);
//   - a candidate that resigned holds back until c.holdUntil, unless the
//     lease was handed to it; one whose last acquisition failed waits until
//     c.retryAt; a withdrawn one never takes, nor one whose work is
//     unhealthy (until its health check passes again).
func decide(o observation, now time.Time, c standing) decision {
	switch {
	case c.withdrawn:
		return decision{state: StateHeldBack, reason: "withdrawn: this candidate no longer campaigns"}
	case c.unhealthy != "":
		return decision{state: StateHeldBack, reason: "unhealthy: " + c.unhealthy}
	}
	d := judge(o, now, c)
	if !d.take {
		return d
	}
	rec := o.rec
	handedToUs := o.exists && !rec.Held() && rec.HandoffTo == c.identity
	switch {
	case now.Before(c.holdUntil) && !handedToUs:
		return decision{until: c.holdUntil, state: StateHeldBack,
			reason: "resigned: holding back (one lease duration at most) so that another candidate goes first"}
	case now.Before(c.retryAt):
		return decision{until: c.retryAt, state: StateCampaigning,
			reason: "retrying after a failed acquisition"}
	}
	return d
}

// judge applies the record's own rules: whether it may be taken now, and if
// not until when it must be waited out.
func judge(o observation, now time.Time, c standing) decision {
	rec := o.rec
	switch {
	case !o.exists:
		if o.gone.Held() {
			lease, bad := leaseOf(o.gone, c.ownLease)
			if until := o.at.Add(lease); now.Before(until) {
				return decision{until: until, state: StateFollowing, malformed: bad, about: o.gone,
					reason: fmt.Sprintf("the record was deleted while %q held it: waiting out its lease", o.gone.Holder)}
			}
		}
		return decision{take: true, state: StateCampaigning, reason: "no lease record: creating it"}
	case heldBy(rec, c.identity, c.instance):
		return decision{take: true, state: StateCampaigning, reason: "the record names this process: taking it back"}
	case !rec.Held():
		if rec.HandoffTo != "" && rec.HandoffTo != c.identity {
			lease, bad := leaseOf(rec, c.ownLease)
			if until := o.at.Add(lease); now.Before(until) {
				return decision{until: until, state: StateHeldBack, malformed: bad, about: rec,
					reason: fmt.Sprintf("the lease is reserved for %q, to whom it was handed", rec.HandoffTo)}
			}
		}
		return decision{take: true, state: StateCampaigning, reason: "the lease is free"}
	}
	lease, bad := leaseOf(rec, c.ownLease)
	dup := rec.Holder == c.identity
	if until := o.at.Add(lease); now.Before(until) {
		reason := fmt.Sprintf("%q holds the lease", rec.Holder)
		if dup {
			reason = "another process with this same identity holds the lease"
		}
		return decision{until: until, state: StateFollowing, reason: reason, malformed: bad, duplicate: dup, about: rec}
	}
	return decision{take: true, state: StateCampaigning, malformed: bad, duplicate: dup, about: rec,
		reason: fmt.Sprintf("the lease of %q expired", rec.Holder)}
}

// leaseOf returns how long to wait out the holder of rec: the longer of its
// lease duration and this candidate's own (a lease shortened by a hand edit
// must not let a follower in while the holder still counts on its own
// deadline), or own for a malformed record (whose defect it also returns).
func leaseOf(rec store.Record, own time.Duration) (time.Duration, error) {
	if err := rec.Validate(); err != nil {
		return own, err
	}
	return max(rec.LeaseDuration, own), nil
}
