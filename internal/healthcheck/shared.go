package healthcheck

import (
	"context"
	"sync"
	"time"
)

// Shared returns check as one gate for several candidates of one process
// (run --lease a,b,c: one per lease), each of which calls it every period:
// a call while a check is under way waits for that check's answer, and a
// call within maxAge of an answer gets that answer. With maxAge at most
// half the period no candidate is given the same answer twice, and the
// workload is checked about once per period however many leases the
// process holds; every candidate judges the same answers, so a broken
// workload leads none of them.
//
// The check runs under a context of its own, bounded by timeout, so that a
// caller that goes away (its context ends) returns at once without failing
// the answer the others wait for.
func Shared(check func(ctx context.Context) error, maxAge, timeout time.Duration) func(ctx context.Context) error {
	s := &shared{check: check, maxAge: maxAge, timeout: timeout, now: time.Now}
	return s.call
}

type shared struct {
	check   func(ctx context.Context) error
	maxAge  time.Duration
	timeout time.Duration
	now     func() time.Time // time.Now; tests move it

	mu   sync.Mutex
	last *answer // the newest check, under way or answered; nil before the first
}

// answer is one run of the check.
type answer struct {
	done chan struct{} // closed once err and at are set
	err  error
	at   time.Time
}

func (s *shared) call(ctx context.Context) error {
	s.mu.Lock()
	a := s.last
	if a == nil || (answered(a) && s.now().Sub(a.at) >= s.maxAge) {
		a = &answer{done: make(chan struct{})}
		s.last = a
		go s.run(a)
	}
	s.mu.Unlock()
	select {
	case <-a.done:
		return a.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run runs the check once and records its answer in a.
func (s *shared) run(a *answer) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	err := s.check(ctx)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	s.mu.Lock()
	a.err, a.at = err, s.now()
	s.mu.Unlock()
	close(a.done)
}

// answered reports whether a's check has answered. Called with mu.
func answered(a *answer) bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}
