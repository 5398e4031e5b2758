package kube

import (
	"context"
	"slices"
	"sync"
)

// DefaultMaxInFlight is how many requests a Client has in flight at most,
// unless ClientOptions.MaxInFlight says otherwise.
const DefaultMaxInFlight = 32

// inflight bounds the requests a Client has in flight (watches aside), so
// that a herd of elections starting or failing over at once queues in the
// process rather than flooding the API server, and stays on one connection
// (an HTTP/2 connection whose streams run out makes the transport dial
// more). Renewals and releases go first: a leader's renewal must not wait
// behind a thousand acquisitions. Each class waits in order of arrival.
type inflight struct {
	mu     sync.Mutex
	free   int
	urgent []chan struct{}
	normal []chan struct{}
	run    int // urgent grants in a row while others wait
}

// urgentRun is how many urgent requests in a row may go before a waiting
// other one gets a turn: renewals go first, but cannot starve the rest.
const urgentRun = 8

func newInflight(n int) *inflight { return &inflight{free: n} }

// acquire waits for a slot, or for ctx to end. A slot is given back with
// release.
func (f *inflight) acquire(ctx context.Context, urgent bool) error {
	f.mu.Lock()
	if f.free > 0 {
		f.free--
		f.mu.Unlock()
		return nil
	}
	granted := make(chan struct{})
	if urgent {
		f.urgent = append(f.urgent, granted)
	} else {
		f.normal = append(f.normal, granted)
	}
	f.mu.Unlock()
	select {
	case <-granted:
		return nil
	case <-ctx.Done():
	}
	f.mu.Lock()
	queue := &f.normal
	if urgent {
		queue = &f.urgent
	}
	if i := slices.Index(*queue, granted); i >= 0 {
		*queue = slices.Delete(*queue, i, i+1)
		f.mu.Unlock()
		return ctx.Err()
	}
	f.mu.Unlock()
	f.release() // granted as ctx ended: pass it on
	return ctx.Err()
}

// release gives a slot back, to the first urgent waiter, else the first
// other one; after urgentRun urgent ones in a row, to a waiting other one.
func (f *inflight) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	order := []*[]chan struct{}{&f.urgent, &f.normal}
	if f.run >= urgentRun && len(f.normal) > 0 {
		order = []*[]chan struct{}{&f.normal, &f.urgent}
	}
	for _, queue := range order {
		if len(*queue) > 0 {
			next := (*queue)[0]
			*queue = (*queue)[1:]
			if queue == &f.urgent && len(f.normal) > 0 {
				f.run++
			} else {
				f.run = 0
			}
			close(next)
			return
		}
	}
	f.free++
}
