package etcd_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/incumbent-io/incumbent/store"
)

// next returns the next event, failing the test if none comes within ten
// seconds or the channel is closed.
func next(t *testing.T, events <-chan store.Event) store.Event {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("watch closed, want an event")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event within 10s")
	}
	return store.Event{}
}

// closed fails the test unless the channel is closed within ten seconds
// without delivering anything more.
func closed(t *testing.T, events <-chan store.Event) {
	t.Helper()
	select {
	case ev, ok := <-events:
		if ok {
			t.Fatalf("watch delivered %+v, want it closed", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch not closed within 10s")
	}
}

// Every change arrives once, in order, with the version the write returned:
// puts, an operator's delete, and the record re-created.
func TestWatchDeliversChangesInOrder(t *testing.T) {
	ctx := testContext(t)
	c := sharedClient(t)
	s := newStore(t, c)
	events, err := s.Watch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}

	type want struct {
		deleted bool
		rec     store.Record
	}
	var wants []want
	rec, err := s.Create(ctx, held("a", 0))
	if err != nil {
		t.Fatal(err)
	}
	wants = append(wants, want{rec: rec})
	for i := range 3 {
		rec.RenewTime = rec.RenewTime.Add(time.Second)
		rec.Transitions = int64(i + 1)
		if rec, err = s.Update(ctx, rec); err != nil {
			t.Fatal(err)
		}
		wants = append(wants, want{rec: rec})
	}
	del, err := c.Delete(ctx, s.Key())
	if err != nil {
		t.Fatal(err)
	}
	// A deletion carries the revision etcd gave it.
	wants = append(wants, want{deleted: true, rec: store.Record{Revision: del.Header.Revision}})
	if rec, err = s.Create(ctx, held("b", 5)); err != nil {
		t.Fatal(err)
	}
	wants = append(wants, want{rec: rec})
	rec.ReleaseRequested = true
	if rec, err = s.Update(ctx, rec); err != nil {
		t.Fatal(err)
	}
	wants = append(wants, want{rec: rec})

	for i, w := range wants {
		ev := next(t, events)
		switch {
		case ev.Err != nil:
			t.Fatalf("event %d: %v", i, ev.Err)
		case ev.Deleted != w.deleted:
			t.Fatalf("event %d: deleted %v, want %v", i, ev.Deleted, w.deleted)
		case w.deleted && ev.Record != w.rec:
			t.Fatalf("event %d: deletion carries record %+v, want the zero Record but for the deletion's revision %d", i, ev.Record, w.rec.Revision)
		case !w.deleted && !sameRecord(ev.Record, w.rec):
			t.Fatalf("event %d: %+v, want %+v", i, ev.Record, w.rec)
		}
	}
}

// A watch from a version replays what came after it, and only that.
func TestWatchFromVersionReplays(t *testing.T) {
	ctx := testContext(t)
	s := newStore(t, sharedClient(t))
	var versions []store.Record
	rec, err := s.Create(ctx, held("a", 0))
	if err != nil {
		t.Fatal(err)
	}
	versions = append(versions, rec)
	for range 3 {
		rec.Transitions++
		if rec, err = s.Update(ctx, rec); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, rec)
	}
	events, err := s.Watch(ctx, versions[1].Version)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range versions[2:] {
		if ev := next(t, events); ev.Err != nil || !sameRecord(ev.Record, w) {
			t.Fatalf("replayed %+v, want %+v", ev, w)
		}
	}
	rec.Holder = "b"
	if rec, err = s.Update(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev.Err != nil || !sameRecord(ev.Record, rec) {
		t.Fatalf("live event %+v, want %+v", ev, rec)
	}
}

// When the revisions to replay were compacted away, the watch reports
// ErrCompacted and closes, so that the caller reads the record again.
func TestWatchReportsCompaction(t *testing.T) {
	ctx := testContext(t)
	c := sharedClient(t)
	s := newStore(t, c)
	first, err := s.Create(ctx, held("a", 0))
	if err != nil {
		t.Fatal(err)
	}
	rec := first
	for range 3 {
		rec.Transitions++
		if rec, err = s.Update(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Compact(ctx, revOf(t, rec)); err != nil {
		t.Fatal(err)
	}
	events, err := s.Watch(ctx, first.Version)
	if err != nil {
		t.Fatalf("Watch from a compacted revision: %v; want the error as an event", err)
	}
	ev := next(t, events)
	if !errors.Is(ev.Err, rpctypes.ErrCompacted) {
		t.Fatalf("event %+v, want an error wrapping ErrCompacted", ev)
	}
	t.Logf("watch from compacted revision %s: %v", first.Version, ev.Err)
	closed(t, events)

	// Watching from the current version works again.
	latest, err := s.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if events, err = s.Watch(ctx, latest.Version); err != nil {
		t.Fatal(err)
	}
	latest.Holder = "b"
	if latest, err = s.Update(ctx, latest); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev.Err != nil || !sameRecord(ev.Record, latest) {
		t.Fatalf("after re-watching: %+v, want %+v", ev, latest)
	}
}

// The channel closes, without an error event, when the context ends.
func TestWatchEndsWithContext(t *testing.T) {
	s := newStore(t, sharedClient(t))
	ctx, cancel := context.WithCancel(testContext(t))
	events, err := s.Watch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	closed(t, events)
}

func TestWatchRejectsBadVersion(t *testing.T) {
	s := newStore(t, sharedClient(t))
	for _, v := range []string{"abc", "-1", "1.5"} {
		if _, err := s.Watch(testContext(t), v); err == nil {
			t.Errorf("Watch(%q) succeeded, want an error", v)
		}
	}
}
