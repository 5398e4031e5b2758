package healthcheck

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A workload's endpoint that answers only when told to, counting requests.
type gatedEndpoint struct {
	requests atomic.Int32
	arrived  chan struct{} // one value per request, as it arrives
	release  chan int      // the status of the next answer
}

func newGatedEndpoint(t *testing.T) (*gatedEndpoint, func(context.Context) error) {
	t.Helper()
	g := &gatedEndpoint{arrived: make(chan struct{}, 16), release: make(chan int)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.requests.Add(1)
		g.arrived <- struct{}{}
		select {
		case code := <-g.release:
			w.WriteHeader(code)
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	check, err := HTTP(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	return g, check
}

func (g *gatedEndpoint) answer(t *testing.T, code int) {
	t.Helper()
	select {
	case <-g.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no health check arrived")
	}
	select {
	case g.release <- code:
	case <-time.After(10 * time.Second):
		t.Fatal("the health check went away before its answer")
	}
}

// Candidates of several leases calling at once get one check's answer; a
// call within maxAge of it gets the same answer without a request; a call
// after maxAge checks again.
func TestSharedChecksOncePerPeriod(t *testing.T) {
	g, check := newGatedEndpoint(t)
	now := time.Now()
	var mu sync.Mutex
	s := &shared{check: check, maxAge: time.Second, timeout: 10 * time.Second,
		now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }}
	const callers = 5
	errs := make(chan error, callers)
	for range callers {
		go func() { errs <- s.call(context.Background()) }()
	}
	g.answer(t, http.StatusServiceUnavailable)
	var first error
	for range callers {
		err := <-errs
		if err == nil || !strings.Contains(err.Error(), "503") {
			t.Errorf("a caller got %v, want the 503 every caller shares", err)
		}
		first = err
	}
	if err := s.call(context.Background()); !errors.Is(err, first) && (err == nil || err.Error() != first.Error()) {
		t.Errorf("a call within maxAge got %v, want the last answer %v", err, first)
	}
	if n := g.requests.Load(); n != 1 {
		t.Errorf("%d callers made %d requests, want 1", callers+1, n)
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- s.call(context.Background()) }()
	g.answer(t, http.StatusOK)
	if err := <-done; err != nil {
		t.Errorf("the check after maxAge: %v, want it to pass", err)
	}
	if n := g.requests.Load(); n != 2 {
		t.Errorf("%d requests after maxAge, want 2", n)
	}
}

// A caller that goes away returns at once; the check goes on for the
// others, who get its answer.
func TestSharedCallerLeavesAlone(t *testing.T) {
	g, check := newGatedEndpoint(t)
	call := Shared(check, time.Second, 10*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	left := make(chan error, 1)
	go func() { left <- call(ctx) }()
	<-g.arrived // the check is under way
	stays := make(chan error, 1)
	go func() { stays <- call(context.Background()) }()
	cancel()
	if err := <-left; !errors.Is(err, context.Canceled) {
		t.Errorf("the caller that left got %v, want context.Canceled", err)
	}
	select {
	case g.release <- http.StatusOK:
	case <-time.After(10 * time.Second):
		t.Fatal("the check ended with the caller that left")
	}
	if err := <-stays; err != nil {
		t.Errorf("the caller that stayed got %v, want the check's pass", err)
	}
}

// A check that does not answer within the timeout fails, for every caller.
func TestSharedTimeout(t *testing.T) {
	_, check := newGatedEndpoint(t)
	call := Shared(check, time.Second, 50*time.Millisecond)
	if err := call(context.Background()); err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("a check past its timeout: %v, want a deadline error", err)
	}
}
