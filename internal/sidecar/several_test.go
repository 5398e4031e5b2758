package sidecar

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/memory"
)

// runFunc is an Elector whose Run is a function: here, one that fails.
type runFunc func(ctx context.Context) error

func (f runFunc) Run(ctx context.Context) error { return f(ctx) }

// leaseOf starts a real elector on its own lease and returns it with a
// channel that receives each of its terms.
func leaseOf(t *testing.T, name string) (*memory.Store, *election.Elector, <-chan *election.Term) {
	t.Helper()
	st := memory.New(name)
	terms := make(chan *election.Term, 4)
	e := newElector(t, st, func(term *election.Term) { terms <- term; <-term.Done() })
	return st, e, terms
}

// Run of several electors returns once each has returned, having released
// its lease.
func TestAllRunsEveryElectorUntilTheEnd(t *testing.T) {
	sa, a, ta := leaseOf(t, "a")
	sb, b, tb := leaseOf(t, "b")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- All(Named{"a", a}, Named{"b", b}).Run(ctx) }()
	within(t, ta, "a's term")
	within(t, tb, "b's term")
	cancel()
	if err := within(t, done, "Run to return"); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, st := range []*memory.Store{sa, sb} {
		rec, err := st.Get(context.Background())
		if err != nil || rec.Held() {
			t.Errorf("%s after Run: %+v, %v; want it released", st, rec, err)
		}
	}
}

// When one elector fails, the others are stopped (their terms end, their
// leases are released) and Run returns the failure, naming its
// lease and keeping its cause.
func TestAllStopsTheOthersWhenOneFails(t *testing.T) {
	sa, a, ta := leaseOf(t, "a")
	fail := make(chan struct{})
	broken := runFunc(func(ctx context.Context) error {
		select {
		case <-fail:
			return store.ErrPermission
		case <-ctx.Done():
			return nil
		}
	})
	done := make(chan error, 1)
	go func() { done <- All(Named{"a", a}, Named{"b", broken}).Run(context.Background()) }()
	term := within(t, ta, "a's term")
	close(fail)
	err := within(t, done, "Run to return")
	if !errors.Is(err, store.ErrPermission) || !strings.Contains(err.Error(), "lease b: ") {
		t.Errorf("Run = %v; want the failure of lease b, wrapping its cause", err)
	}
	if cause := term.Err(); !errors.Is(cause, election.ErrStopped) {
		t.Errorf("a's term ended with %v; want it stopped", cause)
	}
	if rec, err := sa.Get(context.Background()); err != nil || rec.Held() {
		t.Errorf("a after Run: %+v, %v; want it released", rec, err)
	}
}
