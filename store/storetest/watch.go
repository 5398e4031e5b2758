package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/store"
)

// eventTimeout bounds the wait for one watch event.
const eventTimeout = 15 * time.Second

// state is one expected state of the record as a watch reports it.
type state struct {
	deleted     bool
	version     string
	transitions int64
}

func (w state) String() string {
	if w.deleted {
		return "deleted"
	}
	return fmt.Sprintf("version %s (transitions %d)", w.version, w.transitions)
}

func stateOf(r store.Record) state { return state{version: r.Version, transitions: r.Transitions} }

func describe(ev store.Event) string {
	switch {
	case ev.Err != nil:
		return "error: " + ev.Err.Error()
	case ev.Deleted:
		return "deleted"
	}
	return fmt.Sprintf("version %s (holder %q, transitions %d)", ev.Record.Version, ev.Record.Holder, ev.Record.Transitions)
}

// watch starts a watch that ends with the test.
func watch(t *testing.T, st store.Store, after string) <-chan store.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := st.Watch(ctx, after)
	if err != nil {
		t.Fatalf("Watch from %q: %v", after, err)
	}
	return ch
}

// nextEvent waits for one event.
func nextEvent(t *testing.T, ch <-chan store.Event) store.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("the watch ended early")
		}
		if ev.Err != nil {
			t.Fatalf("the watch failed: %v", ev.Err)
		}
		return ev
	case <-time.After(eventTimeout):
		t.Fatalf("no watch event within %v", eventTimeout)
	}
	return store.Event{}
}

// expect reads events until the last wanted state is reported and checks
// them against want: every state in order or, for a coalescing watch, an
// ordered subsequence that skips no deletion.
func (s *suite) expect(t *testing.T, ch <-chan store.Event, want []state) {
	t.Helper()
	final := want[len(want)-1]
	var got []store.Event
	for {
		ev := nextEvent(t, ch)
		got = append(got, ev)
		if ev.Deleted == final.deleted && (final.deleted || ev.Record.Version == final.version) {
			break
		}
		if !s.coalesces && len(got) == len(want) {
			break
		}
	}
	var lines []string
	for _, ev := range got {
		lines = append(lines, describe(ev))
	}
	report := fmt.Sprintf("want %v\ngot  [%s]", want, strings.Join(lines, " "))

	if !s.coalesces {
		if len(got) != len(want) {
			t.Fatalf("the watch reported %d events, want %d:\n%s", len(got), len(want), report)
		}
		for i, ev := range got {
			if !matches(want[i], ev) {
				t.Fatalf("event %d is %s, want %v:\n%s", i, describe(ev), want[i], report)
			}
		}
		return
	}
	at := -1
	for i, ev := range got {
		j := at + 1
		for j < len(want) && !matches(want[j], ev) {
			j++
		}
		if j == len(want) {
			t.Fatalf("event %d (%s) is not a later state than the previous one:\n%s", i, describe(ev), report)
		}
		for k := at + 1; k < j; k++ {
			if want[k].deleted {
				t.Fatalf("event %d (%s) skips a deletion:\n%s", i, describe(ev), report)
			}
		}
		at = j
	}
	if at != len(want)-1 {
		t.Fatalf("the watch did not report the newest state:\n%s", report)
	}
}

func matches(w state, ev store.Event) bool {
	if w.deleted || ev.Deleted {
		return w.deleted == ev.Deleted
	}
	return w.version == ev.Record.Version && w.transitions == ev.Record.Transitions
}

func (s *suite) testWatchEveryChange(t *testing.T) {
	n := name(t, "watch-every-change")
	w, r := s.newStore(t, n), s.newStore(t, n)
	cur := mustCreate(t, w, sample("a", 0))
	ch := watch(t, r, cur.Version)
	var want []state
	for i := 1; i <= 5; i++ {
		next := cur
		next.Transitions = int64(i)
		cur = mustUpdate(t, w, next)
		want = append(want, stateOf(cur))
	}
	s.expect(t, ch, want)
}

func (s *suite) testWatchFromPast(t *testing.T) {
	n := name(t, "watch-from-past")
	w, r := s.newStore(t, n), s.newStore(t, n)
	first := mustCreate(t, w, sample("a", 0))
	cur := first
	var want []state
	for i := 1; i <= 3; i++ {
		next := cur
		next.Transitions = int64(i)
		cur = mustUpdate(t, w, next)
		want = append(want, stateOf(cur))
	}
	// Started after the writes, from the version before them.
	s.expect(t, watch(t, r, first.Version), want)
}

func (s *suite) testWatchFromNow(t *testing.T) {
	n := name(t, "watch-from-now")
	w, r := s.newStore(t, n), s.newStore(t, n)
	cur := mustCreate(t, w, sample("a", 0))
	next := cur
	next.Transitions = 1
	cur = mustUpdate(t, w, next)
	ch := watch(t, r, "")
	next = cur
	next.Transitions = 2
	cur = mustUpdate(t, w, next)
	// Nothing written before Watch returned may be reported.
	if ev := nextEvent(t, ch); !matches(stateOf(cur), ev) {
		t.Fatalf("a watch from now first reported %s, want the change made after it started, %v", describe(ev), stateOf(cur))
	}
}

func (s *suite) testWatchFromNowAbsent(t *testing.T) {
	n := name(t, "watch-from-now-absent")
	w, r := s.newStore(t, n), s.newStore(t, n)
	ch := watch(t, r, "")
	cur := mustCreate(t, w, sample("a", 0))
	ev := nextEvent(t, ch)
	if !matches(stateOf(cur), ev) {
		t.Fatalf("a watch of an absent record first reported %s, want its creation, %v", describe(ev), stateOf(cur))
	}
}

func (s *suite) testWatchEndsWithContext(t *testing.T) {
	n := name(t, "watch-ends")
	w, r := s.newStore(t, n), s.newStore(t, n)
	mustCreate(t, w, sample("a", 0))
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := r.Watch(ctx, "")
	if err != nil {
		cancel()
		t.Fatalf("Watch: %v", err)
	}
	cancel()
	deadline := time.After(eventTimeout)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("the watch channel was not closed within %v of its context ending", eventTimeout)
		}
	}
}

// A watch reports a deletion and a re-creation, in order, after the writes
// around them.
func (s *suite) testWatchDeleteAndRecreate(t *testing.T) {
	n := name(t, "watch-delete-recreate")
	w, r := s.newStore(t, n), s.newStore(t, n)
	cur := mustCreate(t, w, sample("a", 0))
	ch := watch(t, r, cur.Version)
	next := cur
	next.Transitions = 1
	cur = mustUpdate(t, w, next)
	want := []state{stateOf(cur), {deleted: true}}
	s.delete(t, n)
	cur = mustCreate(t, w, sample("b", 2))
	want = append(want, stateOf(cur))
	next = cur
	next.Transitions = 3
	cur = mustUpdate(t, w, next)
	want = append(want, stateOf(cur))
	s.expect(t, ch, want)

	// Deleted and re-created between two reads of a watch started later.
	from := cur.Version
	s.delete(t, n)
	cur = mustCreate(t, w, sample("c", 4))
	s.expect(t, watch(t, r, from), []state{{deleted: true}, stateOf(cur)})
}
