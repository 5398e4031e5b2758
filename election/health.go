package election

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Defaults of a Health check.
const (
	DefaultHealthPeriod           = 2 * time.Second
	DefaultHealthTimeout          = time.Second
	DefaultHealthFailureThreshold = 3
	DefaultHealthSuccessThreshold = 2
)

// ErrUnhealthy ends a term whose work failed its health check (Config.Health)
// FailureThreshold times in a row; Term.Err wraps it with the last failure.
var ErrUnhealthy = errors.New("the workload is unhealthy")

// Health gates candidacy on the health of the work: a candidate campaigns
// only while its check passes, and a leader whose check fails
// FailureThreshold times in a row steps down (its term ends with
// ErrUnhealthy: the work stops, gets its grace, and the lease is released)
// and holds back until the check passes SuccessThreshold times in a row. A
// broken leader never keeps the lease. A check that does not answer within
// Timeout has failed. A candidate starts unhealthy: it campaigns only once
// its check has passed SuccessThreshold times.
type Health struct {
	// Check reports the work's health: nil when healthy, otherwise why not.
	// It must return soon after ctx ends. Required.
	Check func(ctx context.Context) error
	// Period is the interval between checks. Default 2s.
	Period time.Duration
	// Timeout bounds each check. Default 1s.
	Timeout time.Duration
	// FailureThreshold is how many failures in a row make a healthy
	// candidate unhealthy. Default 3.
	FailureThreshold int
	// SuccessThreshold is how many passes in a row make an unhealthy
	// candidate healthy again. Above 1 it keeps a flapping check from making
	// leadership ping-pong. Default 2.
	SuccessThreshold int
	// OnlyWhileLeading checks only during terms, and lets followers campaign
	// whatever they would report: for work that runs only while leading
	// (the sidecar's exec mode), a follower has nothing to check.
	OnlyWhileLeading bool
}

func (h Health) withDefaults() Health {
	if h.Period == 0 {
		h.Period = DefaultHealthPeriod
	}
	if h.Timeout == 0 {
		h.Timeout = DefaultHealthTimeout
	}
	if h.FailureThreshold == 0 {
		h.FailureThreshold = DefaultHealthFailureThreshold
	}
	if h.SuccessThreshold == 0 {
		h.SuccessThreshold = DefaultHealthSuccessThreshold
	}
	return h
}

func (h Health) validate() error {
	switch {
	case h.Check == nil:
		return errors.New("Health.Check is required")
	case h.Period < 0, h.Timeout < 0:
		return fmt.Errorf("Health.Period and Health.Timeout must be positive, got %v and %v", h.Period, h.Timeout)
	case h.FailureThreshold < 0, h.SuccessThreshold < 0:
		return fmt.Errorf("Health thresholds must be positive, got failure %d and success %d", h.FailureThreshold, h.SuccessThreshold)
	case h.Timeout > h.Period:
		return fmt.Errorf("Health.Timeout (%v) must not exceed Health.Period (%v)", h.Timeout, h.Period)
	}
	return nil
}

// healthGate runs a Health check and keeps its verdict. A nil *healthGate
// (no check configured) is always healthy.
type healthGate struct {
	cfg   Health
	clock Clock

	mu       sync.Mutex
	healthy  bool
	reason   string // why not healthy: the last failure, or "not yet checked"
	passes   int    // in a row
	failures int    // in a row
	leading  bool
	changed  chan struct{} // closed and replaced at each change of verdict
}

func newHealthGate(h *Health, clock Clock) *healthGate {
	if h == nil {
		return nil
	}
	cfg := h.withDefaults()
	return &healthGate{cfg: cfg, clock: clock, reason: "its health check has not passed yet",
		changed: make(chan struct{})}
}

// verdict returns whether the candidate may campaign, and why not.
func (g *healthGate) verdict() (ok bool, why string) {
	if g == nil {
		return true, ""
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cfg.OnlyWhileLeading && !g.leading {
		return true, ""
	}
	return g.healthy, g.reason
}

// watch returns a channel that is closed at the next change of verdict.
func (g *healthGate) watch() <-chan struct{} {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.changed
}

// setLeading tells the gate whether a term is in progress. At a term's start
// an OnlyWhileLeading gate starts healthy (the work has just started) and
// counts failures from there.
func (g *healthGate) setLeading(leading bool) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.leading = leading
	if g.cfg.OnlyWhileLeading && leading {
		g.healthy, g.reason, g.failures, g.passes = true, "", 0, 0
	}
}

// run checks every Period until ctx ends, and reports each change of
// verdict through report (healthy, why not).
func (g *healthGate) run(ctx context.Context, report func(healthy bool, why string)) {
	if g == nil {
		return
	}
	timer := g.clock.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C():
		}
		g.mu.Lock()
		skip := g.cfg.OnlyWhileLeading && !g.leading
		g.mu.Unlock()
		if !skip {
			cctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
			err := g.cfg.Check(cctx)
			if err == nil && cctx.Err() != nil {
				err = cctx.Err()
			}
			if cctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
				err = fmt.Errorf("no answer within %v: %w", g.cfg.Timeout, err)
			}
			cancel()
			if ctx.Err() != nil {
				return
			}
			if changed, healthy, why := g.record(err); changed {
				report(healthy, why)
			}
		}
		timer.Reset(g.cfg.Period)
	}
}

// record counts one check's outcome and reports whether the verdict changed.
func (g *healthGate) record(err error) (changed, healthy bool, why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil {
		g.passes, g.failures = g.passes+1, 0
		if !g.healthy && g.passes >= g.cfg.SuccessThreshold {
			g.healthy, g.reason = true, ""
			changed = true
		}
	} else {
		g.failures, g.passes = g.failures+1, 0
		if g.healthy && g.failures >= g.cfg.FailureThreshold {
			g.healthy = false
			changed = true
		}
		if !g.healthy {
			g.reason = fmt.Sprintf("its health check fails: %v", err)
		}
	}
	if changed {
		close(g.changed)
		g.changed = make(chan struct{})
	}
	return changed, g.healthy, g.reason
}
