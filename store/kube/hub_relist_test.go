package kube

import (
	"context"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/watch"
)

// A Watch from a version the shared watch has not seen yet (the Store read
// it itself, just after it was written) must still be told of the Lease's
// deletion when a relist after 410 Gone finds it gone: the relist compares
// only the hub's old cache (which never held that version) with the new
// list, so the deletion is hidden and the subscriber believes forever that
// the Lease exists.
func TestHubRelistTellsADeletionItNeverSaw(t *testing.T) {
	f := &scriptedLeases{watches: make(chan *watch.FakeWatcher, 4), lists: []*coordinationv1.LeaseList{
		leaseList(10), // "a" does not exist yet at the hub's first list
		leaseList(20), // after 410: "a" was created (rv 12) and deleted (rv 15) meanwhile
	}}
	h := newHub(f, "ns", false, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A subscriber that read "a" at 12 itself (Get), before the hub saw it.
	ch, err := h.subscribe(ctx, "a", position{rev: 12, uid: "ua", exists: true}, decodeFor("a"))
	if err != nil {
		t.Fatal(err)
	}
	w := <-f.watches
	w.Error(&apierrors.NewResourceExpired("too old resource version: 10 (16)").ErrStatus)
	<-f.watches // the watch after the relist: the relist is done
	select {
	case ev, ok := <-ch:
		if !ok || !ev.Deleted {
			t.Fatalf("told %+v (open %v), want the deletion", ev, ok)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("after the relist found the Lease gone, the subscriber that knew it at rv 12 was told nothing: the deletion is hidden")
	}
}
