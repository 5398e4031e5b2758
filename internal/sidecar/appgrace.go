package sidecar

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/incumbent-io/incumbent/election"
)

// ErrNoStepDown is returned by AppGrace.Ack when no step-down is under way:
// an acknowledgement only shortens a step-down already decided.
var ErrNoStepDown = errors.New("no step-down is under way: an acknowledgement only shortens one already decided; to step down, use `incumbent release` (or the library's Resign)")

// AppGrace is the duty of status-API mode. The application beside the
// sidecar acts on what /v1/status and /v1/watch say, and the sidecar cannot
// see it stop. So when a term ends, for whatever reason (a release, a
// transfer, SIGTERM, a withdrawal, the renew deadline), Lead returns, and
// the lease is released, only once Grace has passed since the end of the
// term, or earlier once the application acknowledges that it has stopped
// acting (Ack). Grace is the elector's own: the timing rule covers it.
type AppGrace struct {
	grace time.Duration
	log   *slog.Logger

	mu      sync.Mutex
	current *stepDown // the step-down under way, if any
}

type stepDown struct {
	token int64
	ack   chan struct{}
	once  sync.Once
}

// NewAppGrace returns the duty; grace must be the elector's Grace.
func NewAppGrace(grace time.Duration, log *slog.Logger) *AppGrace {
	if log == nil {
		log = slog.Default()
	}
	return &AppGrace{grace: grace, log: log}
}

// Lead implements Duty: it waits for the term to end, then for the grace or
// the application's acknowledgement.
func (a *AppGrace) Lead(term *election.Term) {
	<-term.Done()
	s := &stepDown{token: term.Token(), ack: make(chan struct{})}
	a.mu.Lock()
	a.current = s
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.current = nil
		a.mu.Unlock()
	}()
	a.log.Info("the term ended: the application has the grace to stop acting before the lease is released (POST /v1/stepped-down on the control endpoint releases it sooner)",
		"token", s.token, "reason", term.Err(), "grace", a.grace)
	timer := time.NewTimer(a.grace)
	defer timer.Stop()
	select {
	case <-timer.C:
		a.log.Info("the application's grace is over", "token", s.token)
	case <-s.ack:
	}
}

// Ack records that the application has stopped acting for the term whose
// token is term (0: whichever step-down is under way), so that the lease is
// released at once. It returns ErrNoStepDown, or an error naming the term
// under way when another term is named.
func (a *AppGrace) Ack(term int64) error {
	a.mu.Lock()
	s := a.current
	a.mu.Unlock()
	switch {
	case s == nil:
		return ErrNoStepDown
	case term != 0 && term != s.token:
		return fmt.Errorf("the step-down under way is of term %d, not %d", s.token, term)
	}
	s.once.Do(func() { close(s.ack) })
	return nil
}
