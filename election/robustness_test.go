package election_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/incumbent-io/incumbent/election/electiontest"
	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/memory"
)

// Regression tests for defects a review of the reshaped core found. They
// run in a synctest bubble (see clock_test.go): exact, and instant.

// down is a store that does not answer at all.
type down struct {
	store.Store
	gets atomic.Int64
}

func (d *down) Get(context.Context) (store.Record, error) {
	d.gets.Add(1)
	return store.Record{}, errors.New("injected: connection refused")
}

func (d *down) Watch(context.Context, string) (<-chan store.Event, error) {
	return nil, errors.New("injected: connection refused")
}

// A candidate that withdraws while its store is down keeps reading at its
// retry period, not in a tight loop.
func TestWithdrawWhileTheStoreIsDownDoesNotSpin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &down{Store: memory.New("down")}
		c := startInBubble(t, edgeConfig(d, "a", nil), electiontest.NewChecker(), 0)
		time.Sleep(100 * time.Millisecond) // virtual time
		c.e.Withdraw()
		before := d.gets.Load()
		time.Sleep(10 * time.Second) // virtual time: five retry periods
		synctest.Wait()
		// The campaign and the tracker each read once per retry period.
		if n := d.gets.Load() - before; n > 15 {
			t.Errorf("%d reads in 10s after Withdraw; want about two per retry period (2s)", n)
		}
		c.stop(t)
	})
}

// gatedCreate holds a create until told to go on.
type gatedCreate struct {
	store.Store
	entered, proceed chan struct{}
}

func (g *gatedCreate) Create(ctx context.Context, r store.Record) (store.Record, error) {
	g.entered <- struct{}{}
	<-g.proceed
	return g.Store.Create(ctx, r)
}

// A Withdraw that arrives while the winning write is in flight ends the term
// it starts: the candidate releases and never leads on.
func TestWithdrawDuringAnAcquisitionEndsItsTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := memory.New("withdraw-in-flight")
		g := &gatedCreate{Store: ms, entered: make(chan struct{}, 1), proceed: make(chan struct{})}
		c := startInBubble(t, edgeConfig(g, "a", nil), electiontest.NewChecker(), 0)
		<-g.entered
		c.e.Withdraw()
		close(g.proceed)
		time.Sleep(time.Minute) // virtual time
		synctest.Wait()
		rec, err := ms.Get(context.Background())
		if err != nil || rec.Holder != "" || c.e.Status().IsLeader {
			t.Errorf("after withdrawing during the acquisition: %+v, record %+v (%v); want released", c.e.Status(), rec, err)
		}
		c.stop(t)
	})
}

// restorable is one election's record on a memory store that can be
// replaced by an older copy, as an etcd restored from a snapshot would be:
// revisions go back.
type restorable struct {
	mu      sync.Mutex
	cur     *memory.Store
	watches []context.CancelFunc
}

func (r *restorable) store() *memory.Store {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

func (r *restorable) restore(old *memory.Store) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cur = old
	for _, cancel := range r.watches {
		cancel() // the server went away: watches break
	}
	r.watches = nil
}

type restorableClient struct{ r *restorable }

func (c restorableClient) Get(ctx context.Context) (store.Record, error) { return c.r.store().Get(ctx) }
func (c restorableClient) Create(ctx context.Context, rec store.Record) (store.Record, error) {
	return c.r.store().Create(ctx, rec)
}
func (c restorableClient) Update(ctx context.Context, rec store.Record) (store.Record, error) {
	return c.r.store().Update(ctx, rec)
}
func (c restorableClient) Watch(ctx context.Context, after string) (<-chan store.Event, error) {
	wctx, cancel := context.WithCancel(ctx)
	c.r.mu.Lock()
	c.r.watches = append(c.r.watches, cancel)
	cur := c.r.cur
	c.r.mu.Unlock()
	return cur.Watch(wctx, after)
}
func (c restorableClient) String() string { return "restorable" }

// After the store's revisions went back (a restore from a snapshot), the
// candidates take its current state as it is and elect a leader again,
// instead of ignoring every read as older than what they saw.
func TestRevisionsThatGoBackDoNotStopTheElection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The snapshot: a free record at revision 1.
		snapshot := memory.New("restored")
		if _, err := snapshot.Create(context.Background(), store.Record{LeaseDuration: time.Second}); err != nil {
			t.Fatal(err)
		}
		r := &restorable{cur: memory.New("live")}
		chk := electiontest.NewChecker()
		a := startInBubble(t, edgeConfig(restorableClient{r}, "a", nil), chk, 0)
		b := startInBubble(t, edgeConfig(restorableClient{r}, "b", nil), chk, 0)
		time.Sleep(30 * time.Second) // virtual time: a few dozen renewals
		synctest.Wait()
		r.restore(snapshot)
		time.Sleep(2 * time.Minute) // virtual time
		synctest.Wait()
		leaders := 0
		for _, c := range []*bubbleCandidate{a, b} {
			if c.e.Status().IsLeader {
				leaders++
			}
		}
		if leaders != 1 {
			t.Errorf("%d leaders two minutes after the restore; want 1 (a: %+v, b: %+v)", leaders, a.e.Status(), b.e.Status())
		}
		a.stop(t)
		b.stop(t)
	})
}

// A record deleted under its leader (which restores it) and later released
// and deleted again is created at once by its former leader once its
// hold-back ends: the first deletion's holder is not waited out forever.
func TestAnOldDeletionIsForgotten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := memory.New("forget")
		chk := electiontest.NewChecker()
		a := startInBubble(t, edgeConfig(ms, "a", nil), chk, 0)
		leads(t, a)
		ms.Delete()                 // under the leader, which restores it
		time.Sleep(3 * time.Second) // virtual time: restored by the leader
		synctest.Wait()
		resigned := time.Now()
		if err := a.e.Resign(); err != nil {
			t.Fatal(err)
		}
		<-a.ended
		time.Sleep(time.Second) // virtual time
		synctest.Wait()
		ms.Delete() // the released record
		leads(t, a)
		if took := time.Since(resigned); took != 15*time.Second {
			t.Errorf("took the lease again %v after resigning; want exactly its hold-back, 15s", took)
		}
		a.stop(t)
	})
}

// scriptedWatch reports what the test sends instead of the store's events.
type scriptedWatch struct {
	store.Store
	events chan store.Event
}

func (s *scriptedWatch) Watch(ctx context.Context, after string) (<-chan store.Event, error) {
	out := make(chan store.Event)
	go func() {
		defer close(out)
		for {
			select {
			case ev := <-s.events:
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// A deletion reported without a revision (as the file store's watch does)
// after the record was read does not hide the record from later reads.
func TestADeletionWithoutRevisionDoesNotHideTheRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := memory.New("hide")
		// A free record reserved for someone else, who never comes.
		if _, err := ms.Create(context.Background(), store.Record{LeaseDuration: 15 * time.Second, HandoffTo: "z"}); err != nil {
			t.Fatal(err)
		}
		sw := &scriptedWatch{Store: ms, events: make(chan store.Event)}
		a := startInBubble(t, edgeConfig(sw, "a", nil), electiontest.NewChecker(), 0)
		time.Sleep(time.Second) // virtual time
		synctest.Wait()
		sw.events <- store.Event{Deleted: true} // it was not deleted
		leads(t, a)
		a.stop(t)
	})
}

// A holder's lease shortened by a hand edit right after a renewal does not
// let a follower in while the holder still counts on its own deadline.
func TestAShortenedLeaseIsNotTrusted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := memory.New("shortened")
		chk := electiontest.NewChecker()
		ca := &cuttable{Store: ms}
		a := startInBubble(t, edgeConfig(ca, "a", nil), chk, 4*time.Second)
		leads(t, a)
		b := startInBubble(t, edgeConfig(ms, "b", nil), chk, 0)
		time.Sleep(2500 * time.Millisecond) // just after a renewal (virtual)
		synctest.Wait()
		rec, err := ms.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		rec.LeaseDuration = time.Second
		if _, err := ms.Update(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		// a cannot renew any more; b must not act before a's work stopped.
		ca.cut.Store(true)
		leads(t, b)
		synctest.Wait()
		for _, v := range chk.Violations() {
			t.Errorf("violation: %s", v)
		}
		a.stop(t)
		b.stop(t)
	})
}
