package election_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/election/electiontest"
	"github.com/incumbent-io/incumbent/internal/tcpproxy"
	"github.com/incumbent-io/incumbent/store/kube"
)

// throughProxy returns a client config that reaches the API server through
// a proxy the test can cut.
func throughProxy(t *testing.T) (*rest.Config, *tcpproxy.Proxy) {
	t.Helper()
	u, err := url.Parse(env.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tcpproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	cfg := rest.CopyConfig(env.Config)
	cfg.Host = "https://" + p.Addr()
	return cfg, p
}

// A leader cut off from the API server (refused, or hung) steps down at its
// renew deadline, before a follower may take over; the follower takes over
// no earlier than LeaseDuration after it last saw the record change, and
// within one RetryPeriod of that.
func TestCutOffLeaderStepsDownBeforeTakeover(t *testing.T) {
	for _, mode := range []struct {
		name string
		mode tcpproxy.Mode
	}{{"refused", tcpproxy.Refuse}, {"blackholed", tcpproxy.Blackhole}} {
		t.Run(mode.name, func(t *testing.T) {
			lease := newLeaseName(t)
			chk := electiontest.NewChecker()
			cfg, proxy := throughProxy(t)
			a := startCandidate(t, kubeStore(t, cfg, lease), "a", chk, candidateOpts{})
			waitLeader(t, a, 30*time.Second)
			b := startCandidate(t, kubeStore(t, env.Config, lease), "b", chk, candidateOpts{})
			ch, cancel := b.e.Subscribe()
			waitFor(t, "b to see a lead", 30*time.Second, ch, func() bool { return b.e.Status().Leader == "a" })
			cancel()

			proxy.Set(mode.mode)
			var why error
			select {
			case why = <-a.endedCh:
			case <-time.After(30 * time.Second):
				t.Fatal("a's term did not end after it was cut off")
			}
			if !errors.Is(why, election.ErrRenewDeadline) {
				t.Errorf("a's term ended with %v, want ErrRenewDeadline", why)
			}
			// a's last write is now visible to b, and b cannot have acted yet.
			seen := b.e.Status().ObservedAt
			var bStart time.Time
			waitFor(t, "b's term", 30*time.Second, chk.Changed(), func() bool {
				for _, tm := range chk.Active() {
					if tm.Identity == "b" {
						bStart = tm.Start
					}
				}
				return !bStart.IsZero()
			})
			st := b.e.Status()
			after := bStart.Sub(seen)
			if after < testLease {
				t.Errorf("b took over %v after it last saw the record change; must wait at least %v", after, testLease)
			}
			if after > testLease+testRetry {
				t.Errorf("b took over %v after it last saw the record change; want within LeaseDuration+RetryPeriod (%v)", after, testLease+testRetry)
			}
			if prev := chk.Ended(); len(prev) != 1 || st.Term <= prev[0].Token {
				t.Errorf("b's token is %d; want above a's (%+v)", st.Term, prev)
			}
			assertClean(t, chk)
			t.Logf("crash take-over (%s): b started %v after its last observation of a's record (lease %v)", mode.name, after, testLease)

			// Back online, a becomes a follower again without a restart.
			proxy.Set(tcpproxy.Pass)
			ch, cancel = a.e.Subscribe()
			defer cancel()
			waitFor(t, "a to see b lead", 30*time.Second, ch, func() bool { return a.e.Status().Leader == "b" && !a.e.Status().IsLeader })
		})
	}
}

// A Lease deleted under its leader is restored by the leader (same token),
// and the followers that saw it held do not jump in; a Lease hand-edited to
// name another holder deposes the leader, and nobody takes over before that
// holder's lease runs out; tokens go on rising.
func TestLeaseDeletedOrEditedUnderLeader(t *testing.T) {
	lease := newLeaseName(t)
	chk := electiontest.NewChecker()
	a := startCandidate(t, kubeStore(t, env.Config, lease), "a", chk, candidateOpts{})
	waitLeader(t, a, 30*time.Second)
	b := startCandidate(t, kubeStore(t, env.Config, lease), "b", chk, candidateOpts{})
	ch, cancel := b.e.Subscribe()
	waitFor(t, "b to see a lead", 30*time.Second, ch, func() bool { return b.e.Status().Leader == "a" })
	cancel()
	leases := admin(t).CoordinationV1().Leases(ns)
	ctx := context.Background()

	// Delete: a re-creates its record within a retry period.
	if err := leases.Delete(ctx, lease, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// An observer started after the deletion sees a holder only once the
	// record exists again.
	obs := election.NewObserver(kubeStore(t, env.Config, lease), testRetry, discardLogger())
	octx, ocancel := context.WithCancel(ctx)
	go obs.Run(octx)
	ch, cancel = obs.Subscribe()
	waitFor(t, "the record to be re-created", 30*time.Second, ch, func() bool { return obs.Status().Leader != "" })
	cancel()
	ocancel()
	assertClean(t, chk)
	aToken := chk.Active()[0].Token
	if s := obs.Status(); s.Leader != "a" || s.Term != aToken || chk.Started() != 1 {
		t.Errorf("after deletion: leader %q term %d, %d terms started; want a's record restored with its token %d and no new term", s.Leader, s.Term, chk.Started(), aToken)
	}

	// Hand-edit: an operator writes another holder with a later token.
	l, err := leases.Get(ctx, lease, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	intruder, transitions, dur := "intruder", int32(7), int32(2)
	l.Spec.HolderIdentity, l.Spec.LeaseTransitions, l.Spec.LeaseDurationSeconds = &intruder, &transitions, &dur
	delete(l.Annotations, kube.AnnotationInstance)
	edited, err := leases.Update(ctx, l, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	editedAt := time.Now()
	select {
	case why := <-a.endedCh:
		if !errors.Is(why, election.ErrLeaseLost) {
			t.Errorf("a's term ended with %v, want ErrLeaseLost", why)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a did not step down after its lease was handed to another holder")
	}
	// Somebody takes over only after the intruder's lease ran out.
	waitFor(t, "a new term", 30*time.Second, chk.Changed(), func() bool { return chk.Started() == 2 })
	next := chk.Active()
	if len(next) != 1 {
		t.Fatalf("%d active terms, want 1", len(next))
	}
	if wait := next[0].Start.Sub(editedAt); wait < time.Duration(dur)*time.Second {
		t.Errorf("%s took over %v after the edit to %s; must wait its %ds lease", next[0].Identity, wait, edited.ResourceVersion, dur)
	}
	if next[0].Token <= aToken {
		t.Errorf("new term's token is %d, not above a's %d", next[0].Token, aToken)
	}
	if l, err := leases.Get(ctx, lease, metav1.GetOptions{}); err != nil || *l.Spec.LeaseTransitions != 8 {
		t.Errorf("leaseTransitions after the take-over: %v (%v); want 8 (the edited 7 + 1)", l.Spec.LeaseTransitions, err)
	}
	assertClean(t, chk)
}

// A hand-made Lease with a holder but no duration is reported as malformed
// and waited out for the candidate's own LeaseDuration, then taken over.
func TestMalformedLeaseIsReportedAndWaitedOut(t *testing.T) {
	lease := newLeaseName(t)
	ghost := "ghost"
	_, err := admin(t).CoordinationV1().Leases(ns).Create(context.Background(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: lease, Namespace: ns},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &ghost},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	log, logs := newLogCapture(t)
	chk := electiontest.NewChecker()
	a := startCandidate(t, kubeStore(t, env.Config, lease), "a", chk, candidateOpts{log: log})
	waitFor(t, "the malformed record to be reported", 30*time.Second, logs.ch, func() bool { return logs.has("malformed") })
	waitLeader(t, a, 30*time.Second)
	if took := time.Since(created); took < testLease {
		t.Errorf("took the malformed record over after %v, before its own lease duration %v", took, testLease)
	}
	assertClean(t, chk)
}

// Two processes with the same identity never both lead, and the duplicate
// is reported.
func TestSameIdentityTwoProcesses(t *testing.T) {
	lease := newLeaseName(t)
	chk := electiontest.NewChecker()
	log, logs := newLogCapture(t)
	hold := func() time.Duration { return 300 * time.Millisecond }
	one := startCandidate(t, kubeStore(t, env.Config, lease), "twin", chk, candidateOpts{hold: hold, log: log})
	waitLeader(t, one, 30*time.Second)
	two := startCandidate(t, kubeStore(t, env.Config, lease), "twin", chk, candidateOpts{hold: hold, log: log})
	startCandidate(t, kubeStore(t, env.Config, lease), "other", chk, candidateOpts{hold: hold})
	waitFor(t, "the duplicate identity to be reported", 30*time.Second, logs.ch, func() bool {
		return logs.has("same identity")
	})
	waitFor(t, "10 terms", time.Minute, chk.Changed(), func() bool { return chk.Started() >= 10 })
	_ = two
	assertClean(t, chk)
}

// A permission the API server refuses is reported, naming the verb and
// resource, and ends Run instead of retrying forever.
func TestPermissionDeniedIsReported(t *testing.T) {
	cfg, err := env.User("nobody")
	if err != nil {
		t.Fatal(err)
	}
	e, err := election.New(election.Config{Store: kubeStore(t, cfg, newLeaseName(t)), Identity: "a",
		LeaseDuration: testLease, RenewDeadline: testRenew, RetryPeriod: testRetry, Grace: testGrace,
		Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = e.Run(ctx)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Run returned %v (ctx %v); want a permission error before the deadline", err, ctx.Err())
	}
	for _, want := range []string{`verb "get"`, `"leases"`, "coordination.k8s.io", "permission denied"} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if e.Check() == nil {
		t.Error("Check reports healthy after Run failed")
	}
}
