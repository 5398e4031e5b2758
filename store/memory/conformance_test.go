package memory_test

import (
	"context"
	"sync"
	"testing"

	"github.com/incumbent-io/incumbent/election/electiontest"
	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/memory"
	"github.com/incumbent-io/incumbent/store/storetest"
)

// One memory.Store per election name stands for the shared record; every
// "client" of that name gets the same Store.
func TestConformance(t *testing.T) {
	var mu sync.Mutex
	stores := map[string]*memory.Store{}
	get := func(name string) *memory.Store {
		mu.Lock()
		defer mu.Unlock()
		s, ok := stores[name]
		if !ok {
			s = memory.New(name)
			stores[name] = s
		}
		return s
	}
	newStore := func(t *testing.T, name string) store.Store { return get(name) }
	del := func(t *testing.T, name string) { get(name).Delete() }
	electiontest.Run(t, newStore, electiontest.WithDelete(del))
	storetest.Run(t, newStore,
		storetest.WithDelete(del),
		// The memory store keeps whatever it is given: write a record
		// that Validate rejects, as a bad hand edit would.
		storetest.WithCorrupt(func(t *testing.T, name string) {
			s := get(name)
			rec, err := s.Get(context.Background())
			if err != nil {
				t.Fatalf("corrupt: %v", err)
			}
			rec.LeaseDuration = -rec.LeaseDuration
			if _, err := s.Update(context.Background(), rec); err != nil {
				t.Fatalf("corrupt: %v", err)
			}
		}),
	)
}
