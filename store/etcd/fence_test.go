package etcd_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/etcd"
)

// fencedStore is the store of the election "lease" under the test's prefix,
// keeping the fence key.
func fencedStore(t *testing.T, c *clientv3.Client) *etcd.Store {
	t.Helper()
	s, err := etcd.New(c, testPrefix(t), "lease", etcd.WithFenceKey())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestIsHolderFencesTheLeadersTransactions follows the fence key through
// acquisitions, renewals, a take-over, a release and a re-acquisition by
// the same process, on a real etcd: a transaction guarded by IsHolder(token)
// succeeds exactly while the term of that token holds the lease.
func TestIsHolderFencesTheLeadersTransactions(t *testing.T) {
	ctx := testContext(t)
	c := sharedClient(t)
	a, b := fencedStore(t, c), fencedStore(t, c)
	data := testPrefix(t) + "-data"
	writes := func(who string, token int64) bool {
		t.Helper()
		resp, err := c.Txn(ctx).If(a.IsHolder(token)).Then(clientv3.OpPut(data, who)).Commit()
		if err != nil {
			t.Fatal(err)
		}
		return resp.Succeeded
	}
	check := func(step string, want map[int64]bool) {
		t.Helper()
		for token, ok := range want {
			if got := writes(step, token); got != ok {
				t.Errorf("%s: a transaction guarded by IsHolder(%d) succeeded=%v, want %v", step, token, got, ok)
			}
		}
	}
	recA, err := a.Create(ctx, store.Record{Holder: "a", Instance: "ia", LeaseDuration: 15 * time.Second, Transitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	tokenA := recA.Revision
	check("a acquired", map[int64]bool{tokenA: true, tokenA - 1: false})

	for range 3 {
		recA.Term = tokenA
		if recA, err = a.Update(ctx, recA); err != nil {
			t.Fatal(err)
		}
	}
	check("a renewed three times", map[int64]bool{tokenA: true, recA.Revision: false})

	recB := recA
	recB.Holder, recB.Instance, recB.Transitions, recB.Term = "b", "ib", 2, 0
	if recB, err = b.Update(ctx, recB); err != nil {
		t.Fatal(err)
	}
	tokenB := recB.Revision
	check("b took over", map[int64]bool{tokenA: false, tokenB: true})

	recB.Holder, recB.Instance = "", ""
	if recB, err = b.Update(ctx, recB); err != nil {
		t.Fatal(err)
	}
	check("b released", map[int64]bool{tokenA: false, tokenB: false})

	// The same process acquires again: a new term, a new token.
	recA = recB
	recA.Holder, recA.Instance, recA.Transitions = "a", "ia", 3
	if recA, err = a.Update(ctx, recA); err != nil {
		t.Fatal(err)
	}
	check("a acquired again", map[int64]bool{tokenA: false, tokenB: false, recA.Revision: true})
	// And, held by the same holder and instance, once more after its
	// record was taken as expired (transitions rise): the old term fails.
	old := recA.Revision
	recA.Transitions = 4
	if recA, err = a.Update(ctx, recA); err != nil {
		t.Fatal(err)
	}
	check("a re-acquired its own expired lease", map[int64]bool{old: false, recA.Revision: true})

	plain := newStore(t, c)
	if resp, err := c.Txn(ctx).If(plain.IsHolder(recA.Revision)).Then(clientv3.OpPut(data, "x")).Commit(); err != nil || resp.Succeeded {
		t.Errorf("IsHolder of a store without the fence key: succeeded=%v, %v; want it never to hold", resp != nil && resp.Succeeded, err)
	}
}

// TestTheOldLeadersTransactionFailsAfterAHandOver: two electors on a real
// etcd; the first leads, writes through a guarded transaction, resigns; the
// second takes over; the first term's guarded transaction now fails, and
// the second's succeeds.
func TestTheOldLeadersTransactionFailsAfterAHandOver(t *testing.T) {
	testTheOldLeadersTransactionFails(t, sharedClient(t), fencedStore)
}

// The same with the Stores of a Keyspace, whose Watches share one.
func TestTheOldLeadersTransactionFailsAfterAHandOverInAKeyspace(t *testing.T) {
	c := sharedClient(t)
	ks, err := etcd.NewKeyspace(c, testPrefix(t))
	if err != nil {
		t.Fatal(err)
	}
	testTheOldLeadersTransactionFails(t, c, func(t *testing.T, _ *clientv3.Client) *etcd.Store {
		t.Helper()
		s, err := ks.Store("lease", etcd.WithFenceKey())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func testTheOldLeadersTransactionFails(t *testing.T, c *clientv3.Client, fencedStore func(*testing.T, *clientv3.Client) *etcd.Store) {
	ctx := testContext(t)
	data := testPrefix(t) + "-data"
	terms := make(chan *election.Term, 2)
	start := func(id string) *election.Elector {
		st := fencedStore(t, c)
		e, err := election.New(election.Config{Store: st, Identity: id,
			Lead: func(term *election.Term) { terms <- term; <-term.Done() }})
		if err != nil {
			t.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); e.Run(runCtx) }()
		t.Cleanup(func() { stop(); <-done })
		return e
	}
	guarded := func(term *election.Term) bool {
		t.Helper()
		st := fencedStore(t, c)
		resp, err := c.Txn(ctx).If(st.IsHolder(term.Token())).Then(clientv3.OpPut(data, term.Identity())).Commit()
		if err != nil {
			t.Fatal(err)
		}
		return resp.Succeeded
	}
	first := start("a")
	termA := <-terms
	if !guarded(termA) {
		t.Fatal("the leader's guarded transaction failed during its term")
	}
	start("b")
	if err := first.Resign(); err != nil {
		t.Fatal(err)
	}
	termB := <-terms
	if termB.Identity() != "b" {
		t.Fatalf("the second term is %s's", termB.Identity())
	}
	if guarded(termA) {
		t.Errorf("after the hand-over to b, a's guarded transaction (token %d) succeeded", termA.Token())
	}
	if !guarded(termB) {
		t.Errorf("b's guarded transaction (token %d) failed during its term", termB.Token())
	}
}
