package election_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/election/electiontest"
	"github.com/incumbent-io/incumbent/store"
)

// Tokens never go down, and never start at 0: a candidate started after the
// Lease was deleted knows nothing of the terms before, yet its token is
// larger than every token before the deletion.
func TestTokensRiseAcrossDeletionForAFreshCandidate(t *testing.T) {
	lease := newLeaseName(t)
	chk := electiontest.NewChecker()
	a := startCandidate(t, kubeStore(t, env.Config, lease), "a", chk, candidateOpts{})
	first := waitLeader(t, a, 30*time.Second).Term
	if first < 1 {
		t.Errorf("the first term's token is %d; want at least 1 (0 reads as unset)", first)
	}
	a.stop(t) // releases the lease
	if err := admin(t).CoordinationV1().Leases(ns).Delete(context.Background(), lease, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	b := startCandidate(t, kubeStore(t, env.Config, lease), "b", chk, candidateOpts{})
	second := waitLeader(t, b, 30*time.Second).Term
	if second <= first {
		t.Errorf("the token after deletion is %d, not above the token before it (%d)", second, first)
	}
	assertClean(t, chk)
}

// delayedWatch delivers every watch event late (in order), as a slow or
// distant API server would, so that a candidate's own writes are observed
// before older events reach it.
type delayedWatch struct {
	store.Store
	delay     time.Duration
	deletions atomic.Int64  // deletion events delivered
	delivered chan struct{} // receives a value after each event delivered
}

func newDelayedWatch(s store.Store, delay time.Duration) *delayedWatch {
	return &delayedWatch{Store: s, delay: delay, delivered: make(chan struct{}, 1)}
}

func (d *delayedWatch) Watch(ctx context.Context, after string) (<-chan store.Event, error) {
	in, err := d.Store.Watch(ctx, after)
	if err != nil {
		return nil, err
	}
	type stamped struct {
		ev store.Event
		at time.Time
	}
	queue := make(chan stamped, 1024)
	go func() {
		defer close(queue)
		for ev := range in {
			queue <- stamped{ev, time.Now().Add(d.delay)}
		}
	}()
	out := make(chan store.Event)
	go func() {
		defer close(out)
		for s := range queue {
			timer := time.NewTimer(time.Until(s.at))
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				return
			}
			select {
			case out <- s.ev:
			case <-ctx.Done():
				return
			}
			if s.ev.Deleted {
				d.deletions.Add(1)
			}
			select {
			case d.delivered <- struct{}{}:
			default:
			}
		}
	}()
	return out, nil
}

// While a candidate leads, its status names itself as the leader and carries
// its own term's token, even when watch events arrive after the candidate's
// own writes: after acquisition races, and after the Lease is deleted under
// the leader and restored by it.
func TestLeaderStatusCarriesItsOwnToken(t *testing.T) {
	lease := newLeaseName(t)
	chk := electiontest.NewChecker()
	const delay = 2 * testRetry // every event arrives after the leader's next renewal
	var mu sync.Mutex
	tokens := map[string]map[int64]bool{} // every token each candidate was given
	seen := map[string][]election.Status{}
	var collectors sync.WaitGroup
	stop := make(chan struct{})
	defer func() { close(stop); collectors.Wait() }()
	var cands []*candidate
	watches := map[*candidate]*delayedWatch{}
	for _, id := range []string{"a", "b", "c"} {
		dw := newDelayedWatch(kubeStore(t, env.Config, lease), delay)
		c := startCandidate(t, dw, id, chk, candidateOpts{
			tune: func(cfg *election.Config) {
				inner := cfg.Lead
				cfg.Lead = func(term *election.Term) {
					mu.Lock()
					if tokens[id] == nil {
						tokens[id] = map[int64]bool{}
					}
					tokens[id][term.Token()] = true
					mu.Unlock()
					inner(term)
				}
			},
		})
		cands = append(cands, c)
		watches[c] = dw
		statuses, cancel := c.e.Subscribe()
		defer cancel()
		collectors.Go(func() {
			for {
				select {
				case s := <-statuses:
					mu.Lock()
					seen[id] = append(seen[id], s)
					mu.Unlock()
				case <-stop:
					return
				}
			}
		})
	}
	leases := admin(t).CoordinationV1().Leases(ns)
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	leader := func() *candidate {
		var l *candidate
		waitFor(t, "a leader", 30*time.Second, chk.Changed(), func() bool {
			for _, c := range cands {
				if c.e.Status().IsLeader {
					l = c
					return true
				}
			}
			return false
		})
		return l
	}
	for round := 0; round < 4; round++ {
		l := leader()
		// Every candidate knows the leader, so none takes the deleted Lease
		// for one that never existed.
		for _, c := range cands {
			waitFor(t, c.id+" to see "+l.id+" lead", 30*time.Second, poll.C, func() bool { return c.e.Status().Leader == l.id })
		}
		deletions := watches[l].deletions.Load()
		// Deleted under the leader: it restores the Lease (same term)
		// before the deletion event reaches it.
		if err := leases.Delete(context.Background(), lease, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the Lease restored", 30*time.Second, poll.C, func() bool {
			_, err := leases.Get(context.Background(), lease, metav1.GetOptions{})
			return err == nil
		})
		// Let the delayed deletion event arrive, then resign: the others
		// race for the lease.
		waitFor(t, "the deletion event to reach the leader", 30*time.Second, watches[l].delivered, func() bool {
			return watches[l].deletions.Load() > deletions
		})
		started := chk.Started()
		if err := l.e.Resign(); err != nil {
			t.Fatalf("%s: Resign: %v (status %+v)", l.id, err, l.e.Status())
		}
		waitFor(t, "the next term", 30*time.Second, chk.Changed(), func() bool { return chk.Started() > started })
	}
	for _, c := range cands {
		c.stop(t)
	}
	assertClean(t, chk)
	mu.Lock()
	defer mu.Unlock()
	for id, ss := range seen {
		for _, s := range ss {
			if s.IsLeader && (s.Leader != id || !tokens[id][s.Term]) {
				t.Errorf("%s reported leader=%q term=%d while leading (its tokens: %v)", id, s.Leader, s.Term, tokens[id])
			}
		}
	}
}
