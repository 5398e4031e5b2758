package election_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/incumbent-io/incumbent/election/electiontest"
	"github.com/incumbent-io/incumbent/store"
)

// Five candidates hand the lease around many times; no two terms may
// overlap and every term's token must be the previous one plus one.
func TestMutualExclusionOverManyHandovers(t *testing.T) {
	lease := newLeaseName(t)
	chk := electiontest.NewChecker()
	hold := func() time.Duration { return time.Duration(5+rand.IntN(40)) * time.Millisecond }
	var cands []*candidate
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		cands = append(cands, startCandidate(t, kubeStore(t, env.Config, lease), id, chk, candidateOpts{hold: hold}))
	}
	const want = 40
	waitFor(t, "40 terms", 2*time.Minute, chk.Changed(), func() bool { return chk.Started() >= want })
	for _, c := range cands {
		c.stop(t)
	}
	assertClean(t, chk) // includes: every token above the one before

	// leaseTransitions counts every acquisition after the first, exactly
	// as client-go counts it.
	l, err := admin(t).CoordinationV1().Leases(ns).Get(context.Background(), lease, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := int(*l.Spec.LeaseTransitions), chk.Started()-1; got != want {
		t.Errorf("leaseTransitions is %d after %d terms; want %d", got, chk.Started(), want)
	}

	terms := chk.Ended()
	slices.SortFunc(terms, func(a, b electiontest.Term) int { return a.Start.Compare(b.Start) })
	var gaps []time.Duration
	holders := map[string]int{}
	for i, tm := range terms {
		holders[tm.Identity]++
		if i == 0 {
			continue
		}
		gaps = append(gaps, tm.Start.Sub(terms[i-1].End))
	}
	if len(holders) < 2 {
		t.Errorf("only %v ever led", holders)
	}
	slices.Sort(gaps)
	t.Logf("%d terms, holders %v; hand-over gap (previous work returned -> next work started): p50 %v p90 %v max %v",
		len(terms), holders, gaps[len(gaps)/2], gaps[len(gaps)*9/10], gaps[len(gaps)-1])
}

// Many candidates racing for a free lease, repeatedly: all of them send
// their create at the same moment, exactly one wins, and only one term
// starts.
func TestConcurrentAcquisitionHasOneWinner(t *testing.T) {
	const n = 6
	for round := range 5 {
		lease := newLeaseName(t)
		chk := electiontest.NewChecker()
		gate := newBarrier(n)
		var stores []*countingStore
		var cands []*candidate
		for i := range n {
			s := newCounting(kubeStore(t, env.Config, lease))
			s.gate = gate
			stores = append(stores, s)
			cands = append(cands, startCandidate(t, s, string(rune('a'+i)), chk, candidateOpts{}))
		}
		waitFor(t, "every create to return", time.Minute, gate.done, func() bool {
			var finished int64
			for _, s := range stores {
				finished += s.creates.Load()
			}
			return finished == n
		})
		waitFor(t, "the winner's term", time.Minute, chk.Changed(), func() bool { return chk.Started() >= 1 })
		var writers int
		for _, s := range stores {
			if s.wrote.Load() > 0 {
				writers++
			}
		}
		if writers != 1 || chk.Started() != 1 {
			t.Errorf("round %d: %d candidates wrote successfully and %d terms started; want exactly 1 and 1", round, writers, chk.Started())
		}
		for _, c := range cands {
			c.stop(t)
		}
		assertClean(t, chk)
	}
}

// barrier holds every caller until n have arrived.
type barrier struct {
	mu      sync.Mutex
	n       int
	release chan struct{}
	done    chan struct{} // receives after each caller finished
}

func newBarrier(n int) *barrier {
	return &barrier{n: n, release: make(chan struct{}), done: make(chan struct{}, n)}
}

func (b *barrier) wait() {
	b.mu.Lock()
	b.n--
	if b.n == 0 {
		close(b.release)
	}
	b.mu.Unlock()
	<-b.release
}

// A graceful release is taken by a follower through its watch: the
// follower does not read the record between the release and its own
// acquisition.
func TestReleaseIsTakenThroughTheWatch(t *testing.T) {
	lease := newLeaseName(t)
	chk := electiontest.NewChecker()
	a := startCandidate(t, kubeStore(t, env.Config, lease), "a", chk, candidateOpts{})
	waitLeader(t, a, 30*time.Second)
	bs := newCounting(kubeStore(t, env.Config, lease))
	b := startCandidate(t, bs, "b", chk, candidateOpts{})
	waitFor(t, "b to watch and see a lead", 30*time.Second, bs.calls, func() bool {
		return bs.watches.Load() > 0 && b.e.Status().Leader == "a"
	})
	gets, watches := bs.gets.Load(), bs.watches.Load()

	released := time.Now()
	if err := a.e.Resign(); err != nil {
		t.Fatal(err)
	}
	st := waitLeader(t, b, 30*time.Second)
	took := time.Since(released)
	if g, w := bs.gets.Load()-gets, bs.watches.Load()-watches; g != 0 || w != 0 {
		t.Errorf("follower made %d reads and %d new watches between the release and its acquisition; want 0 and 0", g, w)
	}
	if prev := chk.Ended(); len(prev) != 1 || st.Term <= prev[0].Token {
		t.Errorf("b's term is %d; want above a's (%+v)", st.Term, prev)
	}
	assertClean(t, chk)
	t.Logf("graceful hand-over through the watch: Resign -> follower leading in %v", took)
}

var _ = store.ErrConflict
