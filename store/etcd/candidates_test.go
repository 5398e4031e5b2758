package etcd_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/election/electiontest"
	"github.com/incumbent-io/incumbent/store/etcd"
)

// Short timings, so that step-downs and take-overs happen within seconds.
var quick = election.Config{
	LeaseDuration: 2 * time.Second,
	RenewDeadline: time.Second,
	RetryPeriod:   250 * time.Millisecond,
	Grace:         500 * time.Millisecond,
}

// candidates are electors competing for one etcd key, each with a client of
// its own, whose terms are recorded by a electiontest.Checker.
type candidates struct {
	t        *testing.T
	endpoint string
	checker  *electiontest.Checker
	wg       sync.WaitGroup

	mu      sync.Mutex
	terms   map[string]*election.Term // terms in progress, by identity
	causes  []error                   // why each ended term ended, in order
	stops   map[string]func()         // ends the Run of each identity
	stopped map[string]chan struct{}  // closed when that Run returned
	changed chan struct{}             // receives a value after terms or causes change
}

// startCandidates starts n electors on the key <prefix>/lease of the etcd
// member at endpoint. At cleanup it stops them, waits for Run to return,
// and fails the test on any overlap of terms or token that did not rise.
func startCandidates(t *testing.T, n int, endpoint string) *candidates {
	t.Helper()
	h := &candidates{t: t, endpoint: endpoint, checker: electiontest.NewChecker(), terms: map[string]*election.Term{},
		stops: map[string]func(){}, stopped: map[string]chan struct{}{}, changed: make(chan struct{}, 1)}
	t.Cleanup(func() {
		h.mu.Lock()
		for _, stop := range h.stops {
			stop()
		}
		h.mu.Unlock()
		all := make(chan struct{})
		go func() { h.wg.Wait(); close(all) }()
		select {
		case <-all:
		case <-time.After(30 * time.Second):
			t.Error("electors did not stop within 30s of their context ending")
			return // leaving goroutines behind rather than hanging
		}
		for _, v := range h.checker.Violations() {
			t.Error(v)
		}
		t.Logf("%d terms, %d violations", len(h.checker.Ended()), len(h.checker.Violations()))
	})
	for i := range n {
		h.add(fmt.Sprintf("candidate-%d", i))
	}
	return h
}

// add starts one more elector with the given identity.
func (h *candidates) add(id string) {
	t := h.t
	t.Helper()
	// The client lives exactly as long as the elector: closed after Run
	// returns, never under a running elector.
	client, err := etcd.NewClient(etcd.Config{Endpoints: []string{h.endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := etcd.New(client, testPrefix(t), "lease")
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	cfg := quick
	cfg.Store, cfg.Identity, cfg.Lead = s, id, h.lead(id)
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	e, err := election.New(cfg)
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	h.mu.Lock()
	h.stops[id], h.stopped[id] = cancel, done
	h.mu.Unlock()
	h.wg.Go(func() {
		defer close(done)
		defer client.Close()
		if err := e.Run(ctx); err != nil {
			t.Errorf("%s: Run: %v", id, err)
		}
	})
}

// stop ends the Run of identity and waits for it to return.
func (h *candidates) stop(id string) {
	h.t.Helper()
	h.mu.Lock()
	stop, done := h.stops[id], h.stopped[id]
	h.mu.Unlock()
	stop()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		h.t.Fatalf("%s: Run did not return within 30s of its context ending", id)
	}
}

// lead records each term of identity from its first to its last moment.
func (h *candidates) lead(identity string) func(*election.Term) {
	return func(term *election.Term) {
		end := h.checker.Begin(identity, term.Token())
		h.update(func() { h.terms[identity] = term })
		<-term.Done()
		h.update(func() {
			delete(h.terms, identity)
			h.causes = append(h.causes, term.Err())
		})
		end()
	}
}

// update changes the recorded terms under the lock and wakes waitFor.
func (h *candidates) update(change func()) {
	h.mu.Lock()
	change()
	h.mu.Unlock()
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

// waitFor waits until cond holds, checking it whenever a term begins or
// ends, and fails the test after timeout. One goroutine waits at a time.
func (h *candidates) waitFor(timeout time.Duration, what string, cond func() bool) {
	h.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-h.checker.Changed():
		case <-h.changed:
		case <-deadline.C:
			h.t.Fatalf("not within %v: %s (active terms %+v)", timeout, what, h.checker.Active())
		}
	}
}

// leader waits for exactly one term in progress and returns it.
func (h *candidates) leader(timeout time.Duration) (electiontest.Term, *election.Term) {
	h.t.Helper()
	var cur electiontest.Term
	var term *election.Term
	h.waitFor(timeout, "one leader", func() bool {
		active := h.checker.Active()
		if len(active) != 1 {
			return false
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		cur, term = active[0], h.terms[active[0].Identity]
		return term != nil
	})
	return cur, term
}

// lastCause says why the latest term ended.
func (h *candidates) lastCause() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.causes) == 0 {
		return nil
	}
	return h.causes[len(h.causes)-1]
}

// testWriter sends the electors' logs to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
