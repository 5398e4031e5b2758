package election_test

import (
	"context"
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/election/electiontest"
	"github.com/incumbent-io/incumbent/store/kube"
)

// A transfer hands the lease to the named candidate, not to whoever is
// fastest; it can be asked by the library (Transfer) or by an operator
// through the record (the transfer-to annotation), and an operator can ask
// for a plain release the same way.
func TestTransferGoesToTheNamedCandidate(t *testing.T) {
	lease := newLeaseName(t)
	chk := electiontest.NewChecker()
	cands := map[string]*candidate{}
	for _, id := range []string{"a", "b", "c"} {
		cands[id] = startCandidate(t, kubeStore(t, env.Config, lease), id, chk, candidateOpts{})
		if id == "a" {
			waitLeader(t, cands["a"], 30*time.Second)
		}
	}
	leases := admin(t).CoordinationV1().Leases(ns)
	annotate := func(key, value string) {
		t.Helper()
		for {
			l, err := leases.Get(context.Background(), lease, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if l.Annotations == nil {
				l.Annotations = map[string]string{}
			}
			l.Annotations[key] = value
			if _, err = leases.Update(context.Background(), l, metav1.UpdateOptions{}); err == nil {
				return
			}
		}
	}

	steps := []struct {
		from, to string
		ask      func()
	}{
		{"a", "c", func() {
			if err := cands["a"].e.Transfer("c"); err != nil {
				t.Fatal(err)
			}
		}},
		{"c", "b", func() { annotate(kube.AnnotationTransferTo, "b") }},
		{"b", "", func() { annotate(kube.AnnotationReleaseRequested, "true") }},
	}
	for _, st := range steps {
		before := chk.Started()
		st.ask()
		var why error
		select {
		case why = <-cands[st.from].endedCh:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s's term did not end after the request", st.from)
		}
		var te *election.TransferError
		switch {
		case st.to != "" && (!errors.As(why, &te) || te.To != st.to):
			t.Errorf("%s's term ended with %v, want a transfer to %s", st.from, why, st.to)
		case st.to == "" && !errors.Is(why, election.ErrResigned):
			t.Errorf("%s's term ended with %v, want ErrResigned", st.from, why)
		}
		waitFor(t, "the next term", 30*time.Second, chk.Changed(), func() bool { return chk.Started() > before && len(chk.Active()) == 1 })
		next := chk.Active()[0].Identity
		if st.to != "" && next != st.to {
			t.Errorf("transfer %s -> %s: %s took the lease", st.from, st.to, next)
		}
		if st.to == "" && next == st.from {
			t.Errorf("release requested of %s: it took the lease back at once", st.from)
		}
		t.Logf("%s -> %s: %s leads", st.from, st.to, next)
	}
	assertClean(t, chk)
	leader := chk.Active()[0].Identity
	for id, c := range cands {
		if id != leader {
			if err := c.e.Transfer(leader); !errors.Is(err, election.ErrNotLeader) {
				t.Errorf("Transfer by follower %s returned %v, want ErrNotLeader", id, err)
			}
		}
	}
}

// An Observer follows leadership without campaigning or writing.
func TestObserverFollowsLeadership(t *testing.T) {
	lease := newLeaseName(t)
	chk := electiontest.NewChecker()
	obsStore := newCounting(kubeStore(t, env.Config, lease))
	o := election.NewObserver(obsStore, testRetry, discardLogger())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	ch, stop := o.Subscribe()
	defer stop()

	a := startCandidate(t, kubeStore(t, env.Config, lease), "a", chk, candidateOpts{})
	waitFor(t, "observer to see a", 30*time.Second, ch, func() bool { return o.Status().Leader == "a" })
	aTerm := waitLeader(t, a, 30*time.Second).Term
	b := startCandidate(t, kubeStore(t, env.Config, lease), "b", chk, candidateOpts{})
	if err := a.e.Resign(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "observer to see b and its term", 30*time.Second, ch, func() bool {
		bs := b.e.Status()
		return bs.IsLeader && o.Status().Leader == "b" && o.Status().Term == bs.Term
	})
	if s := o.Status(); s.Term <= aTerm || s.IsLeader || s.Identity != "" || s.Transitions != 1 {
		t.Errorf("observer status %+v; want b leading with a term above a's %d, one transition, observer not leading", s, aTerm)
	}
	if n := obsStore.creates.Load() + obsStore.updates.Load(); n != 0 {
		t.Errorf("observer wrote %d times", n)
	}
}
