package etcd_test

import (
	"testing"

	"github.com/incumbent-io/incumbent/election/electiontest"
	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/etcd"
	"github.com/incumbent-io/incumbent/store/storetest"
)

// The shared conformance suite, against the real etcd member: each store
// has a client of its own, as separate processes would.
func TestConformance(t *testing.T) { conformance(t) }

// The same with the fence key kept: it changes nothing the suite sees.
func TestConformanceWithTheFenceKey(t *testing.T) { conformance(t, etcd.WithFenceKey()) }

func conformance(t *testing.T, opts ...etcd.Option) {
	prefix := testPrefix(t)
	key := func(name string) string { return prefix + "/" + name }
	newStore := func(t *testing.T, name string) store.Store {
		s, err := etcd.New(sharedClient(t), prefix, name, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	del := func(t *testing.T, name string) {
		if _, err := sharedClient(t).Delete(testContext(t), key(name)); err != nil {
			t.Fatal(err)
		}
	}
	electiontest.Run(t, newStore, electiontest.WithDelete(del))
	storetest.Run(t, newStore,
		storetest.WithDelete(del),
		storetest.WithCorrupt(func(t *testing.T, name string) {
			if _, err := sharedClient(t).Put(testContext(t), key(name), `{"format":1,"holder":`); err != nil {
				t.Fatal(err)
			}
		}),
	)
}
