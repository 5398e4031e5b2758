package election_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/election/electiontest"
	"github.com/incumbent-io/incumbent/internal/tcpproxy"
	"github.com/incumbent-io/incumbent/store"
)

// pollingStore cannot watch, so its candidate reads the record every retry
// period; the test can hold its reads back (a slow or partitioned read
// path) and sees when each read returns.
type pollingStore struct {
	store.Store
	mu     sync.Mutex
	gate   chan struct{} // reads wait while it is open (non-nil and not closed)
	reads  []time.Time   // when each successful read returned
	readCh chan struct{}
}

func newPollingStore(s store.Store) *pollingStore {
	return &pollingStore{Store: s, readCh: make(chan struct{}, 1)}
}

func (p *pollingStore) Watch(ctx context.Context, after string) (<-chan store.Event, error) {
	return nil, errors.New("watch: injected failure")
}

func (p *pollingStore) Get(ctx context.Context) (store.Record, error) {
	p.mu.Lock()
	gate := p.gate
	p.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return store.Record{}, ctx.Err()
		}
	}
	rec, err := p.Store.Get(ctx)
	if err == nil || errors.Is(err, store.ErrNotFound) {
		p.mu.Lock()
		p.reads = append(p.reads, time.Now())
		p.mu.Unlock()
		select {
		case p.readCh <- struct{}{}:
		default:
		}
	}
	return rec, err
}

func (p *pollingStore) hold() {
	p.mu.Lock()
	p.gate = make(chan struct{})
	p.mu.Unlock()
}

func (p *pollingStore) release() {
	p.mu.Lock()
	close(p.gate)
	p.gate = nil
	p.mu.Unlock()
}

func (p *pollingStore) readCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.reads)
}

// renewLog records when each successful write was sent.
type renewLog struct {
	store.Store
	mu    sync.Mutex
	sent  []time.Time
	wrote chan struct{}
}

func (r *renewLog) Update(ctx context.Context, rec store.Record) (store.Record, error) {
	sent := time.Now()
	got, err := r.Store.Update(ctx, rec)
	if err == nil {
		r.mu.Lock()
		r.sent = append(r.sent, sent)
		r.mu.Unlock()
		select {
		case r.wrote <- struct{}{}:
		default:
		}
	}
	return got, err
}

func (r *renewLog) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sent)
}

// A follower that missed the leader's latest renewals (its reads were held
// back) and then finds the record deleted waits a full lease duration from
// the moment it saw the deletion, not from the older version it last saw:
// the leader's term, counted from its latest renewal, is still running.
func TestDeletedRecordIsWaitedOutFromItsObservation(t *testing.T) {
	lease := newLeaseName(t)
	chk := electiontest.NewChecker()
	cfg, proxy := throughProxy(t)
	rl := &renewLog{Store: kubeStore(t, cfg, lease), wrote: make(chan struct{}, 1)}
	// The leader's work takes almost its whole grace to stop.
	linger := testGrace - 50*time.Millisecond
	a := startCandidate(t, rl, "a", chk, candidateOpts{linger: linger})
	waitLeader(t, a, 30*time.Second)

	ps := newPollingStore(kubeStore(t, env.Config, lease))
	b := startCandidate(t, ps, "b", chk, candidateOpts{})
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	waitFor(t, "b to see a lead", 30*time.Second, poll.C, func() bool { return b.e.Status().Leader == "a" })

	// Right after one of b's reads, hold b's reads back while a renews
	// four more times.
	n := ps.readCount()
	waitFor(t, "a read by b", 30*time.Second, ps.readCh, func() bool { return ps.readCount() > n })
	ps.hold()
	renewals := rl.count()
	waitFor(t, "four renewals by a", 30*time.Second, rl.wrote, func() bool { return rl.count() >= renewals+4 })
	// Then cut a off and delete the Lease, and let b read again.
	proxy.Set(tcpproxy.Refuse)
	if err := admin(t).CoordinationV1().Leases(ns).Delete(context.Background(), lease, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ps.release()

	var why error
	select {
	case why = <-a.endedCh:
	case <-time.After(30 * time.Second):
		t.Fatal("a's term did not end after it was cut off")
	}
	if !errors.Is(why, election.ErrRenewDeadline) {
		t.Errorf("a's term ended with %v, want ErrRenewDeadline", why)
	}
	waitFor(t, "b's term", 30*time.Second, chk.Changed(), func() bool {
		for _, tm := range chk.Active() {
			if tm.Identity == "b" {
				return true
			}
		}
		return false
	})
	assertClean(t, chk)
}
