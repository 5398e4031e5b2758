package election

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Reasons a term ends, reported by Term.Err (use errors.Is / errors.As).
var (
	// ErrLeaseLost: the record was found held by someone else, or deleted
	// and re-created by someone else.
	ErrLeaseLost = errors.New("lease lost to another holder")
	// ErrRenewDeadline: no renewal succeeded within RenewDeadline of the
	// last successful one being sent (API server slow or unreachable).
	ErrRenewDeadline = errors.New("lease not renewed within the renew deadline")
	// ErrResigned: the leader stepped down on its own (Term.Resign, the Lead
	// callback returned, or an operator asked for a release).
	ErrResigned = errors.New("leader resigned")
	// ErrStopped: the context given to Run ended.
	ErrStopped = errors.New("elector stopped")
	// ErrWithdrawn: the candidate withdrew (Elector.Withdraw): it releases
	// the lease and never campaigns again.
	ErrWithdrawn = errors.New("candidate withdrew")
)

// TransferError ends a term that hands the lease over to a named candidate.
type TransferError struct{ To string }

func (e *TransferError) Error() string { return fmt.Sprintf("leadership transferred to %q", e.To) }

// Term is one uninterrupted period of leadership of one candidate. Its
// context is cancelled no later than RenewDeadline after the last successful
// renewal was sent, and at once on loss, resignation, transfer or stop.
type Term struct {
	ctx      context.Context
	cancel   context.CancelCauseFunc
	clock    Clock
	token    int64
	identity string
	acquired time.Time

	mu         sync.Mutex
	lastRenew  time.Time // send time of the last successful write
	deadline   time.Time // lastRenew + RenewDeadline
	stepDown   Timer
	renewLimit time.Duration
}

func newTerm(parent context.Context, clock Clock, identity string, token int64, sent time.Time, renewDeadline time.Duration) *Term {
	ctx, cancel := context.WithCancelCause(parent)
	t := &Term{ctx: ctx, cancel: cancel, clock: clock, token: token, identity: identity, acquired: sent,
		lastRenew: sent, deadline: sent.Add(renewDeadline), renewLimit: renewDeadline}
	t.mu.Lock() // the timer may fire at once if the winning write was slow
	t.stepDown = clock.AfterFunc(t.deadline.Sub(clock.Now()), func() { t.end(ErrRenewDeadline) })
	t.mu.Unlock()
	return t
}

// Context is cancelled when the term ends. Work done on behalf of the leader
// must stop when it is done.
func (t *Term) Context() context.Context { return t.ctx }

// Done is a shortcut for Context().Done().
func (t *Term) Done() <-chan struct{} { return t.ctx.Done() }

// Err is nil while the term lasts, then says why it ended: ErrLeaseLost,
// ErrRenewDeadline, ErrResigned, ErrStopped, ErrWithdrawn, ErrUnhealthy
// (wrapped) or a *TransferError.
func (t *Term) Err() error {
	if t.ctx.Err() == nil {
		return nil
	}
	return context.Cause(t.ctx)
}

// Token is the fencing token of this term: the revision of the write with
// which this candidate acquired the lease (see store.Record.Revision). It is
// at least 1, and every later term of the same election has a larger token,
// even after the record was deleted and created again. Pass it to the
// resources the leader writes, so they can refuse a deposed leader.
func (t *Term) Token() int64 { return t.token }

// Identity is the candidate that holds this term.
func (t *Term) Identity() string { return t.identity }

// AcquiredAt is the local time at which the winning write was sent.
func (t *Term) AcquiredAt() time.Time { return t.acquired }

// Deadline is the moment the term ends unless a renewal succeeds first.
func (t *Term) Deadline() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.deadline
}

// Resign ends the term: the elector waits for the Lead callback to return,
// releases the lease, and holds back for one LeaseDuration before it
// campaigns again, so that any other candidate, even one that polls
// (client-go), takes it first.
func (t *Term) Resign() { t.end(ErrResigned) }

// TransferTo ends the term and hands the lease to the candidate with the
// given identity: after the Lead callback returns, the lease is released
// with a reservation for that candidate, which other incumbent candidates
// honour for one LeaseDuration. An empty identity, or this term's own,
// makes it a plain Resign.
func (t *Term) TransferTo(identity string) {
	if identity == "" || identity == t.identity {
		t.Resign()
		return
	}
	t.end(&TransferError{To: identity})
}

// end cancels the term with the given cause; the first cause wins.
func (t *Term) end(cause error) {
	t.mu.Lock()
	t.stepDown.Stop()
	t.mu.Unlock()
	t.cancel(cause)
}

// renewed moves the deadline after a successful write sent at sent. It
// reports false if the term had already ended.
func (t *Term) renewed(sent time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx.Err() != nil || !t.stepDown.Stop() {
		return false
	}
	if sent.After(t.lastRenew) {
		t.lastRenew = sent
		t.deadline = sent.Add(t.renewLimit)
	}
	t.stepDown.Reset(t.deadline.Sub(t.clock.Now()))
	return true
}
