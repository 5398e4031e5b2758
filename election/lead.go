package election

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/incumbent-io/incumbent/store"
)

// overrunSlack is how long after its grace a Lead callback may return
// before it is reported as overrunning. A callback that spends exactly the
// grace (the sidecar gives an application all of it) returns on a timer of
// its own, which may fire a moment after the elector's.
const overrunSlack = 100 * time.Millisecond

// lead runs one term: it starts Lead, renews every RenewInterval (every
// RetryPeriod after a failure), ends the
// term on loss, deadline, request or stop, waits for Lead to return, and
// releases the lease unless it was lost. It reports a voluntary end, after
// which the candidate should let others go first.
func (e *Elector) lead(ctx context.Context, stopped <-chan error, t *Term, mine store.Record) (_ resignation, fatal error) {
	e.health.setLeading(true)
	defer e.health.setLeading(false)
	e.setPhase(phase{state: StateLeading, reason: "this candidate holds the lease", term: t})
	e.log.Info("started leading", "token", t.Token())

	workDone := make(chan struct{})
	go func() {
		defer close(workDone)
		if e.cfg.Lead != nil {
			e.cfg.Lead(t)
		} else {
			<-t.Done()
		}
	}()

	changes, stop := e.tracker.changed()
	defer stop()
	// The first renewal goes out at once: it records the term's token in
	// the record, for followers, observers and operators to see.
	renew := e.clock.NewTimer(0)
	defer renew.Stop()
	reread := false
	healthCh := e.health.watch()
	checkRequests := func(rec store.Record) {
		switch {
		case rec.TransferTo != "":
			t.TransferTo(rec.TransferTo)
		case rec.ReleaseRequested:
			t.end(errReleaseRequested)
		}
	}
loop:
	for {
		select {
		case <-t.Done():
			break loop
		case <-ctx.Done():
			t.end(ErrStopped)
			break loop
		case <-workDone:
			t.end(ErrResigned)
			break loop
		case <-e.withdraw:
			t.end(ErrWithdrawn)
			break loop
		case <-healthCh:
			healthCh = e.health.watch() // before the verdict is read: no change is missed
			if healthy, why := e.health.verdict(); !healthy {
				t.end(fmt.Errorf("%w: %s", ErrUnhealthy, why))
				break loop
			}
		case err := <-stopped:
			// The tracker stopped for good (a refused read): this leader
			// would no longer see requests or changes.
			fatal = err
			t.end(err)
			break loop
		case <-changes:
			if o := e.tracker.latest(); o.exists && heldBy(o.rec, e.cfg.Identity, e.instance) {
				checkRequests(o.rec)
			} else {
				renew.Reset(0) // looks taken or gone: a renewal confirms or refutes it
			}
		case <-renew.C():
			began := e.clock.Now()
			next, err := e.renew(ctx, t, mine, reread)
			switch {
			case err == nil:
				mine, reread = next, false
				checkRequests(mine)
			case errors.Is(err, ErrLeaseLost):
				t.end(ErrLeaseLost)
			case errors.Is(err, store.ErrPermission):
				fatal = err
				t.end(err)
			default:
				if ctx.Err() == nil && t.Err() == nil {
					e.log.Warn("renewal failed; retrying while the term lasts", "err", err, "deadline", t.Deadline())
				}
				reread = true
			}
			// Renewals are paced from when they start, not from when the
			// last answer came, so a slow API server does not stretch the
			// interval and eat into the renew deadline: every RenewInterval
			// while they succeed, every RetryPeriod once one failed.
			every := e.cfg.RenewInterval
			if err != nil {
				every = e.cfg.RetryPeriod
			}
			renew.Reset(max(0, every-e.clock.Now().Sub(began)))
		}
	}
	renew.Stop()
	cause := t.Err()
	stopBy := e.clock.Now().Add(e.cfg.Grace)
	e.setPhase(phase{state: StateSteppingDown, reason: cause.Error(), term: t, deadline: stopBy})
	e.log.Info("stopped leading", "token", t.Token(), "reason", cause)

	e.awaitWork(t, workDone)

	if errors.Is(cause, ErrLeaseLost) || fatal != nil {
		return resignation{}, fatal
	}
	var handoff string
	var te *TransferError
	if errors.As(cause, &te) {
		handoff = te.To
	}
	if err := e.release(ctx, mine, handoff, t.Token()); err != nil {
		e.log.Warn("could not release the lease; it will expire", "err", err)
	}
	return resignation{resigned: errors.Is(cause, ErrResigned), requested: errors.Is(cause, errReleaseRequested)}, nil
}

// resignation says how a term ended, for the hold-back that follows.
type resignation struct {
	resigned  bool // the term ended by a resignation (ErrResigned)
	requested bool // ... that an operator asked for (a release request)
}

// errReleaseRequested ends a term whose release an operator requested: a
// resignation (errors.Is ErrResigned) after which the candidate holds back
// only until another candidate has taken the lease. After any other
// resignation (Term.Resign, the work returned: which may repeat at once,
// as when a workload fails on start) it holds back a full lease duration,
// so that two candidates whose work keeps failing cannot pass the lease
// back and forth in a tight loop.
var errReleaseRequested = fmt.Errorf("%w: an operator requested the release", ErrResigned)

// awaitWork waits for the term's work to return. Past its grace (plus
// overrunSlack) it reports the overrun, in the log and through Check,
// since another candidate may take the lease while the work still runs;
// it goes on waiting: the lease is released only after the work returned.
func (e *Elector) awaitWork(t *Term, workDone <-chan struct{}) {
	grace := e.clock.NewTimer(e.cfg.Grace + overrunSlack)
	defer grace.Stop()
	select {
	case <-workDone:
		return
	case <-grace.C():
	}
	e.log.Error("the leader's work did not stop within the grace period; another candidate may take the lease while it still runs",
		"grace", e.cfg.Grace, "token", t.Token())
	e.mu.Lock()
	e.stuckSince = e.clock.Now()
	e.mu.Unlock()
	<-workDone
	e.mu.Lock()
	e.stuckSince = time.Time{}
	e.mu.Unlock()
}

// renew extends the lease once. The term's deadline moves only on success,
// counted from the moment the write was sent. An error other than
// ErrLeaseLost leaves the outcome unknown: the caller must pass reread.
func (e *Elector) renew(ctx context.Context, t *Term, mine store.Record, reread bool) (store.Record, error) {
	timeout := min(t.Deadline().Sub(e.clock.Now()), e.callTimeout())
	if timeout <= 0 {
		return mine, ErrRenewDeadline
	}
	// The renewal ends with the term too: a voluntary step-down must not
	// wait for a slow renewal (its outcome is then unknown, which the
	// release handles by re-reading).
	cctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	defer context.AfterFunc(ctx, cancel)()
	for range maxRaces {
		exists := true
		if reread {
			o, err := e.tracker.read(cctx)
			if err != nil {
				return mine, err
			}
			if o.exists && !heldBy(o.rec, e.cfg.Identity, e.instance) {
				return mine, fmt.Errorf("%w: now held by %q", ErrLeaseLost, o.rec.Holder)
			}
			exists = o.exists
			if exists {
				mine = o.rec
			}
		}
		next := mine
		next.RenewTime = e.clock.Now()
		next.LeaseDuration = e.cfg.LeaseDuration
		next.Term = t.Token() // recorded for followers and observers to report
		sent := e.clock.Now()
		var got store.Record
		var err error
		if exists {
			got, err = e.store.Update(cctx, next)
		} else {
			// Deleted under us: restore our record, same token. Whoever
			// re-creates it first wins.
			got, err = e.store.Create(cctx, next)
		}
		e.cfg.Metrics.Renewed(e.clock.Now().Sub(sent), err)
		switch {
		case err == nil:
			e.tracker.observe(got, true)
			t.renewed(sent)
			return got, nil
		case errors.Is(err, store.ErrConflict) && !exists:
			return mine, fmt.Errorf("%w: record re-created by another candidate", ErrLeaseLost)
		case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
			reread = true
		default:
			return mine, err
		}
	}
	return mine, fmt.Errorf("renew %s: record keeps changing under the leader", e.store)
}

// release frees the lease after the term's work has returned: a
// compare-and-set on the last version this process wrote, re-read on
// conflict, so it never clears a lease that somebody else holds. A non-empty
// handoff reserves the lease for that identity for one LeaseDuration.
func (e *Elector) release(ctx context.Context, mine store.Record, handoff string, token int64) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.callTimeout())
	defer cancel()
	now := e.clock.Now()
	next := store.Record{LeaseDuration: time.Second, AcquireTime: now, RenewTime: now,
		Transitions: mine.Transitions, HandoffTo: handoff, Version: mine.Version}
	if handoff != "" {
		next.LeaseDuration = e.cfg.LeaseDuration
	}
	for range maxRaces {
		got, err := e.store.Update(cctx, next)
		switch {
		case err == nil:
			e.tracker.observe(got, true)
			e.log.Info("released the lease", "token", token, "handoff_to", handoff)
			return nil
		case errors.Is(err, store.ErrNotFound):
			return nil
		case !errors.Is(err, store.ErrConflict):
			return err
		}
		o, err := e.tracker.read(cctx)
		if err != nil {
			return err
		}
		if !o.exists || !heldBy(o.rec, e.cfg.Identity, e.instance) {
			return nil // somebody else's now: leave it alone
		}
		next.Version = o.rec.Version
	}
	return fmt.Errorf("release %s: record keeps changing", e.store)
}
