package election_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/incumbent-io/incumbent/election/electiontest"
	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/memory"
)

// attempts records when each renewal (an Update naming a holder) was sent,
// and whether it failed.
type attempts struct {
	*cuttable
	mu  sync.Mutex
	log []attempt
}

type attempt struct {
	at     time.Time
	failed bool
}

func (a *attempts) Update(ctx context.Context, r store.Record) (store.Record, error) {
	sent := time.Now()
	rec, err := a.cuttable.Update(ctx, r)
	a.mu.Lock()
	if r.Held() { // a renewal, not the release
		a.log = append(a.log, attempt{sent, err != nil})
	}
	a.mu.Unlock()
	return rec, err
}

func (a *attempts) since(t0 time.Time) []attempt {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []attempt
	for _, x := range a.log {
		if !x.at.Before(t0) {
			out = append(out, x)
		}
	}
	return out
}

// A leader renews every RenewInterval while its renewals succeed, and every
// RetryPeriod once one failed; its term still ends exactly RenewDeadline
// after the last successful renewal was sent.
func TestRenewIntervalPacesRenewalsAndRetryPeriodTheRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &attempts{cuttable: &cuttable{Store: memory.New("renew-interval")}}
		chk := electiontest.NewChecker()
		cfg := edgeConfig(st, "leader", nil)
		cfg.RenewInterval = 6 * time.Second // the most RenewDeadline 10s and RetryPeriod 2s allow, less 2s
		l := startInBubble(t, cfg, chk, 0)
		leads(t, l)
		synctest.Wait() // the first renewal, sent at once
		t0 := time.Now()
		time.Sleep(20 * time.Second) // virtual time: three renewals
		synctest.Wait()
		st.cut.Store(true)
		lastSent := st.sentLast()
		<-l.ended
		ended := <-l.endAt
		l.stop(t)

		log := st.since(t0.Add(time.Millisecond))
		var ok, failed []time.Duration
		for _, a := range log {
			if !a.at.Before(ended) {
				continue // after the term: a new campaign's attempt
			}
			if a.failed {
				failed = append(failed, a.at.Sub(lastSent))
			} else {
				ok = append(ok, a.at.Sub(t0))
			}
		}
		if want := []time.Duration{6 * time.Second, 12 * time.Second, 18 * time.Second}; !equal(ok, want) {
			t.Errorf("successful renewals at %v after the first; want %v (every RenewInterval)", ok, want)
		}
		// The last success was sent at 18s; the next attempt 6s later fails,
		// then one retry every RetryPeriod until the deadline at +10s.
		if want := []time.Duration{6 * time.Second, 8 * time.Second}; !equal(failed, want) {
			t.Errorf("failed renewals at %v after the last success; want %v (RenewInterval, then every RetryPeriod)", failed, want)
		}
		if got := ended.Sub(lastSent); got != 10*time.Second {
			t.Errorf("the term ended %v after the last successful renewal was sent; want exactly RenewDeadline (10s)", got)
		}
	})
}

func equal(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
