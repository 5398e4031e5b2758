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
// and campaigns again. The follower's side is in campaign.go, the leader's
// in lead.go, and the rule that decides when to take the lease in decide.go.
type Elector struct {
	cfg      Config
	store    store.Store
	clock    Clock
	instance string
	log      *slog.Logger
	tracker  *tracker
	health   *healthGate // nil without Config.Health
	hub      hub
	withdraw chan struct{} // closed by Withdraw

	mu          sync.Mutex
	running     bool
	phase       phase
	holder      string    // last holder reported to Metrics and the log
	holderTerm  int64     // last term of the holder reported to Metrics
	stuckSince  time.Time // a Lead callback overran its grace since then
	failed      error     // why Run returned, if it failed
	warnedAbout string    // record version or instance last warned about
	withdrawn   bool
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
	e := &Elector{cfg: cfg, store: cfg.Store, clock: cfg.Clock, instance: instance, log: log,
		tracker:  newTracker(cfg.Store, cfg.Clock, cfg.RetryPeriod, log, cfg.Metrics),
		health:   newHealthGate(cfg.Health, cfg.Clock),
		withdraw: make(chan struct{}),
		phase:    phase{state: StateStarting, reason: "not running"}}
	e.hub.last = statusOf(cfg.Store.String(), cfg.Identity, observation{}, e.phase, cfg.Clock.Now())
	e.tracker.onChange = e.refresh // Status and Metrics follow each observation
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
// of leader, term or state (not every renewal). A slow reader misses
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

// Withdraw takes this candidate out of the election for good: a term in
// progress ends (ErrWithdrawn) and the lease is released once its work has
// returned, as after Resign, and the candidate never campaigns again. Run
// goes on following the election, so that Status stays current, until its
// context ends. A sidecar whose pod is being deleted withdraws, so that the
// hand-over does not wait for the pod's shutdown. Withdraw cannot be undone;
// calling it again does nothing.
func (e *Elector) Withdraw() {
	e.mu.Lock()
	already := e.withdrawn
	e.withdrawn = true
	t := e.phase.term
	leading := e.phase.state == StateLeading
	e.mu.Unlock()
	if already {
		return
	}
	e.log.Info("withdrawing from the election: no more campaigns")
	close(e.withdraw)
	if t != nil && leading {
		t.end(ErrWithdrawn)
	}
}

// currentTerm returns the term in progress, or nil.
func (e *Elector) currentTerm() *Term {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.phase.state != StateLeading {
		return nil
	}
	return e.phase.term
}

// Check reports whether the elector is healthy: nil unless Run failed, a
// leader's deadline passed without its term ending, or a Lead callback is
// still running after its term ended plus Grace (its work may overlap the
// next leader's).
func (e *Elector) Check() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock.Now()
	switch {
	case e.failed != nil:
		return e.failed
	case !e.stuckSince.IsZero():
		return fmt.Errorf("the leader's work has not stopped %v after its term ended plus grace", now.Sub(e.stuckSince).Round(time.Millisecond))
	case e.phase.state == StateLeading && now.After(e.phase.term.Deadline().Add(e.cfg.Grace)):
		return fmt.Errorf("the leader has not renewed since %v", e.phase.term.Deadline().Add(-e.cfg.RenewDeadline))
	}
	return nil
}

// Run campaigns until ctx ends. Each time this candidate wins, it starts a
// Term and calls Config.Lead; when the term ends it waits for Lead to
// return, releases the lease if it still holds it, and campaigns again.
// Once ctx ends, Run ends the current term the same way and returns nil.
// It returns an error, after ending any term, only for what retrying cannot
// cure: a permission the store refuses, or a store that breaks its
// contract. Run may be called once.
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
	defer e.tracker.wait()
	defer cancel()

	fatal := make(chan error, 1)
	e.tracker.start(ctx, e.callTimeout(), fatal)
	e.refresh()
	if e.health != nil {
		e.cfg.Metrics.Healthy(false, "its health check has not passed yet")
		wg.Go(func() { e.health.run(ctx, e.healthChanged) })
	}

	var hold holdBack // after a resignation
	for {
		t, mine, err := e.campaign(ctx, fatal, hold)
		if err == nil && t != nil {
			var r resignation
			r, err = e.lead(ctx, fatal, t, mine)
			hold = holdBack{}
			if r.resigned {
				// Let every other candidate, even one that polls, go first.
				hold = holdBack{until: e.clock.Now().Add(e.cfg.LeaseDuration), yield: r.requested}
			}
		}
		if err != nil {
			e.mu.Lock()
			e.failed = err
			e.mu.Unlock()
			e.setPhase(phase{state: StateStopped, reason: err.Error()})
			e.log.Error("election stopped", "err", err)
			return err
		}
		if ctx.Err() != nil {
			e.setPhase(phase{state: StateStopped, reason: "Run's context ended"})
			return nil
		}
	}
}

// healthChanged reports a change of the health verdict.
func (e *Elector) healthChanged(healthy bool, why string) {
	if healthy {
		e.log.Info("the workload is healthy again: campaigning")
	} else {
		e.log.Warn("the workload is unhealthy: not campaigning, and stepping down if leading", "reason", why)
	}
	e.cfg.Metrics.Healthy(healthy, why)
}

// callTimeout bounds each request to the store.
func (e *Elector) callTimeout() time.Duration { return e.cfg.RenewDeadline / 2 }

// setPhase records where the loops stand and publishes the status.
func (e *Elector) setPhase(p phase) {
	e.mu.Lock()
	was := e.phase.state
	e.phase = p
	e.mu.Unlock()
	if (was == StateLeading) != (p.state == StateLeading) {
		e.cfg.Metrics.Leading(p.state == StateLeading)
	}
	e.refresh()
}

// refresh publishes the status derived from the latest observation.
func (e *Elector) refresh() {
	e.mu.Lock()
	defer e.mu.Unlock()
	o := e.tracker.latest()
	s := statusOf(e.store.String(), e.cfg.Identity, o, e.phase, e.clock.Now())
	if s.Known && (s.Leader != e.holder || s.Term != e.holderTerm) {
		if s.Leader != e.holder && !s.IsLeader {
			switch {
			case s.Leader == "" && !o.exists && o.gone.Held():
				e.log.Warn("the lease record was deleted while held; waiting out its holder's lease", "holder", o.gone.Holder)
			case s.Leader == "" && !o.exists:
				e.log.Info("the lease record does not exist")
			case s.Leader == "":
				e.log.Info("the lease is free")
			case s.Leader == e.cfg.Identity:
			default:
				e.log.Info("following", "leader", s.Leader, "term", s.Term)
			}
		}
		e.holder, e.holderTerm = s.Leader, s.Term
		e.cfg.Metrics.HolderChanged(s.Leader, s.Term)
	}
	e.hub.publish(s)
}
