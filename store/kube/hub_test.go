package kube

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/incumbent-io/incumbent/store"
)

// scriptedLeases serves the lists and watches a test scripts. The hub's
// bookkeeping across a relist is what is tested here, not concurrency
// control (that is tested against a real API server): a real server
// cannot be made to answer 410 Gone on demand.
type scriptedLeases struct {
	mu      sync.Mutex
	lists   []*coordinationv1.LeaseList
	watches chan *watch.FakeWatcher
	from    []string // the resourceVersion each watch started from
}

func (f *scriptedLeases) List(ctx context.Context, opts metav1.ListOptions) (*coordinationv1.LeaseList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.lists) == 0 {
		return nil, fmt.Errorf("no list scripted")
	}
	l := f.lists[0]
	f.lists = f.lists[1:]
	return l, nil
}

func (f *scriptedLeases) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	w := watch.NewFakeWithChanSize(8, false)
	f.mu.Lock()
	f.from = append(f.from, opts.ResourceVersion)
	f.mu.Unlock()
	f.watches <- w
	return w, nil
}

func lease(name string, rv int, uid string) *coordinationv1.Lease {
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", ResourceVersion: fmt.Sprint(rv), UID: types.UID(uid)}}
}

func leaseList(rv int, items ...*coordinationv1.Lease) *coordinationv1.LeaseList {
	l := &coordinationv1.LeaseList{ListMeta: metav1.ListMeta{ResourceVersion: fmt.Sprint(rv)}}
	for _, it := range items {
		l.Items = append(l.Items, *it)
	}
	return l
}

// told is what a follower of the hub was told, as "name@rv" or "deleted".
type told struct {
	mu  sync.Mutex
	got []string
	ch  chan struct{}
}

func (t *told) fn(ev store.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ev.Deleted {
		t.got = append(t.got, "deleted")
	} else {
		t.got = append(t.got, ev.Record.Version)
	}
	select {
	case t.ch <- struct{}{}:
	default:
	}
}

func (t *told) waitFor(tb testing.TB, n int) []string {
	tb.Helper()
	deadline := time.After(10 * time.Second)
	for {
		t.mu.Lock()
		got := append([]string(nil), t.got...)
		t.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-t.ch:
		case <-deadline:
			tb.Fatalf("told %v, want %d events", got, n)
		}
	}
}

func decodeFor(name string) func(*coordinationv1.Lease) store.Event {
	return func(l *coordinationv1.Lease) store.Event { return store.Event{Record: RecordOf(l)} }
}

// After 410 Gone the hub lists again and tells each subscriber what changed
// meanwhile: a newer state, a deletion, and a deletion followed by the new
// Lease when one was deleted and created again (a new UID). Then it
// watches from the new list's revision.
func TestHubRelistTellsWhatChangedMeanwhile(t *testing.T) {
	f := &scriptedLeases{watches: make(chan *watch.FakeWatcher, 4), lists: []*coordinationv1.LeaseList{
		leaseList(12, lease("a", 10, "ua"), lease("b", 11, "ub"), lease("c", 12, "uc")),
		leaseList(22, lease("a", 20, "ua"), lease("c", 21, "uc2")),
	}}
	h := newHub(f, "ns", false, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	subs := map[string]*told{}
	ended := make(chan error, 3)
	for _, name := range []string{"a", "b", "c"} {
		subs[name] = &told{ch: make(chan struct{}, 1)}
		if err := h.follower(ctx, name, position{current: true}, decodeFor(name), subs[name].fn, func(err error) { ended <- err }); err != nil {
			t.Fatal(err)
		}
	}
	// Each is told its Lease from the first list.
	for name, want := range map[string]string{"a": "10", "b": "11", "c": "12"} {
		if got := subs[name].waitFor(t, 1); got[0] != want {
			t.Fatalf("%s was told %v first, want version %s", name, got, want)
		}
	}
	w := <-f.watches
	w.Modify(lease("a", 13, "ua"))
	if got := subs["a"].waitFor(t, 2); got[1] != "13" {
		t.Fatalf("a was told %v, want version 13 second", got)
	}
	w.Error(&apierrors.NewResourceExpired("too old resource version: 13 (15)").ErrStatus)
	want := map[string][]string{"a": {"10", "13", "20"}, "b": {"11", "deleted"}, "c": {"12", "deleted", "21"}}
	for name, w := range want {
		got := subs[name].waitFor(t, len(w))
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s was told %v, want %v", name, got, w)
		}
	}
	<-f.watches
	f.mu.Lock()
	from := append([]string(nil), f.from...)
	f.mu.Unlock()
	if fmt.Sprint(from) != "[12 22]" {
		t.Errorf("the watches started from %v, want [12 22] (each list's revision)", from)
	}
	// The last subscriber to leave stops the hub.
	cancel()
	for range 3 {
		if err := <-ended; err != nil {
			t.Errorf("a follower ended with %v, want nil after its context ended", err)
		}
	}
	h.mu.Lock()
	running, count := h.running != nil, h.count
	h.mu.Unlock()
	if running || count != 0 {
		t.Errorf("after every subscriber left: running %v, %d subscribers; want stopped", running, count)
	}
}

// A forbidden list ends every subscription with the refusal; without
// fallback the next subscription fails with it at once.
func TestHubRefusalEndsSubscriptions(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "", fmt.Errorf("no list"))
	f := &refusingLeases{err: forbidden}
	h := newHub(f, "ns", false, nil)
	ended := make(chan error, 1)
	if err := h.follower(context.Background(), "a", position{current: true}, decodeFor("a"), func(store.Event) {}, func(err error) { ended <- err }); err != nil {
		t.Fatal(err)
	}
	err := <-ended
	if !apierrors.IsForbidden(err) && !isPermission(err) {
		t.Fatalf("the subscription ended with %v, want the refusal", err)
	}
	if err := h.follower(context.Background(), "b", position{current: true}, decodeFor("b"), func(store.Event) {}, func(error) {}); !isPermission(err) {
		t.Fatalf("a subscription after the refusal: %v, want it refused at once", err)
	}
}

func isPermission(err error) bool { return err != nil && errors.Is(err, store.ErrPermission) }

type refusingLeases struct{ err error }

func (r *refusingLeases) List(context.Context, metav1.ListOptions) (*coordinationv1.LeaseList, error) {
	return nil, r.err
}

func (r *refusingLeases) Watch(context.Context, metav1.ListOptions) (watch.Interface, error) {
	return nil, r.err
}
