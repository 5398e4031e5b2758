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
	grace  time.Duration
	status func() election.Status // the elector's: what the application is told
	log    *slog.Logger
	// AckPath is the control endpoint's path that acknowledges, as the log
	// names it; set it before the first term. Default /v1/stepped-down.
	AckPath string

	mu    sync.Mutex
	acked map[int64]*ack // by token, for terms that ended
}

type ack struct {
	done chan struct{}
	once sync.Once
}

// NewAppGrace returns the duty. grace must be the elector's Grace; status
// is the elector's Status, by which acknowledgements are judged.
func NewAppGrace(grace time.Duration, status func() election.Status, log *slog.Logger) *AppGrace {
	if log == nil {
		log = slog.Default()
	}
	return &AppGrace{grace: grace, status: status, log: log, acked: map[int64]*ack{}, AckPath: "/v1/stepped-down"}
}

// ackOf returns the acknowledgement of the term with token, made on first
// use.
func (a *AppGrace) ackOf(token int64) *ack {
	a.mu.Lock()
	defer a.mu.Unlock()
	k, ok := a.acked[token]
	if !ok {
		k = &ack{done: make(chan struct{})}
		a.acked[token] = k
	}
	return k
}

// Lead implements Duty: it waits for the term to end, then for the grace or
// the application's acknowledgement.
func (a *AppGrace) Lead(term *election.Term) {
	<-term.Done()
	token := term.Token()
	k := a.ackOf(token)
	defer func() {
		a.mu.Lock()
		for t := range a.acked {
			if t <= token { // this term's, and any an older one left
				delete(a.acked, t)
			}
		}
		a.mu.Unlock()
	}()
	a.log.Info("the term ended: the application has the grace to stop acting before the lease is released (POST "+a.AckPath+" on the control endpoint releases it sooner)",
		"token", token, "reason", term.Err(), "grace", a.grace)
	timer := time.NewTimer(a.grace)
	defer timer.Stop()
	select {
	case <-timer.C:
		a.log.Info("the application's grace is over", "token", token)
	case <-k.done:
	}
}

// Ack records that the application has stopped acting for the term whose
// token is term (0: whichever step-down is under way), so that the lease is
// released at once. It accepts only while the elector says it steps down,
// which is what the application was told: it can shorten a step-down, never
// start one. It returns ErrNoStepDown, or an error naming the term under way
// when another term is named.
func (a *AppGrace) Ack(term int64) error {
	s := a.status()
	switch {
	case s.State != election.StateSteppingDown || s.Token == 0:
		return ErrNoStepDown
	case term != 0 && term != s.Token:
		return fmt.Errorf("the step-down under way is of term %d, not %d", s.Token, term)
	}
	k := a.ackOf(s.Token)
	k.once.Do(func() { close(k.done) })
	return nil
}
