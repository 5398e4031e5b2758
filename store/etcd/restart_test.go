package etcd_test

import (
	"errors"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store/etcd"
)

// The etcd member is stopped (killed, then shut down in order) and started
// again on the same data directory and ports while candidates compete. Each
// time, the leader steps down by its renew deadline because it cannot renew,
// nobody leads while etcd is down, and after the restart leadership resumes
// with a higher fencing token. No two terms ever overlap.
func TestElectionSurvivesEtcdRestart(t *testing.T) {
	srv := startServer(t, nil)
	h := startCandidates(t, 3, srv.Endpoint())
	first, _ := h.leader(30 * time.Second)
	t.Logf("first leader %s with token %d", first.Identity, first.Token)

	for _, halt := range []struct {
		how  string
		stop func() error
	}{{"SIGKILL", srv.Kill}, {"SIGTERM", srv.Stop}} {
		before, _ := h.leader(30 * time.Second)
		started := h.checker.Started()
		down := time.Now()
		if err := halt.stop(); err != nil {
			t.Fatal(err)
		}
		halted := time.Since(down)
		h.waitFor(10*time.Second, "the leader steps down while etcd is down", func() bool { return len(h.checker.Active()) == 0 })
		ended := h.checker.Ended()
		stepDown := ended[len(ended)-1].End.Sub(down)
		if cause := h.lastCause(); !errors.Is(cause, election.ErrRenewDeadline) {
			t.Fatalf("%s: the leader's term ended with %v, want ErrRenewDeadline", halt.how, cause)
		}
		if n := h.checker.Started(); n != started {
			t.Fatalf("%s: %d terms started while etcd was down", halt.how, n-started)
		}

		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		up := time.Now()
		after, _ := h.leader(30 * time.Second)
		if after.Token <= before.Token {
			t.Fatalf("%s: token %d after the restart, not above %d", halt.how, after.Token, before.Token)
		}
		t.Logf("etcd %s (exited after %v): %s (token %d) stepped down %v after the signal (renew deadline %v); etcd was down %v; %s leads with token %d %v after etcd was ready again",
			halt.how, halted.Round(time.Millisecond), before.Identity, before.Token, stepDown.Round(time.Millisecond), quick.RenewDeadline,
			up.Sub(down).Round(time.Millisecond), after.Identity, after.Token, after.Start.Sub(up).Round(time.Millisecond))
	}

	// The followers' watches came back with etcd: a resignation is still
	// handed over.
	cur, term := h.leader(30 * time.Second)
	resigned := time.Now()
	term.Resign()
	h.waitFor(30*time.Second, "a term after the resignation", func() bool {
		active := h.checker.Active()
		return len(active) == 1 && active[0].Token > cur.Token
	})
	next := h.checker.Active()[0]
	t.Logf("after the restarts, %s (token %d) resigned and %s (token %d) leads %v later",
		cur.Identity, cur.Token, next.Identity, next.Token, next.Start.Sub(resigned).Round(10*time.Microsecond))
}

// A watch open while etcd restarts stays open and resumes where it was: the
// first change after the restart arrives on the same channel.
func TestWatchResumesAfterRestart(t *testing.T) {
	srv := startServer(t, nil)
	ctx := testContext(t)
	s := newStore(t, newClient(t, etcd.Config{Endpoints: []string{srv.Endpoint()}}))
	rec, err := s.Create(ctx, held("a", 0))
	if err != nil {
		t.Fatal(err)
	}
	events, err := s.Watch(ctx, rec.Version)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	rec.Holder, rec.Transitions = "b", 1
	if rec, err = s.Update(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev.Err != nil || !sameRecord(ev.Record, rec) {
		t.Fatalf("after the restart the watch delivered %+v, want %+v", ev, rec)
	}
}
