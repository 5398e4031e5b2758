package election

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/incumbent-io/incumbent/store"
)

// ErrNotLeader is returned by Resign and Transfer when no term is active.
var ErrNotLeader = errors.New("not the leader")

// Elector campaigns in one election on behalf of one candidate, for as long
// as Run's context lasts. It is not one-shot: after a term ends it follows
// and campaigns again.
type Elector struct {
	cfg      Config
	store    store.Store
	instance string
	log      *slog.Logger
	tracker  *tracker
	hub      hub

	mu          sync.Mutex
	running     bool
	term        *Term
	holder      string    // last holder reported to Metrics and the log
	holderTerm  int64     // last term of the holder reported to Metrics
	stuckSince  time.Time // a Lead callback overran its grace since then
	failed      error     // why Run returned, if it failed
	warnedAbout string    // record version or instance last warned about
}

// New validates cfg and returns an Elector ready to Run.
func New(cfg Config) (*Elector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	instance, err := newInstance()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With("lease", cfg.Store.String(), "identity", cfg.Identity, "instance", instance)
	e := &Elector{cfg: cfg, store: cfg.Store, instance: instance, log: log,
		tracker: newTracker(cfg.Store, cfg.RetryPeriod, log, cfg.Metrics)}
	e.hub.last = statusOf(cfg.Store.String(), cfg.Identity, observation{}, nil)
	return e, nil
}

// newInstance returns a random marker for this process.
func newInstance() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate instance marker: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Instance is the random marker that tells this process apart from another
// one running with the same identity.
func (e *Elector) Instance() string { return e.instance }

// Status returns what the elector knows now.
func (e *Elector) Status() Status { return e.hub.current() }

// Subscribe returns a channel holding the current status, then each change
// of leader, term or leadership (not every renewal). A slow reader misses
// intermediate statuses, never the latest. Call cancel when done.
func (e *Elector) Subscribe() (statuses <-chan Status, cancel func()) { return e.hub.subscribe() }

// Resign ends the current term, if any: see Term.Resign.
func (e *Elector) Resign() error {
	t := e.currentTerm()
	if t == nil {
		return ErrNotLeader
	}
	t.Resign()
	return nil
}

// Transfer ends the current term and hands the lease to identity: see
// Term.TransferTo. The target must be another identity.
func (e *Elector) Transfer(identity string) error {
	if identity == "" || identity == e.cfg.Identity {
		return fmt.Errorf("transfer: the target must be another candidate's identity, got %q", identity)
	}
	t := e.currentTerm()
	if t == nil {
		return ErrNotLeader
	}
	t.TransferTo(identity)
	return nil
}

func (e *Elector) currentTerm() *Term {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.term
}

// Check reports whether the elector is healthy: nil unless Run failed, a
// leader's deadline passed without its term ending, or a Lead callback is
// still running after its term ended plus Grace (its work may overlap the
// next leader's).
func (e *Elector) Check() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.failed != nil:
		return e.failed
	case !e.stuckSince.IsZero():
		return fmt.Errorf("the leader's work has not stopped %v after its term ended plus grace", time.Since(e.stuckSince).Round(time.Millisecond))
	case e.term != nil && time.Now().After(e.term.Deadline().Add(e.cfg.Grace)):
		return fmt.Errorf("the leader has not renewed since %v", e.term.Deadline().Add(-e.cfg.RenewDeadline))
	}
	return nil
}

// Run campaigns until ctx ends. Each time this candidate wins, it starts a
// Term and calls Config.Lead; when the term ends it waits for Lead to
// return, releases the lease if it still holds it, and campaigns again.
// Once ctx ends, Run ends the current term the same way and returns nil.
// It returns an error, after ending any term, only for what retrying cannot
// cure: a permission the store refuses. Run may be called once.
func (e *Elector) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.running {
		e.mu.Unlock()
		return errors.New("election: Run called twice on one Elector")
	}
	e.running = true
	e.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	fatal := make(chan error, 1)
	wg.Go(func() {
		if err := e.tracker.run(ctx, e.callTimeout()); err != nil {
			fatal <- err
		}
	})
	wg.Go(func() { e.publish(ctx) })

	var hold time.Time
	for {
		t, mine, err := e.campaign(ctx, fatal, hold)
		if err == nil && t != nil {
			var resigned bool
			resigned, err = e.lead(ctx, t, mine)
			hold = time.Time{}
			if resigned {
				// Let every other candidate, even one that polls, go first.
				hold = time.Now().Add(e.cfg.LeaseDuration)
			}
		}
		if err != nil {
			e.mu.Lock()
			e.failed = err
			e.mu.Unlock()
			e.log.Error("election stopped", "err", err)
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// callTimeout bounds each request to the store.
func (e *Elector) callTimeout() time.Duration { return e.cfg.RenewDeadline / 2 }

// publish keeps Status and Metrics current until ctx ends.
func (e *Elector) publish(ctx context.Context) {
	changes, stop := e.tracker.changed()
	defer stop()
	for {
		e.refresh()
		select {
		case <-ctx.Done():
			return
		case <-changes:
		}
	}
}

// refresh publishes the status derived from the latest observation.
func (e *Elector) refresh() {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := statusOf(e.store.String(), e.cfg.Identity, e.tracker.latest(), e.term)
	if s.Known && (s.Leader != e.holder || s.Term != e.holderTerm) {
		if s.Leader != e.holder && e.term == nil {
			switch s.Leader {
			case "":
				e.log.Info("the lease is free")
			case e.cfg.Identity:
			default:
				e.log.Info("following", "leader", s.Leader, "term", s.Term)
			}
		}
		e.holder, e.holderTerm = s.Leader, s.Term
		e.cfg.Metrics.HolderChanged(s.Leader, s.Term)
	}
	e.hub.publish(s)
}

func (e *Elector) setTerm(t *Term) {
	e.mu.Lock()
	e.term = t
	e.mu.Unlock()
	e.cfg.Metrics.Leading(t != nil)
	e.refresh()
}

// campaign waits until this candidate may take the lease and wins it, or
// until ctx ends (nil term, nil error). No acquisition is attempted before
// hold.
func (e *Elector) campaign(ctx context.Context, fatal <-chan error, hold time.Time) (*Term, store.Record, error) {
	changes, stop := e.tracker.changed()
	defer stop()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C

	o := e.tracker.latest()
	fresh := o.known      // false: read before judging
	races := 0            // acquisition races lost in a row
	var retryAt time.Time // no acquisition before, after a failed one
	for {
		if !fresh {
			rctx, cancel := context.WithTimeout(ctx, e.callTimeout())
			var err error
			o, err = e.tracker.read(rctx)
			cancel()
			switch {
			case errors.Is(err, store.ErrPermission):
				return nil, store.Record{}, err
			case ctx.Err() != nil:
				return nil, store.Record{}, nil
			case err != nil:
				e.log.Warn("cannot read the lease record; retrying", "err", err)
				timer.Reset(e.cfg.RetryPeriod)
				goto wait
			}
			fresh = true
		}
		{
			now := time.Now()
			take, until := e.judge(o, now)
			handedToUs := o.exists && !o.rec.Held() && o.rec.HandoffTo == e.cfg.Identity
			if take && now.Before(hold) && !handedToUs {
				take, until = false, hold
			}
			if take && now.Before(retryAt) {
				take, until = false, retryAt
			}
			if take {
				t, mine, err := e.take(ctx, o)
				raced := errors.Is(err, store.ErrConflict) || (o.exists && errors.Is(err, store.ErrNotFound))
				switch {
				case err == nil:
					return t, mine, nil
				case errors.Is(err, store.ErrPermission), errors.Is(err, errStoreContract):
					return nil, store.Record{}, err
				case raced && races < 3:
					// Somebody else wrote first: read and decide again.
					e.log.Debug("lost an acquisition race", "err", err)
					races++
					fresh = false
					continue
				case ctx.Err() != nil:
					return nil, store.Record{}, nil
				default:
					// Not a race (e.g. the Lease's namespace does not
					// exist), or racing without end: do not spin.
					e.log.Warn("cannot acquire the lease; retrying", "err", err, "retry_in", e.cfg.RetryPeriod)
					races = 0
					fresh = false
					retryAt = time.Now().Add(e.cfg.RetryPeriod)
					timer.Reset(e.cfg.RetryPeriod)
				}
			} else {
				races = 0
				timer.Reset(time.Until(until))
			}
		}
	wait:
		select {
		case <-ctx.Done():
			return nil, store.Record{}, nil
		case err := <-fatal:
			return nil, store.Record{}, err
		case <-changes:
			if fresh {
				o = e.tracker.latest()
			}
		case <-timer.C:
			if fresh {
				o = e.tracker.latest()
			}
		}
	}
}

// judge decides, from an observation and the local time, whether this
// candidate may try to take the lease now, and if not until when to wait
// (unless the record changes first).
func (e *Elector) judge(o observation, now time.Time) (take bool, until time.Time) {
	rec := o.rec
	switch {
	case !o.exists:
		// A record deleted under a live holder is waited out as if the
		// holder still held it, counted from when the deletion was seen (the
		// holder may have renewed after the last version seen here, never
		// after the deletion); one never seen held is taken at once.
		if o.gone.Held() {
			if until := o.at.Add(e.leaseOf(o.gone)); now.Before(until) {
				return false, until
			}
		}
		return true, time.Time{}
	case heldBy(rec, e.cfg.Identity, e.instance):
		// Ours from an earlier term (or a renewal whose answer was lost):
		// nobody else can have it while it still says so.
		return true, time.Time{}
	case !rec.Held():
		if rec.HandoffTo != "" && rec.HandoffTo != e.cfg.Identity {
			if until := o.at.Add(e.leaseOf(rec)); now.Before(until) {
				return false, until
			}
		}
		return true, time.Time{}
	}
	if rec.Holder == e.cfg.Identity && e.warnedAbout != rec.Instance {
		e.warnedAbout = rec.Instance
		e.log.Warn("another process holds the lease under this same identity; waiting for its lease to expire",
			"other_instance", rec.Instance)
	}
	expiry := o.at.Add(e.leaseOf(rec))
	if now.Before(expiry) {
		return false, expiry
	}
	return true, time.Time{}
}

// leaseOf returns how long to wait out the holder of rec. A malformed record
// is reported and waited out for this candidate's own LeaseDuration.
func (e *Elector) leaseOf(rec store.Record) time.Duration {
	if err := rec.Validate(); err != nil {
		if e.warnedAbout != rec.Version {
			e.warnedAbout = rec.Version
			e.log.Error("the lease record is malformed (hand-edited?); treating it as held for this candidate's own lease duration",
				"err", err, "lease_duration", e.cfg.LeaseDuration)
		}
		return e.cfg.LeaseDuration
	}
	return rec.LeaseDuration
}

// take tries to acquire the lease with a compare-and-set on the version in o
// (or a create when there is none), and starts a term on success.
func (e *Elector) take(ctx context.Context, o observation) (*Term, store.Record, error) {
	now := time.Now()
	next := store.Record{Holder: e.cfg.Identity, Instance: e.instance, LeaseDuration: e.cfg.LeaseDuration,
		AcquireTime: now, RenewTime: now}
	cctx, cancel := context.WithTimeout(ctx, e.callTimeout())
	defer cancel()
	var got store.Record
	var err error
	sent := time.Now()
	if o.exists {
		next.Transitions = o.rec.Transitions + 1
		next.Version = o.rec.Version
		got, err = e.store.Update(cctx, next)
	} else {
		if o.seen {
			// Re-created after a deletion: continue the token sequence.
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
	took := time.Since(sent)
	if got.Revision <= 0 {
		return nil, store.Record{}, fmt.Errorf("%w: %s returned a record without a revision, which fencing tokens are made of (see store.Record.Revision)", errStoreContract, e.store)
	}
	e.tracker.observe(got, true)
	// The token is the revision of the winning write: every later write,
	// and so every later term's token, is larger, even across deletion.
	token := got.Revision
	e.cfg.Metrics.Acquired(token, took)
	t := newTerm(context.WithoutCancel(ctx), e.cfg.Identity, token, sent, e.cfg.RenewDeadline)
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

// lead runs one term: it starts Lead, renews every RetryPeriod, ends the
// term on loss, deadline, request or stop, waits for Lead to return, and
// releases the lease unless it was lost. resigned reports a voluntary end
// after which the candidate should let others go first.
func (e *Elector) lead(ctx context.Context, t *Term, mine store.Record) (resigned bool, fatal error) {
	e.setTerm(t)
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
	renew := time.NewTimer(e.cfg.RetryPeriod)
	defer renew.Stop()
	reread := false
	checkRequests := func(rec store.Record) {
		switch {
		case rec.TransferTo != "":
			t.TransferTo(rec.TransferTo)
		case rec.ReleaseRequested:
			t.Resign()
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
		case <-changes:
			if o := e.tracker.latest(); o.exists && heldBy(o.rec, e.cfg.Identity, e.instance) {
				checkRequests(o.rec)
			} else {
				renew.Reset(0) // looks taken or gone: a renewal confirms or refutes it
			}
		case <-renew.C:
			began := time.Now()
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
			// interval and eat into the renew deadline.
			renew.Reset(max(0, e.cfg.RetryPeriod-time.Since(began)))
		}
	}
	renew.Stop()
	cause := t.Err()
	e.setTerm(nil)
	e.log.Info("stopped leading", "token", t.Token(), "reason", cause)

	grace := time.NewTimer(e.cfg.Grace)
	select {
	case <-workDone:
		grace.Stop()
	case <-grace.C:
		e.log.Error("the leader's work did not stop within the grace period; another candidate may take the lease while it still runs",
			"grace", e.cfg.Grace, "token", t.Token())
		e.mu.Lock()
		e.stuckSince = time.Now()
		e.mu.Unlock()
		<-workDone
		e.mu.Lock()
		e.stuckSince = time.Time{}
		e.mu.Unlock()
	}

	if errors.Is(cause, ErrLeaseLost) || fatal != nil {
		return false, fatal
	}
	var handoff string
	var te *TransferError
	if errors.As(cause, &te) {
		handoff = te.To
	}
	if err := e.release(ctx, mine, handoff, t.Token()); err != nil {
		e.log.Warn("could not release the lease; it will expire", "err", err)
	}
	return errors.Is(cause, ErrResigned), nil
}

// renew extends the lease once. The term's deadline moves only on success,
// counted from the moment the write was sent. An error other than
// ErrLeaseLost leaves the outcome unknown: the caller must pass reread.
func (e *Elector) renew(ctx context.Context, t *Term, mine store.Record, reread bool) (store.Record, error) {
	timeout := min(time.Until(t.Deadline()), e.callTimeout())
	if timeout <= 0 {
		return mine, ErrRenewDeadline
	}
	// The renewal ends with the term too: a voluntary step-down must not
	// wait for a slow renewal (its outcome is then unknown, which the
	// release handles by re-reading).
	cctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	defer context.AfterFunc(ctx, cancel)()
	for attempt := 0; attempt < 3; attempt++ {
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
		next.RenewTime = time.Now()
		next.LeaseDuration = e.cfg.LeaseDuration
		next.Term = t.Token() // recorded for followers and observers to report
		sent := time.Now()
		var got store.Record
		var err error
		if exists {
			got, err = e.store.Update(cctx, next)
		} else {
			// Deleted under us: restore our record, same token. Whoever
			// re-creates it first wins.
			got, err = e.store.Create(cctx, next)
		}
		e.cfg.Metrics.Renewed(time.Since(sent), err)
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
	now := time.Now()
	next := store.Record{LeaseDuration: time.Second, AcquireTime: now, RenewTime: now,
		Transitions: mine.Transitions, HandoffTo: handoff, Version: mine.Version}
	if handoff != "" {
		next.LeaseDuration = e.cfg.LeaseDuration
	}
	for attempt := 0; attempt < 3; attempt++ {
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
