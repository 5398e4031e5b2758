package election

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/incumbent-io/incumbent/store"
)

// maxRaces is how many acquisition races in a row a candidate re-reads and
// retries at once; after that it waits a retry period, so that candidates
// racing without end do not spin.
const maxRaces = 3

// campaign follows the election until this candidate may take the lease,
// and takes it: it returns the new term and the record as written. It
// returns a nil term and a nil error when ctx ends, and an error only for
// what retrying cannot cure. No acquisition is attempted before hold.until
// unless the lease was handed to this candidate, or, for a hold that only
// yields, another candidate has held it since.
func (e *Elector) campaign(ctx context.Context, fatal <-chan error, hold holdBack) (*Term, store.Record, error) {
	changes, stop := e.tracker.changed()
	defer stop()
	timer := e.clock.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	withdraw := e.withdraw // nil once the withdrawal was seen
	c := &campaigner{hold: hold}
	e.tracker.load(&c.o)
	c.fresh = c.o.known // false: read the record before deciding
	// At the start the tracker's first read (or its shared watch's first
	// event) is on its way: wait for it rather than read the record twice.
	c.first = !c.o.known
	for {
		healthCh := e.health.watch() // before the verdict is read: no change is missed
		wake, again := e.step(ctx, c)
		switch {
		case c.over:
			return c.term, c.mine, c.err
		case again:
			continue
		}
		var expired <-chan time.Time
		if wake >= 0 {
			timer.Reset(wake)
			expired = timer.C()
		}
		select {
		case <-ctx.Done():
			return nil, store.Record{}, nil
		case err := <-fatal:
			return nil, store.Record{}, err
		case <-changes:
		case <-expired:
		case <-withdraw:
			withdraw = nil // decide again, once
		case <-healthCh:
		}
		timer.Stop()
		if c.first {
			if e.tracker.load(&c.o); c.o.known {
				c.first, c.fresh = false, true
			}
		}
		if c.fresh {
			e.tracker.load(&c.o)
		}
	}
}

// campaigner is the state of a campaign between its steps. It lives on the
// heap, and each step in a call of its own, so that the goroutine waiting
// between steps keeps a small stack: a process may run thousands of
// elections, and their waiting goroutines' stacks are most of what each
// costs in memory.
type campaigner struct {
	o       observation
	fresh   bool      // o is as fresh as the tracker's: no read needed
	first   bool      // the tracker has observed nothing yet: wait for it
	races   int       // acquisition races lost in a row
	retryAt time.Time // no acquisition before, after a failed one
	hold    holdBack
	waited  bool // after a failed acquisition, waited once for the watch rather than read

	over bool // the campaign ended, with:
	term *Term
	mine store.Record
	err  error
}

// end ends the campaign with its outcome.
func (c *campaigner) end(t *Term, mine store.Record, err error) {
	c.over, c.term, c.mine, c.err = true, t, mine, err
}

// step reads or decides, and acquires when the decision says so. It
// returns how long to wait for a change before the next step (negative:
// until a change), or again for a next step at once; it ends c when the
// campaign is over.
func (e *Elector) step(ctx context.Context, c *campaigner) (wake time.Duration, again bool) {
	switch {
	case c.first:
		return -1, false // until the tracker knows something
	case !c.fresh:
		rctx, cancel := context.WithTimeout(ctx, e.callTimeout())
		read, err := e.tracker.read(rctx)
		cancel()
		switch {
		case errors.Is(err, store.ErrPermission):
			c.end(nil, store.Record{}, err)
		case ctx.Err() != nil:
			c.end(nil, store.Record{}, nil)
		case err != nil:
			e.log.Warn("cannot read the lease record; retrying", "err", err, "retry_in", e.cfg.RetryPeriod)
			return e.cfg.RetryPeriod, false
		default:
			c.o, c.fresh = read, true
		}
		return 0, true
	}
	// A hold that yields (after a requested release) has served once
	// another candidate has taken the lease.
	o := c.o
	if c.hold.yield && o.exists && o.rec.Held() && !heldBy(o.rec, e.cfg.Identity, e.instance) {
		c.hold = holdBack{}
	}
	now := e.clock.Now()
	st := e.standing(c.hold.until, c.retryAt)
	d := decide(o, now, st)
	e.report(d, st)
	if !d.take {
		c.races = 0
		if d.until.IsZero() {
			return -1, false
		}
		return max(0, d.until.Sub(now)), false
	}
	t, mine, err := e.take(ctx, o)
	raced := errors.Is(err, store.ErrConflict) || (o.exists && errors.Is(err, store.ErrNotFound))
	switch {
	case err == nil:
		c.end(t, mine, nil)
	case errors.Is(err, store.ErrPermission), errors.Is(err, errStoreContract):
		c.end(nil, store.Record{}, err)
	case ctx.Err() != nil:
		c.end(nil, store.Record{}, nil)
	case raced && c.races < maxRaces:
		// Somebody else wrote first: decide again on what the watch has
		// told since, or else on a new read.
		e.log.Debug("lost an acquisition race", "err", err)
		c.races++
		switch latest := e.tracker.latest(); {
		case latest.exists != o.exists || latest.rec.Version != o.rec.Version:
			c.o, c.waited = latest, false
		case e.tracker.following() && !c.waited:
			// The shared watch will tell the winner's write: wait for
			// it once rather than read (a stale or stalled watch is read
			// past the next time).
			c.waited = true
			return e.cfg.RetryPeriod, false
		default:
			c.fresh, c.waited = false, false
		}
	default:
		// Not a race (e.g. the Lease's namespace does not exist), or
		// racing without end: do not spin.
		e.log.Warn("cannot acquire the lease; retrying", "err", err, "retry_in", e.cfg.RetryPeriod)
		c.races = 0
		// Read before deciding again, unless the record is followed and
		// this is the first failure in a row.
		c.fresh = e.tracker.following() && !c.waited
		c.waited = c.fresh
		c.retryAt = e.clock.Now().Add(e.cfg.RetryPeriod)
		return e.cfg.RetryPeriod, false
	}
	return 0, true
}

// holdBack is the wait after a resignation: no acquisition before until
// (unless the lease is handed to this candidate). One that yields ends as
// soon as another candidate has taken the lease: it only lets another go
// first. That is the hold after an operator's release request; after any
// other resignation, which may repeat as soon as a term starts (a workload
// that fails at once), the hold lasts, so that two such candidates cannot
// pass the lease back and forth without pause.
type holdBack struct {
	until time.Time
	yield bool
}

// standing returns what the decision needs to know about this candidate.
func (e *Elector) standing(hold, retryAt time.Time) standing {
	e.mu.Lock()
	defer e.mu.Unlock()
	healthy, why := e.health.verdict()
	if healthy {
		why = ""
	}
	return standing{identity: e.cfg.Identity, instance: e.instance, ownLease: e.cfg.LeaseDuration,
		holdUntil: hold, retryAt: retryAt, withdrawn: e.withdrawn, unhealthy: why}
}

// report publishes a decision as the candidate's state and logs what it
// found wrong with the record, once per record version or instance.
func (e *Elector) report(d decision, st standing) {
	e.mu.Lock()
	switch {
	case d.malformed != nil && e.warnedAbout != d.about.Version:
		e.warnedAbout = d.about.Version
		e.log.Error("the lease record is malformed (hand-edited?); treating it as held for this candidate's own lease duration",
			"err", d.malformed, "lease_duration", e.cfg.LeaseDuration)
	case d.duplicate && e.warnedAbout != d.about.Instance:
		e.warnedAbout = d.about.Instance
		e.log.Warn("another process holds the lease under this same identity; waiting for its lease to expire",
			"other_instance", d.about.Instance)
	}
	e.mu.Unlock()
	e.setPhase(phase{state: d.state, reason: d.reason, until: d.until, campaign: &st})
}

// take tries to acquire the lease with a compare-and-set on the version in o
// (or a create when there is none), and starts a term on success.
func (e *Elector) take(ctx context.Context, o observation) (*Term, store.Record, error) {
	now := e.clock.Now()
	next := store.Record{Holder: e.cfg.Identity, Instance: e.instance, LeaseDuration: e.cfg.LeaseDuration,
		AcquireTime: now, RenewTime: now}
	// An acquisition may wait longer than other calls (in a process of
	// many elections, it may queue behind others' in its store), but not
	// so long that the term it starts, counted from before it was sent,
	// would be left less than a renew interval.
	cctx, cancel := context.WithTimeout(ctx, max(e.callTimeout(), e.cfg.RenewDeadline-e.cfg.RenewInterval))
	defer cancel()
	var got store.Record
	var err error
	sent := e.clock.Now()
	if o.exists {
		next.Transitions = o.rec.Transitions + 1
		next.Version = o.rec.Version
		got, err = e.store.Update(cctx, next)
	} else {
		if o.seen {
			// Re-created after a deletion: continue client-go's count.
			next.Transitions = o.lastTransitions + 1
		}
		got, err = e.store.Create(cctx, next)
	}
	if err != nil {
		if ctx.Err() != nil {
			// Stopped while the write was in flight: the server may have
			// applied it. Do not leave the others waiting a lease duration.
			e.releaseIfHeld(ctx)
		}
		return nil, store.Record{}, err
	}
	took := e.clock.Now().Sub(sent)
	if got.Revision <= 0 {
		// The write took effect: do not leave the others waiting.
		if err := e.release(ctx, got, "", 0); err != nil {
			e.log.Warn("could not release the lease; it will expire", "err", err)
		}
		return nil, store.Record{}, fmt.Errorf("%w: %s returned a record without a revision, which fencing tokens are made of (see store.Record.Revision)", errStoreContract, e.store)
	}
	e.tracker.observe(got, true)
	// The token is the revision of the winning write: every later write,
	// and so every later term's token, is larger, even across deletion.
	token := got.Revision
	e.cfg.Metrics.Acquired(token, took)
	t := newTerm(context.WithoutCancel(ctx), e.clock, e.cfg.Identity, token, sent, e.cfg.RenewDeadline)
	return t, got, nil
}

// errStoreContract marks a store that breaks the store.Store contract:
// retrying cannot cure it.
var errStoreContract = errors.New("store breaks its contract")

// releaseIfHeld reads the record after Run was stopped during an
// acquisition whose outcome is unknown, and releases it if this process
// holds it. It is best effort: a write still in flight on the server when
// the record is read escapes it and expires instead.
func (e *Elector) releaseIfHeld(ctx context.Context) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.callTimeout())
	defer cancel()
	o, err := e.tracker.read(rctx)
	if err != nil || !o.exists || !heldBy(o.rec, e.cfg.Identity, e.instance) {
		return
	}
	e.log.Info("stopped during an acquisition that took effect; releasing the lease")
	if err := e.release(ctx, o.rec, "", o.rec.Revision); err != nil {
		e.log.Warn("could not release the lease; it will expire", "err", err)
	}
}
