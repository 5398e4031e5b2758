package election_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/election/electiontest"
	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/memory"
)

// createLog records when creates are sent.
type createLog struct {
	store.Store
	mu    sync.Mutex
	at    []time.Time
	calls chan struct{}
}

func (c *createLog) Create(ctx context.Context, r store.Record) (store.Record, error) {
	c.mu.Lock()
	c.at = append(c.at, time.Now())
	c.mu.Unlock()
	select {
	case c.calls <- struct{}{}:
	default:
	}
	return c.Store.Create(ctx, r)
}

func (c *createLog) times() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.at...)
}

// A Lease in a namespace that does not exist cannot be created: the
// candidate reports it and retries once per RetryPeriod, not in a loop.
func TestMissingNamespaceDoesNotSpin(t *testing.T) {
	cl := &createLog{Store: kubeStoreIn(t, "no-such-namespace", newLeaseName(t)), calls: make(chan struct{}, 1)}
	log, logs := newLogCapture(t)
	chk := electiontest.NewChecker()
	startCandidate(t, cl, "a", chk, candidateOpts{log: log})
	waitFor(t, "three create attempts", 30*time.Second, cl.calls, func() bool { return len(cl.times()) >= 3 })
	at := cl.times()
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < testRetry {
			t.Errorf("create attempts %d and %d were %v apart; want at least RetryPeriod (%v)", i-1, i, gap, testRetry)
		}
	}
	if !logs.has("cannot acquire the lease") {
		t.Error("the failing create was not reported")
	}
	if chk.Started() != 0 {
		t.Error("a term started without a Lease")
	}
}

// A transfer reaches a candidate that resigned a moment ago: the hand-off
// reservation overrides its own hold-back.
func TestTransferToARecentlyResignedCandidate(t *testing.T) {
	lease := newLeaseName(t)
	chk := electiontest.NewChecker()
	b := startCandidate(t, kubeStore(t, env.Config, lease), "b", chk, candidateOpts{})
	waitLeader(t, b, 30*time.Second)
	a := startCandidate(t, kubeStore(t, env.Config, lease), "a", chk, candidateOpts{})
	if err := b.e.Resign(); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, a, 30*time.Second)
	started := time.Now()
	if err := a.e.Transfer("b"); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, b, 30*time.Second)
	if took := time.Since(started); took >= testLease {
		t.Errorf("the transfer took %v: b waited out its hold-back instead of honouring the hand-off", took)
	}
	assertClean(t, chk)
	for _, bad := range []string{"", "a"} {
		if err := a.e.Transfer(bad); err == nil || errors.Is(err, election.ErrNotLeader) {
			t.Errorf("Transfer(%q) returned %v; want an invalid-target error", bad, err)
		}
	}
}

// A record released and then deleted is re-created with the next token, not
// token 0 again, by a candidate that saw it.
func TestTokensContinueAfterReleaseAndDelete(t *testing.T) {
	ms := memory.New("release-delete")
	chk := electiontest.NewChecker()
	a := startCandidate(t, ms, "a", chk, candidateOpts{})
	waitLeader(t, a, 10*time.Second)
	if err := a.e.Resign(); err != nil {
		t.Fatal(err)
	}
	ch, cancel := a.e.Subscribe()
	waitFor(t, "the release", 10*time.Second, ch, func() bool { s := a.e.Status(); return s.Known && s.Leader == "" })
	cancel()
	ms.Delete()
	waitFor(t, "a second term", 10*time.Second, chk.Changed(), func() bool { return chk.Started() >= 2 })
	assertClean(t, chk) // the checker refuses a token that does not rise
}
