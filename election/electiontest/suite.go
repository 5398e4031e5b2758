package electiontest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store"
)

// Short timings, valid for election.Config.Validate:
// 1s*1.01 + 0.5s = 1.51s < 2s*0.99 = 1.98s, and 2*250ms <= 1s.
const (
	leaseDuration = 2 * time.Second
	renewDeadline = time.Second
	retryPeriod   = 250 * time.Millisecond
	grace         = 500 * time.Millisecond
)

// waitTimeout bounds every wait for an election to make progress.
const waitTimeout = 2 * time.Minute

// testWriter sends log lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func config(t *testing.T, st store.Store, id string, lead func(*election.Term)) election.Config {
	return election.Config{
		Store:         st,
		Identity:      id,
		LeaseDuration: leaseDuration,
		RenewDeadline: renewDeadline,
		RetryPeriod:   retryPeriod,
		Grace:         grace,
		Lead:          lead,
		Logger:        slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
}

// candidate is one running elector.
type candidate struct {
	id      string
	elector *election.Elector
	cancel  context.CancelFunc
	done    chan error
	once    sync.Once
}

// start runs an elector until stop (or the end of the test).
func start(t *testing.T, cfg election.Config) *candidate {
	t.Helper()
	e, err := election.New(cfg)
	if err != nil {
		t.Fatalf("election.New(%s): %v", cfg.Identity, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &candidate{id: cfg.Identity, elector: e, cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- e.Run(ctx) }()
	t.Cleanup(func() { c.stop(t) })
	return c
}

// stop ends the elector's Run and waits for it to return.
func (c *candidate) stop(t *testing.T) {
	c.once.Do(func() {
		c.cancel()
		select {
		case err := <-c.done:
			if err != nil {
				t.Errorf("candidate %s: Run: %v", c.id, err)
			}
		case <-time.After(waitTimeout):
			t.Errorf("candidate %s: Run did not return within %v of its context ending", c.id, waitTimeout)
		}
	})
}

// waitStatus waits until the candidate's status satisfies ok.
func waitStatus(t *testing.T, c *candidate, what string, ok func(election.Status) bool) {
	t.Helper()
	statuses, cancel := c.elector.Subscribe()
	defer cancel()
	deadline := time.After(waitTimeout)
	for {
		select {
		case st := <-statuses:
			if ok(st) {
				return
			}
		case <-deadline:
			t.Fatalf("candidate %s: no status with %s within %v; last %+v", c.id, what, waitTimeout, c.elector.Status())
		}
	}
}

// checkTerms reports the checker's violations and, in start order, that
// tokens rise; it returns the ended terms in start order.
func checkTerms(t *testing.T, checker *Checker) []Term {
	t.Helper()
	for _, v := range checker.Violations() {
		t.Errorf("violation: %s", v)
	}
	if active := checker.Active(); len(active) > 0 {
		t.Errorf("terms still active after every candidate stopped: %+v", active)
	}
	terms := checker.Ended()
	slices.SortFunc(terms, func(a, b Term) int { return a.Start.Compare(b.Start) })
	for i := 1; i < len(terms); i++ {
		if terms[i].Token <= terms[i-1].Token {
			t.Errorf("term %d (%s) has token %d, not above term %d's (%s) %d", i, terms[i].Identity, terms[i].Token, i-1, terms[i-1].Identity, terms[i-1].Token)
		}
		if terms[i].Start.Before(terms[i-1].End) {
			t.Errorf("term %d (%s) started at %s, before term %d (%s) ended at %s", i, terms[i].Identity,
				terms[i].Start.Format(time.StampMicro), i-1, terms[i-1].Identity, terms[i-1].End.Format(time.StampMicro))
		}
	}
	return terms
}

// summary formats the spread of a set of durations.
func summary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	q := func(p float64) time.Duration { return ds[int(p*float64(len(ds)-1))] }
	return fmt.Sprintf("n=%d min=%v p50=%v p90=%v max=%v", len(ds), ds[0], q(0.5), q(0.9), ds[len(ds)-1])
}

// Candidates resign after a short random hold; every term must begin after
// the previous one ended, with a higher token.
func (s *suite) testMutualExclusion(t *testing.T) {
	const candidates, wantHandOvers = 5, 20
	n := name(t, "mutual-exclusion")
	checker := NewChecker()
	var all []*candidate
	for i := range candidates {
		id := fmt.Sprintf("cand-%d", i)
		all = append(all, start(t, config(t, s.newStore(t, n), id, func(term *election.Term) {
			end := checker.Begin(term.Identity(), term.Token())
			defer end()
			hold := time.NewTimer(time.Duration(5+rand.IntN(40)) * time.Millisecond)
			defer hold.Stop()
			select {
			case <-term.Done():
			case <-hold.C:
			}
		})))
	}
	handOvers := func() int {
		terms := checker.Ended()
		slices.SortFunc(terms, func(a, b Term) int { return a.Start.Compare(b.Start) })
		changes := 0
		for i := 1; i < len(terms); i++ {
			if terms[i].Identity != terms[i-1].Identity {
				changes++
			}
		}
		return changes
	}
	began := time.Now()
	deadline := time.After(waitTimeout)
	for handOvers() < wantHandOvers && len(checker.Violations()) == 0 {
		select {
		case <-checker.Changed():
		case <-deadline:
			t.Fatalf("only %d hand-overs between candidates within %v (%d terms)", handOvers(), waitTimeout, checker.Started())
		}
	}
	elapsed := time.Since(began)
	for _, c := range all {
		c.stop(t)
	}
	terms := checkTerms(t, checker)
	var gaps []time.Duration
	holders := map[string]bool{}
	for i, term := range terms {
		holders[term.Identity] = true
		if i > 0 && term.Identity != terms[i-1].Identity {
			gaps = append(gaps, term.Start.Sub(terms[i-1].End))
		}
	}
	if len(holders) < 2 {
		t.Errorf("only %d candidate(s) ever led", len(holders))
	}
	t.Logf("%d terms, %d hand-overs among %d candidates in %v; gap from one term's end to the next one's start: %s",
		len(terms), len(gaps), len(holders), elapsed.Round(time.Millisecond), summary(gaps))
}

// leadEvent reports the start of a term.
type leadEvent struct {
	id       string
	term     *election.Term
	began    time.Time
	opsSoFar int // length of the op log when the term began
}

// A leader shuts down (its context ends) or transfers the lease; the
// follower takes it through its watch, without a single Get between the
// release and its own acquisition.
func (s *suite) testGracefulHandOver(t *testing.T) {
	const rounds = 6
	n := name(t, "graceful-hand-over")
	checker := NewChecker()
	log := &opLog{}
	started := make(chan leadEvent, rounds+2)
	seq := 0
	launch := func(id string) *candidate {
		seq++
		who := fmt.Sprintf("%s#%d", id, seq)
		st := &recorded{Store: s.newStore(t, n), who: who, log: log}
		c := start(t, config(t, st, id, func(term *election.Term) {
			end := checker.Begin(term.Identity(), term.Token())
			defer end()
			started <- leadEvent{id: who, term: term, began: time.Now(), opsSoFar: log.len()}
			<-term.Done()
		}))
		c.id = who
		return c
	}
	waitLead := func() leadEvent {
		t.Helper()
		select {
		case ev := <-started:
			return ev
		case <-time.After(waitTimeout):
			t.Fatalf("no candidate took the lease within %v", waitTimeout)
		}
		return leadEvent{}
	}

	leader := launch("a")
	if ev := waitLead(); ev.id != leader.id {
		t.Fatalf("%s led, want %s", ev.id, leader.id)
	}
	follower := launch("b")
	var latencies []time.Duration
	for round := range rounds {
		// The follower is in its steady state: it knows the leader, its
		// watch is established, and the leader has renewed twice since
		// (beyond the renewal that records its term right after it
		// acquired), so the reads of its start are long done.
		leaderID := leader.elector.Status().Identity
		waitStatus(t, follower, "leader "+leaderID, func(st election.Status) bool { return st.Known && st.Leader == leaderID })
		steady := log.await(func(ops []op) bool {
			watching := slices.IndexFunc(ops, func(o op) bool { return o.who == follower.id && o.kind == "watch" && o.ok })
			if watching < 0 {
				return false
			}
			renewals := 0
			for _, o := range ops[watching+1:] {
				if o.who == leader.id && o.kind == "update" && o.holder == leaderID && o.ok {
					renewals++
				}
			}
			return renewals >= 3
		}, waitTimeout)
		if !steady {
			t.Fatalf("round %d: within %v, the follower %s established no watch or the leader %s did not renew twice after", round, waitTimeout, follower.id, leader.id)
		}
		how := "shutdown"
		if round%2 == 1 {
			how = "transfer"
			if err := leader.elector.Transfer(follower.elector.Status().Identity); err != nil {
				t.Fatalf("round %d: Transfer: %v", round, err)
			}
		} else {
			leader.stop(t)
		}
		ev := waitLead()
		if ev.id != follower.id {
			t.Fatalf("round %d (%s): %s took the lease, want %s", round, how, ev.id, follower.id)
		}
		// A call is logged when it is sent and marked ok when it returns: the
		// leader's release may still be on its way back when the follower,
		// told of it by its watch, has already acquired. Wait for the
		// leader's calls sent before the new term began to return.
		if !log.await(func(all []op) bool {
			for _, o := range all[:ev.opsSoFar] {
				if o.who == leader.id && !o.done {
					return false
				}
			}
			return true
		}, waitTimeout) {
			t.Fatalf("round %d (%s): a store call of the leader %s did not return within %v", round, how, leader.id, waitTimeout)
		}
		ops := log.snapshot()[:ev.opsSoFar]
		acquired, released := -1, -1
		for i := len(ops) - 1; i >= 0 && released < 0; i-- {
			o := ops[i]
			switch {
			case acquired < 0 && o.who == follower.id && o.ok && (o.kind == "create" || o.kind == "update") && o.holder != "":
				acquired = i
			case acquired >= 0 && o.who == leader.id && o.ok && o.kind == "update" && o.holder == "":
				released = i
			}
		}
		if released < 0 {
			t.Fatalf("round %d (%s): cannot find the release by %s and the acquisition by %s in the store calls:\n%s", round, how, leader.id, follower.id, formatOps(ops))
		}
		for _, o := range ops[released+1 : acquired] {
			if o.who == follower.id && o.kind == "get" {
				t.Errorf("round %d (%s): the follower %s read the record between the release and its acquisition; the watch must suffice:\n%s",
					round, how, follower.id, formatOps(ops[released:acquired+1]))
				break
			}
		}
		latency := ev.began.Sub(ops[released].at)
		latencies = append(latencies, latency)
		t.Logf("round %d (%s): %s -> %s, from the release being sent to the new term starting: %v", round, how, leader.id, follower.id, latency)
		if how == "shutdown" {
			leader, follower = follower, launch(strings.Split(leader.id, "#")[0])
		} else {
			leader, follower = follower, leader
		}
	}
	leader.stop(t)
	follower.stop(t)
	checkTerms(t, checker)
	t.Logf("graceful hand-over, from the release being sent to the new term starting: %s", summary(latencies))
}

// formatOps lists store calls for a failure message.
func formatOps(ops []op) string {
	var b strings.Builder
	for _, o := range ops {
		fmt.Fprintf(&b, "  %s %s %s holder=%q ok=%v\n", o.at.Format(time.StampMicro), o.who, o.kind, o.holder, o.ok)
	}
	return b.String()
}

// The leader loses the ability to write, as if its process hung or lost its
// network; the follower takes over no earlier than LeaseDuration after the
// last successful renewal was sent, and only after the old term ended.
func (s *suite) testCrashTakeOver(t *testing.T) {
	n := name(t, "crash-take-over")
	checker := NewChecker()
	started := make(chan leadEvent, 4)
	ended := make(chan error, 4)
	launch := func(id string, st store.Store) *candidate {
		return start(t, config(t, st, id, func(term *election.Term) {
			end := checker.Begin(term.Identity(), term.Token())
			defer end()
			started <- leadEvent{id: id, term: term, began: time.Now()}
			<-term.Done()
			ended <- term.Err()
		}))
	}
	waitLead := func(want string) leadEvent {
		t.Helper()
		select {
		case ev := <-started:
			if ev.id != want {
				t.Fatalf("%s took the lease, want %s", ev.id, want)
			}
			return ev
		case <-time.After(waitTimeout):
			t.Fatalf("%s did not take the lease within %v", want, waitTimeout)
		}
		return leadEvent{}
	}

	broken := &faulty{Store: s.newStore(t, n)}
	leader := launch("a", broken)
	first := waitLead("a")
	follower := launch("b", s.newStore(t, n))
	waitStatus(t, follower, "leader a", func(st election.Status) bool { return st.Known && st.Leader == "a" })
	// Let the leader renew at least once with the follower watching.
	select {
	case <-broken.succeeded():
	case <-time.After(waitTimeout):
		t.Fatalf("the leader did not renew within %v", waitTimeout)
	}
	broken.broken.Store(true)
	brokeAt := time.Now()

	var endErr error
	select {
	case endErr = <-ended:
	case <-time.After(waitTimeout):
		t.Fatalf("the leader's term did not end within %v of its writes failing", waitTimeout)
	}
	if !errors.Is(endErr, election.ErrRenewDeadline) {
		t.Errorf("the leader's term ended with %v, want %v", endErr, election.ErrRenewDeadline)
	}
	second := waitLead("b")
	lastOK := broken.lastSuccess()
	if earliest := lastOK.Add(leaseDuration); second.term.AcquiredAt().Before(earliest) {
		t.Errorf("the follower sent its winning write at %s, %v before the leader's lease could have expired (last renewal sent at %s + %v)",
			second.term.AcquiredAt().Format(time.StampMicro), earliest.Sub(second.term.AcquiredAt()), lastOK.Format(time.StampMicro), leaseDuration)
	}
	if second.term.Token() <= first.term.Token() {
		t.Errorf("the new term's token %d is not above the crashed leader's %d", second.term.Token(), first.term.Token())
	}
	follower.stop(t)
	leader.stop(t)
	checkTerms(t, checker)
	t.Logf("crash take-over: the follower's winning write was sent %v after the leader's last successful renewal was sent (lease duration %v); its term began %v after the leader's writes started failing",
		second.term.AcquiredAt().Sub(lastOK).Round(time.Millisecond), leaseDuration, second.began.Sub(brokeAt).Round(time.Millisecond))
}

// A candidate leads and stops (releasing the lease), the record is deleted,
// and a candidate that never saw it takes over: its token is above every
// token before the deletion, and no token is below 1.
func (s *suite) testTokensRiseAcrossDeletion(t *testing.T) {
	n := name(t, "tokens-across-deletion")
	checker := NewChecker()
	started := make(chan *election.Term, 2)
	lead := func(term *election.Term) {
		end := checker.Begin(term.Identity(), term.Token())
		defer end()
		started <- term
		<-term.Done()
	}
	first := start(t, config(t, s.newStore(t, n), "a", lead))
	var before *election.Term
	select {
	case before = <-started:
	case <-time.After(waitTimeout):
		t.Fatalf("no term within %v", waitTimeout)
	}
	first.stop(t)
	s.delete(t, n)
	second := start(t, config(t, s.newStore(t, n), "b", lead))
	var after *election.Term
	select {
	case after = <-started:
	case <-time.After(waitTimeout):
		t.Fatalf("no term after the deletion within %v", waitTimeout)
	}
	second.stop(t)
	if before.Token() < 1 {
		t.Errorf("the first token is %d; tokens start at 1", before.Token())
	}
	if after.Token() <= before.Token() {
		t.Errorf("the token after the deletion (%d) is not above the one before it (%d)", after.Token(), before.Token())
	}
	checkTerms(t, checker)
}
