package election_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/election/electiontest"
	"github.com/incumbent-io/incumbent/store/memory"
)

// switchable is a health check the test turns on and off; it counts calls.
type switchable struct {
	mu    sync.Mutex
	err   error
	hang  bool
	calls int
}

func (s *switchable) set(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *switchable) hangs(h bool) {
	s.mu.Lock()
	s.hang = h
	s.mu.Unlock()
}

func (s *switchable) check(ctx context.Context) error {
	s.mu.Lock()
	s.calls++
	err, hang := s.err, s.hang
	s.mu.Unlock()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

var errBroken = errors.New("injected: 503 from the workload")

func healthConfig(ms *memory.Store, id string, h *switchable, onlyLeading bool) election.Config {
	cfg := edgeConfig(ms, id, nil)
	cfg.Health = &election.Health{Check: h.check, OnlyWhileLeading: onlyLeading} // defaults: 2s, 1s, 3 failures, 2 passes
	return cfg
}

// A leader whose check fails three times in a row steps down (its term ends
// with ErrUnhealthy) within threshold × period; a healthy candidate takes
// over; the unhealthy one holds back, saying why, and does not take the
// lease back while unhealthy. Once its check passes twice in a row it
// campaigns again.
func TestUnhealthyLeaderStepsDownAndHoldsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := memory.New("health")
		chk := electiontest.NewChecker()
		ha, hb := &switchable{}, &switchable{}
		a := startInBubble(t, healthConfig(ms, "a", ha, false), chk, 0)
		leads(t, a)
		b := startInBubble(t, healthConfig(ms, "b", hb, false), chk, 0)
		stateOf(t, b, "b following", func(s election.Status) bool { return s.State == election.StateFollowing })

		broke := time.Now()
		ha.set(errBroken)
		if why := <-a.ended; !errors.Is(why, election.ErrUnhealthy) || !strings.Contains(why.Error(), "503") {
			t.Errorf("a's term ended with %v; want ErrUnhealthy naming the failure", why)
		}
		stepDown := <-a.endAt
		// Checks at +0 (passed), then failures at about +2, +4, +6.
		if d := stepDown.Sub(broke); d > 3*election.DefaultHealthPeriod {
			t.Errorf("a stepped down %v after its check began failing; want within threshold × period (%v)", d, 3*election.DefaultHealthPeriod)
		}
		leads(t, b)
		s := stateOf(t, a, "a held back by health", func(s election.Status) bool { return s.State == election.StateHeldBack })
		if !strings.Contains(s.Reason, "unhealthy") || !strings.Contains(s.Reason, "503") {
			t.Errorf("a's reason: %q; want it to name the failing check", s.Reason)
		}
		// b resigns: the lease is free, but a, unhealthy, does not take it;
		// b takes it again after its hold-back.
		if err := b.e.Resign(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute) // virtual time
		synctest.Wait()
		if a.e.Status().IsLeader || !b.e.Status().IsLeader {
			t.Errorf("a minute after b resigned: a %+v, b %+v; want b leading again, a held back", a.e.Status(), b.e.Status())
		}
		// a recovers: after two passes it follows again (eligible).
		ha.set(nil)
		stateOf(t, a, "a following again", func(s election.Status) bool { return s.State == election.StateFollowing })
		for _, v := range chk.Violations() {
			t.Errorf("violation: %s", v)
		}
	})
}

// When every candidate is unhealthy nobody leads, and each says why;
// leadership resumes as soon as one is healthy. A candidate starts
// unhealthy: it campaigns only after its check passed.
func TestNobodyLeadsWhileAllAreUnhealthy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := memory.New("all-unhealthy")
		chk := electiontest.NewChecker()
		ha, hb := &switchable{err: errBroken}, &switchable{err: errBroken}
		a := startInBubble(t, healthConfig(ms, "a", ha, false), chk, 0)
		b := startInBubble(t, healthConfig(ms, "b", hb, false), chk, 0)
		time.Sleep(time.Minute) // virtual time
		synctest.Wait()
		if chk.Started() != 0 {
			t.Fatalf("%d terms while every candidate was unhealthy", chk.Started())
		}
		for _, c := range []*bubbleCandidate{a, b} {
			if s := c.e.Status(); s.State != election.StateHeldBack || !strings.Contains(s.Reason, "unhealthy") {
				t.Errorf("%s: %q (%s); want held back, unhealthy", s.Identity, s.State, s.Reason)
			}
		}
		healed := time.Now()
		hb.set(nil)
		leads(t, b)
		synctest.Wait()
		if d := chk.Active()[0].Start.Sub(healed); d > 2*election.DefaultHealthPeriod {
			t.Errorf("b led %v after its check began passing; want within success threshold × period (%v)", d, 2*election.DefaultHealthPeriod)
		}
	})
}

// A check that flaps (fails, passes, fails, ...) never makes an unhealthy
// candidate healthy (two passes in a row are needed), so leadership does
// not ping-pong; a check that hangs fails at its timeout.
func TestFlappingAndHangingChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := memory.New("flap")
		chk := electiontest.NewChecker()
		flappy := &flapping{}
		cfg := edgeConfig(ms, "a", nil)
		cfg.Health = &election.Health{Check: flappy.check}
		a := startInBubble(t, cfg, chk, 0)
		time.Sleep(5 * time.Minute) // virtual time
		synctest.Wait()
		if chk.Started() != 0 {
			t.Errorf("%d terms with a flapping check; want none", chk.Started())
		}
		_ = a

		hanging := &switchable{}
		hanging.hangs(true)
		cfg = edgeConfig(memory.New("hang"), "h", nil)
		cfg.Health = &election.Health{Check: hanging.check}
		h := startInBubble(t, cfg, chk, 0)
		s := stateOf(t, h, "held back", func(s election.Status) bool { return s.State == election.StateHeldBack })
		time.Sleep(time.Minute) // virtual time
		synctest.Wait()
		if s = h.e.Status(); s.IsLeader || !strings.Contains(s.Reason, "unhealthy") {
			t.Errorf("a candidate whose check hangs: %+v; want held back", s)
		}
	})
}

// flapping fails every other call.
type flapping struct {
	mu sync.Mutex
	n  int
}

func (f *flapping) check(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if f.n%2 == 0 {
		return errBroken
	}
	return nil
}

// With OnlyWhileLeading (work that runs only while leading), followers
// campaign whatever; a leader whose work fails steps down.
func TestHealthOnlyWhileLeading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := memory.New("only-leading")
		chk := electiontest.NewChecker()
		ha := &switchable{err: errBroken} // would fail, but is not asked while following
		a := startInBubble(t, healthConfig(ms, "a", ha, true), chk, 0)
		leads(t, a)
		if why := <-a.ended; !errors.Is(why, election.ErrUnhealthy) {
			t.Errorf("term ended with %v; want ErrUnhealthy", why)
		}
	})
}
