package election_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store"
)

// lostReply applies writes but, while armed, loses their answer: it waits
// until the caller gives up and reports the caller's context error, as a
// connection that breaks after the request went out would.
type lostReply struct {
	store.Store
	armed   atomic.Bool
	applied chan struct{} // receives a value once an armed write was applied
}

func (l *lostReply) lose(ctx context.Context, rec store.Record, err error) (store.Record, error) {
	if err != nil || !l.armed.Load() {
		return rec, err
	}
	l.applied <- struct{}{}
	<-ctx.Done()
	return store.Record{}, ctx.Err()
}

func (l *lostReply) Create(ctx context.Context, rec store.Record) (store.Record, error) {
	got, err := l.Store.Create(ctx, rec)
	return l.lose(ctx, got, err)
}

func (l *lostReply) Update(ctx context.Context, rec store.Record) (store.Record, error) {
	got, err := l.Store.Update(ctx, rec)
	return l.lose(ctx, got, err)
}

// A candidate whose Run is cancelled while its winning write is in flight
// (the server applied it; the answer never came) releases the lease it may
// hold before Run returns, instead of leaving the others waiting a whole
// lease duration.
func TestCancelledDuringAWinningWriteReleases(t *testing.T) {
	for _, existing := range []bool{false, true} {
		name := "create"
		if existing {
			name = "update"
		}
		t.Run(name, func(t *testing.T) {
			lease := newLeaseName(t)
			st := kubeStore(t, env.Config, lease)
			if existing {
				// A released record: the take is an update.
				if _, err := st.Create(context.Background(), store.Record{LeaseDuration: time.Second}); err != nil {
					t.Fatal(err)
				}
			}
			lr := &lostReply{Store: st, applied: make(chan struct{}, 1)}
			lr.armed.Store(true)
			e, err := election.New(election.Config{Store: lr, Identity: "a", LeaseDuration: testLease,
				RenewDeadline: testRenew, RetryPeriod: testRetry, Grace: testGrace,
				Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- e.Run(ctx) }()
			select {
			case <-lr.applied:
			case <-time.After(30 * time.Second):
				t.Fatal("no write was attempted")
			}
			lr.armed.Store(false)
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return after its context ended")
			}
			rec, err := st.Get(context.Background())
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
			if rec.Holder != "" {
				t.Errorf("after Run returned, the lease is still held by %q (instance %s); want it released", rec.Holder, rec.Instance)
			}
		})
	}
}
