//go:build node

package node

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/test/chaos/checker"
	"github.com/incumbent-io/incumbent/test/node/kubenode"
)

// resource is the fenced resource the tier's workloads write to: the chaos
// harness's checker, served on the node's bridge for pods, plus the exit
// reports of the status-API application.
type resource struct {
	*checker.Checker
	URL string

	mu    sync.Mutex
	exits map[string]string // pod → "up" or "down": its sidecar after it stopped
}

func newResource(t *testing.T) *resource {
	t.Helper()
	ln, err := kubenode.ListenFreebind(net.JoinHostPort(kubenode.HostIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	r := &resource{Checker: checker.New(checker.Options{Fencing: true}), exits: map[string]string{},
		URL: "http://" + net.JoinHostPort(kubenode.HostIP, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /exit", func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.exits[req.URL.Query().Get("id")] = req.URL.Query().Get("sidecar")
	})
	mux.Handle("/", r.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return r
}

// exit returns what the pod's application reported at its exit.
func (r *resource) exit(pod string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.exits[pod]
	return v, ok
}

// current returns the term in office (begun, not ended), if any.
func (r *resource) current() (checker.Term, bool) {
	terms := r.Terms()
	for i := len(terms) - 1; i >= 0; i-- {
		if !terms[i].Ended() {
			return terms[i], true
		}
	}
	return checker.Term{}, false
}

// awaitTerm waits until a term other than after's is in office, by a
// different identity when notBy is set.
func (r *resource) awaitTerm(t *testing.T, d time.Duration, after int64, notBy string) checker.Term {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		changed := r.Changed()
		if cur, ok := r.current(); ok && cur.Token > after && cur.Identity != notBy {
			return cur
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no new term within %v (after token %d, not by %q); terms: %+v", d, after, notBy, r.Terms())
		}
	}
}

// verify fails the test on any overlap of terms, token out of order, stale
// write or protocol error the checker found.
func (r *resource) verify(t *testing.T) {
	t.Helper()
	rep := r.Report()
	for _, o := range rep.Overlaps {
		t.Errorf("terms overlap for %v: %s (token %d) and %s (token %d)", o.For, o.Older.Identity, o.Older.Token, o.Newer.Identity, o.Newer.Token)
	}
	for _, s := range rep.Stale {
		t.Errorf("stale write: %s with token %d after token %d", s.Identity, s.Token, s.Highest)
	}
	for _, o := range rep.OutOfOrder {
		t.Errorf("token out of order: %s began with token %d", o.Identity, o.Token)
	}
	for _, p := range rep.Protocol {
		t.Errorf("protocol: %s", p)
	}
	if rep.Terms == 0 {
		t.Error("no term began")
	}
}
