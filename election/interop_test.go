package election_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/incumbent-io/incumbent/election/electiontest"
)

// clientGoCandidate runs client-go's LeaderElector, which is one-shot, in a
// loop, recording its terms in the same checker. stepDown ends the current
// term the way a careful client-go user would: work first, then the elector.
type clientGoCandidate struct {
	stepDown chan struct{}
	resume   chan struct{}
	leading  chan struct{}
	stopped  chan struct{}
}

func startClientGo(t *testing.T, cs kubernetes.Interface, lease, id string, chk *electiontest.Checker) *clientGoCandidate {
	t.Helper()
	c := &clientGoCandidate{stepDown: make(chan struct{}), resume: make(chan struct{}), leading: make(chan struct{}, 10), stopped: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); <-c.stopped })
	var stepped atomic.Bool
	go func() {
		defer close(c.stopped)
		for ctx.Err() == nil {
			runCtx, stop := context.WithCancel(ctx)
			le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
				Lock: &resourcelock.LeaseLock{
					LeaseMeta:  metav1.ObjectMeta{Namespace: ns, Name: lease},
					Client:     cs.CoordinationV1(),
					LockConfig: resourcelock.ResourceLockConfig{Identity: id},
				},
				LeaseDuration: testLease, RenewDeadline: testRenew, RetryPeriod: testRetry,
				ReleaseOnCancel: true,
				Callbacks: leaderelection.LeaderCallbacks{
					OnStartedLeading: func(lctx context.Context) {
						l, err := cs.CoordinationV1().Leases(ns).Get(lctx, lease, metav1.GetOptions{})
						if err != nil {
							t.Errorf("client-go leader: read its lease: %v", err)
							stop()
							return
						}
						// client-go offers no fencing token; the Lease's
						// resourceVersion read now is above the revision of
						// every earlier acquisition and below every later one.
						rv, err := strconv.ParseInt(l.ResourceVersion, 10, 64)
						if err != nil {
							t.Errorf("client-go leader: resourceVersion %q: %v", l.ResourceVersion, err)
						}
						end := chk.Begin(id, rv)
						c.leading <- struct{}{}
						select {
						case <-c.stepDown:
							stepped.Store(true)
						case <-lctx.Done():
						}
						end()
						stop()
					},
					OnStoppedLeading: func() {},
				},
			})
			if err != nil {
				t.Error(err)
				stop()
				return
			}
			le.Run(runCtx)
			stop()
			if stepped.Swap(false) {
				// Campaign again only when told: client-go would take its
				// own release back at once.
				select {
				case <-c.resume:
				case <-ctx.Done():
				}
			}
		}
	}()
	return c
}

// An incumbent candidate and a client-go candidate sharing one Lease never
// both lead, whichever hands over to whichever.
func TestInteropWithClientGo(t *testing.T) {
	lease := newLeaseName(t)
	chk := electiontest.NewChecker()
	cs := admin(t)
	a := startCandidate(t, kubeStore(t, env.Config, lease), "incumbent", chk, candidateOpts{})
	waitLeader(t, a, 30*time.Second)
	g := startClientGo(t, cs, lease, "client-go", chk)

	for round := range 3 {
		// incumbent -> client-go (client-go polls, so this takes up to ~2 retry periods)
		if err := a.e.Resign(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		select {
		case <-g.leading:
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: client-go did not take the released lease", round)
		}
		// client-go -> incumbent
		send(t, g.stepDown, "client-go to step down")
		waitLeader(t, a, 30*time.Second)
		send(t, g.resume, "client-go to campaign again")
	}
	waitFor(t, "the 7th term", 30*time.Second, chk.Changed(), func() bool { return chk.Started() >= 7 })
	assertClean(t, chk)
}

// send hands a signal to a goroutine that must be waiting for it.
func send(t *testing.T, ch chan<- struct{}, what string) {
	t.Helper()
	select {
	case ch <- struct{}{}:
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}
