package kube_test

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/incumbent-io/incumbent/election/electiontest"
	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/kube"
	"github.com/incumbent-io/incumbent/store/storetest"
)

const namespace = "default"

// The suite against a real API server: every store is a client of its own,
// as separate pods would be; deletions and corruptions are made by an
// administrator's client.
func TestConformance(t *testing.T) {
	admin, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	leases := admin.CoordinationV1().Leases(namespace)
	newStore := func(t *testing.T, name string) store.Store {
		s, err := kube.New(env.Config, namespace, name, kube.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	del := func(t *testing.T, name string) {
		if err := leases.Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("delete lease %s: %v", name, err)
		}
	}
	electiontest.Run(t, newStore, electiontest.WithDelete(del))
	storetest.Run(t, newStore,
		storetest.WithDelete(del),
		// A hand edit the API server accepts but no elector writes: a
		// holder without a lease duration. (The API server itself refuses
		// a zero or negative duration and a negative transitions count.)
		storetest.WithCorrupt(func(t *testing.T, name string) {
			l, err := leases.Get(context.Background(), name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("corrupt lease %s: %v", name, err)
			}
			if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
				t.Fatalf("corrupt lease %s: it has no holder", name)
			}
			l.Spec.LeaseDurationSeconds = nil
			if _, err := leases.Update(context.Background(), l, metav1.UpdateOptions{}); err != nil {
				t.Fatalf("corrupt lease %s: %v", name, err)
			}
		}),
	)
}

// The suite again with every store made by one Client, sharing one
// connection and one watch of the namespace's Leases: the deletions and
// corruptions come from the administrator, as above.
func TestConformanceSharedWatch(t *testing.T) {
	admin, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	leases := admin.CoordinationV1().Leases(namespace)
	for _, mode := range []struct {
		name string
		mode kube.WatchMode
	}{{"namespace", kube.WatchNamespace}, {"auto", kube.WatchAuto}} {
		t.Run(mode.name, func(t *testing.T) {
			c, err := kube.NewClient(env.Config, kube.ClientOptions{Watch: mode.mode})
			if err != nil {
				t.Fatal(err)
			}
			// Under WatchAuto a lone Store watches its own Lease: make
			// sure every store of the suite shares the watch.
			if _, err := c.Store(namespace, "shared-watch-companion"); err != nil {
				t.Fatal(err)
			}
			newStore := func(t *testing.T, name string) store.Store {
				s, err := c.Store(namespace, name)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			del := func(t *testing.T, name string) {
				if err := leases.Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
					t.Fatalf("delete lease %s: %v", name, err)
				}
			}
			electiontest.Run(t, newStore, electiontest.WithDelete(del))
			// A subscriber is told what changed since its version from
			// the shared watch's memory, which holds each Lease's newest
			// state: changes may be merged (never a deletion).
			storetest.Run(t, newStore, storetest.WithDelete(del), storetest.WithCoalescingWatch())
		})
	}
}
