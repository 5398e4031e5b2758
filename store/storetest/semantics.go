package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/store"
)

// opTimeout bounds every single store call the suite makes.
const opTimeout = 15 * time.Second

// RunStore runs the subtests about the store's own semantics.
func RunStore(t *testing.T, newStore NewStore, opts ...Option) {
	s := newSuite(newStore, opts)
	t.Run("GetAbsent", s.testGetAbsent)
	t.Run("CreateTwice", s.testCreateTwice)
	t.Run("UpdateCompareAndSet", s.testUpdateCompareAndSet)
	t.Run("UpdateAbsent", s.testUpdateAbsent)
	t.Run("RoundTrip", s.testRoundTrip)
	t.Run("RacingUpdates", s.testRacingUpdates)
	t.Run("Revisions", s.testRevisions)
	t.Run("WatchEveryChange", s.testWatchEveryChange)
	t.Run("WatchFromPast", s.testWatchFromPast)
	t.Run("WatchFromNow", s.testWatchFromNow)
	t.Run("WatchFromNowAbsent", s.testWatchFromNowAbsent)
	t.Run("WatchEndsWithContext", s.testWatchEndsWithContext)
	if s.delete != nil {
		t.Run("DeleteAndRecreate", s.testDeleteAndRecreate)
		t.Run("WatchDeleteAndRecreate", s.testWatchDeleteAndRecreate)
	}
	if s.corrupt != nil {
		t.Run("Malformed", s.testMalformed)
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// sample returns a valid held record with every field set.
func sample(holder string, transitions int64) store.Record {
	at := time.Date(2026, 5, 1, 10, 0, 0, 123456000, time.UTC)
	return store.Record{
		Holder:        holder,
		Instance:      "0123456789abcdef",
		LeaseDuration: 7 * time.Second,
		AcquireTime:   at,
		RenewTime:     at.Add(1500*time.Millisecond + 7*time.Microsecond),
		Transitions:   transitions,
	}
}

// diff describes how got differs from want, ignoring Version and Revision;
// "" if equal.
func diff(want, got store.Record) string {
	var d []string
	add := func(field string, w, g any) { d = append(d, fmt.Sprintf("%s: want %v, got %v", field, w, g)) }
	if want.Holder != got.Holder {
		add("Holder", want.Holder, got.Holder)
	}
	if want.Instance != got.Instance {
		add("Instance", want.Instance, got.Instance)
	}
	if want.LeaseDuration != got.LeaseDuration {
		add("LeaseDuration", want.LeaseDuration, got.LeaseDuration)
	}
	if !want.AcquireTime.Equal(got.AcquireTime) {
		add("AcquireTime", want.AcquireTime, got.AcquireTime)
	}
	if !want.RenewTime.Equal(got.RenewTime) {
		add("RenewTime", want.RenewTime, got.RenewTime)
	}
	if want.Transitions != got.Transitions {
		add("Transitions", want.Transitions, got.Transitions)
	}
	if want.Term != got.Term {
		add("Term", want.Term, got.Term)
	}
	if want.HandoffTo != got.HandoffTo {
		add("HandoffTo", want.HandoffTo, got.HandoffTo)
	}
	if want.TransferTo != got.TransferTo {
		add("TransferTo", want.TransferTo, got.TransferTo)
	}
	if want.ReleaseRequested != got.ReleaseRequested {
		add("ReleaseRequested", want.ReleaseRequested, got.ReleaseRequested)
	}
	return strings.Join(d, "; ")
}

func mustCreate(t *testing.T, s store.Store, rec store.Record) store.Record {
	t.Helper()
	got, err := s.Create(ctxFor(t), rec)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if got.Version == "" {
		t.Fatalf("Create returned an empty Version")
	}
	return got
}

func mustUpdate(t *testing.T, s store.Store, rec store.Record) store.Record {
	t.Helper()
	got, err := s.Update(ctxFor(t), rec)
	if err != nil {
		t.Fatalf("Update from version %s: %v", rec.Version, err)
	}
	if got.Version == "" || got.Version == rec.Version {
		t.Fatalf("Update from version %s returned version %q; want a new one", rec.Version, got.Version)
	}
	return got
}

func mustGet(t *testing.T, s store.Store) store.Record {
	t.Helper()
	got, err := s.Get(ctxFor(t))
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return got
}

func (s *suite) testGetAbsent(t *testing.T) {
	st := s.newStore(t, name(t, "get-absent"))
	_, err := st.Get(ctxFor(t))
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of an absent record: got %v, want an error wrapping store.ErrNotFound", err)
	}
}

func (s *suite) testCreateTwice(t *testing.T) {
	n := name(t, "create-twice")
	a, b := s.newStore(t, n), s.newStore(t, n)
	rec := sample("a", 0)
	rec.Version = "ignored-by-create"
	created := mustCreate(t, a, rec)
	if d := diff(rec, created); d != "" {
		t.Errorf("Create returned a different record: %s", d)
	}
	got := mustGet(t, b)
	if d := diff(rec, got); d != "" {
		t.Errorf("another store reads a different record: %s", d)
	}
	if got.Version != created.Version {
		t.Errorf("another store reads version %q, Create returned %q", got.Version, created.Version)
	}
	for _, st := range []store.Store{a, b} {
		_, err := st.Create(ctxFor(t), sample("b", 1))
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("second Create: got %v, want an error wrapping store.ErrConflict", err)
		}
	}
	if got := mustGet(t, a); got.Version != created.Version || got.Holder != "a" {
		t.Errorf("a failed Create changed the record: holder %q version %q, want %q %q", got.Holder, got.Version, "a", created.Version)
	}
}

func (s *suite) testUpdateCompareAndSet(t *testing.T) {
	n := name(t, "update-cas")
	a, b := s.newStore(t, n), s.newStore(t, n)
	v1 := mustCreate(t, a, sample("a", 0))

	next := v1
	next.RenewTime = next.RenewTime.Add(time.Second)
	v2 := mustUpdate(t, a, next)

	// b writes from the version a has already replaced.
	stale := v1
	stale.Holder, stale.Transitions = "b", 1
	if _, err := b.Update(ctxFor(t), stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Update from a stale version: got %v, want an error wrapping store.ErrConflict", err)
	}
	if got := mustGet(t, b); got.Version != v2.Version || got.Holder != "a" {
		t.Fatalf("a conflicting Update changed the record: holder %q version %q, want %q %q", got.Holder, got.Version, "a", v2.Version)
	}

	// b reads and writes from the current version.
	cur := mustGet(t, b)
	cur.Holder, cur.Transitions = "b", 1
	v3 := mustUpdate(t, b, cur)
	if v3.Version == v1.Version {
		t.Errorf("Update reused an old version %q", v3.Version)
	}
	// a's version is stale now.
	next = v2
	next.RenewTime = next.RenewTime.Add(time.Second)
	if _, err := a.Update(ctxFor(t), next); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Update from the version another store replaced: got %v, want an error wrapping store.ErrConflict", err)
	}
	if got := mustGet(t, a); got.Version != v3.Version || got.Holder != "b" {
		t.Fatalf("read holder %q version %q, want %q %q", got.Holder, got.Version, "b", v3.Version)
	}
}

func (s *suite) testUpdateAbsent(t *testing.T) {
	st := s.newStore(t, name(t, "update-absent"))
	rec := sample("a", 0)
	rec.Version = "1"
	if _, err := st.Update(ctxFor(t), rec); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Update of an absent record: got %v, want an error wrapping store.ErrNotFound", err)
	}
	if _, err := st.Get(ctxFor(t)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Update of an absent record created it: Get returned %v", err)
	}
}

func (s *suite) testRoundTrip(t *testing.T) {
	n := name(t, "round-trip")
	w := s.newStore(t, n)
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	full := store.Record{
		Holder:           "replica-a",
		Instance:         "0123456789abcdef",
		LeaseDuration:    7 * time.Second,
		AcquireTime:      time.Date(2026, 5, 1, 10, 0, 0, 123456000, zone),
		RenewTime:        time.Date(2026, 5, 1, 10, 0, 9, 999999000, time.UTC),
		Transitions:      42,
		Term:             4242,
		HandoffTo:        "replica-b",
		TransferTo:       "replica-c",
		ReleaseRequested: true,
	}
	cleared := store.Record{LeaseDuration: time.Second, Transitions: 43}
	again := sample("replica-d", 44)
	again.TransferTo = "replica-e"

	var last store.Record
	for i, want := range []store.Record{full, cleared, again} {
		var got store.Record
		if i == 0 {
			got = mustCreate(t, w, want)
		} else {
			want.Version = last.Version
			got = mustUpdate(t, w, want)
		}
		if d := diff(want, got); d != "" {
			t.Errorf("record %d: the write returned a different record: %s", i, d)
		}
		// A fresh store, as another process would.
		read := mustGet(t, s.newStore(t, n))
		if d := diff(want, read); d != "" {
			t.Errorf("record %d: read back a different record: %s", i, d)
		}
		if read.Version != got.Version {
			t.Errorf("record %d: read back version %q, the write returned %q", i, read.Version, got.Version)
		}
		if err := read.Validate(); err != nil {
			t.Errorf("record %d: read back a record that does not validate: %v", i, err)
		}
		last = got
	}
}

func (s *suite) testRacingUpdates(t *testing.T) {
	const racers, rounds = 6, 5
	n := name(t, "racing-updates")
	stores := make([]store.Store, racers)
	for i := range stores {
		stores[i] = s.newStore(t, n)
	}
	mustCreate(t, stores[0], sample("nobody", 0))
	for round := range rounds {
		cur := mustGet(t, stores[0])
		for i, st := range stores {
			if got := mustGet(t, st); got.Version != cur.Version {
				t.Fatalf("round %d: store %d reads version %q, store 0 read %q, and nobody wrote", round, i, got.Version, cur.Version)
			}
		}
		type result struct {
			rec store.Record
			err error
		}
		results := make([]result, racers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, st := range stores {
			wg.Go(func() {
				next := cur
				next.Holder = fmt.Sprintf("racer-%d", i)
				next.Transitions = cur.Transitions + 1
				<-start
				rec, err := st.Update(ctxFor(t), next)
				results[i] = result{rec, err}
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, r := range results {
			switch {
			case r.err == nil && winner >= 0:
				t.Fatalf("round %d: racers %d and %d both won an Update from version %s", round, winner, i, cur.Version)
			case r.err == nil:
				winner = i
			case !errors.Is(r.err, store.ErrConflict):
				t.Errorf("round %d: racer %d: got %v, want success or an error wrapping store.ErrConflict", round, i, r.err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no racer won an Update from version %s", round, cur.Version)
		}
		got := mustGet(t, stores[(winner+1)%racers])
		if want := fmt.Sprintf("racer-%d", winner); got.Holder != want || got.Version != results[winner].rec.Version {
			t.Fatalf("round %d: read holder %q version %q after %s won with version %q", round, got.Holder, got.Version, want, results[winner].rec.Version)
		}
	}
}

// Every record a store returns has a positive Revision, and every write
// returns a larger one than every record returned before it, also after the
// record was deleted and created again. A watch reports the same revision
// for a state as the write that made it. Term round-trips like any field.
func (s *suite) testRevisions(t *testing.T) {
	n := name(t, "revisions")
	w, r := s.newStore(t, n), s.newStore(t, n)
	ch := watch(t, r, "") // reported states are checked at the end
	var highest int64     // the largest revision returned so far
	written := map[string]int64{}
	returned := func(op string, rec store.Record) {
		t.Helper()
		if rec.Revision <= 0 {
			t.Fatalf("%s returned revision %d; every record a store returns has a positive one", op, rec.Revision)
		}
		highest = max(highest, rec.Revision)
	}
	// check checks what a successful write returned, and that another
	// store, as another process would, reads the same.
	check := func(op string, wrote, got store.Record) store.Record {
		t.Helper()
		if got.Revision <= highest {
			t.Fatalf("%s returned revision %d, not above %d returned before it", op, got.Revision, highest)
		}
		returned(op, got)
		written[got.Version] = got.Revision
		if got.Term != wrote.Term {
			t.Errorf("%s returned term %d, want the %d written", op, got.Term, wrote.Term)
		}
		read := mustGet(t, r)
		returned("Get", read)
		if read.Version != got.Version || read.Revision != got.Revision || read.Term != wrote.Term {
			t.Errorf("%s returned version %s, revision %d, term %d; Get then reads version %s, revision %d, term %d",
				op, got.Version, got.Revision, got.Term, read.Version, read.Revision, read.Term)
		}
		return read
	}
	update := func(op string, cur store.Record, change func(*store.Record)) store.Record {
		t.Helper()
		next := cur
		next.RenewTime = next.RenewTime.Add(time.Second)
		change(&next)
		return check(op, next, mustUpdate(t, w, next))
	}

	first := sample("a", 1)
	first.Term = 7
	cur := check("Create", first, mustCreate(t, w, first))
	cur = update("Update (a renewal)", cur, func(r *store.Record) {})
	cur = update("Update (a new term)", cur, func(r *store.Record) { r.Holder, r.Transitions, r.Term = "b", 2, 0 })
	cur = update("Update (recording the term)", cur, func(r *store.Record) { r.Term = cur.Revision })
	if _, err := w.Create(ctxFor(t), sample("c", 3)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Create over a record: got %v, want an error wrapping store.ErrConflict", err)
	}
	returned("Get after a failed Create", mustGet(t, r))
	if s.delete != nil {
		before := highest
		s.delete(t, n)
		// Restored by its holder, as an elector does when its record is
		// deleted under it: same term.
		restored := cur
		restored.Version = ""
		got := mustCreate(t, w, restored)
		if got.Revision <= before {
			t.Fatalf("Create after the deletion returned revision %d, not above the %d returned before the deletion", got.Revision, before)
		}
		cur = check("Create after the deletion", restored, got)
		cur = update("Update after the deletion", cur, func(r *store.Record) { r.Term = 0 })
	}

	// The watch reports states in order, each with its write's revision;
	// a deletion with its own revision or none.
	var last int64
	var reported []string
	for {
		ev := nextEvent(t, ch)
		rev := ev.Record.Revision
		reported = append(reported, fmt.Sprintf("%s at revision %d", describe(ev), rev))
		switch want, known := written[ev.Record.Version]; {
		case ev.Deleted && rev != 0 && rev <= last:
			t.Fatalf("the watch reported a deletion at revision %d after a state at revision %d", rev, last)
		case ev.Deleted:
		case !known:
			t.Fatalf("the watch reported version %s, which no write returned", ev.Record.Version)
		case rev != want:
			t.Fatalf("the watch reported version %s at revision %d; the write returned revision %d", ev.Record.Version, rev, want)
		case rev <= last:
			t.Fatalf("the watch reported revision %d after revision %d", rev, last)
		}
		last = max(last, rev)
		if !ev.Deleted && ev.Record.Version == cur.Version {
			break
		}
	}
	t.Logf("the watch reported: %s", strings.Join(reported, "; "))
}

func (s *suite) testDeleteAndRecreate(t *testing.T) {
	n := name(t, "delete-recreate")
	a, b := s.newStore(t, n), s.newStore(t, n)
	v1 := mustCreate(t, a, sample("a", 3))
	s.delete(t, n)
	if _, err := b.Get(ctxFor(t)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after an out-of-band delete: got %v, want an error wrapping store.ErrNotFound", err)
	}
	next := v1
	next.RenewTime = next.RenewTime.Add(time.Second)
	if _, err := a.Update(ctxFor(t), next); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Update of a deleted record: got %v, want an error wrapping store.ErrNotFound", err)
	}
	// Re-created with as many writes as the deleted record had: a version
	// from before the deletion must never match again (no ABA).
	c := mustCreate(t, b, sample("b", 4))
	if c.Version == v1.Version {
		t.Errorf("the re-created record repeats the version %q of the deleted one", c.Version)
	}
	if _, err := a.Update(ctxFor(t), next); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Update of a re-created record from a version before the deletion: got %v, want an error wrapping store.ErrConflict", err)
	}
	if got := mustGet(t, a); got.Holder != "b" || got.Version != c.Version {
		t.Fatalf("read holder %q version %q, want %q %q", got.Holder, got.Version, "b", c.Version)
	}
}

func (s *suite) testMalformed(t *testing.T) {
	n := name(t, "malformed")
	w := s.newStore(t, n)
	good := mustCreate(t, w, sample("a", 2))
	s.corrupt(t, n)

	read := func() (store.Record, error) {
		t.Helper()
		var rec store.Record
		var err error
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("Get of a corrupt record panicked: %v", p)
				}
			}()
			rec, err = s.newStore(t, n).Get(ctxFor(t))
		}()
		return rec, err
	}
	rec, err := read()
	switch {
	case err != nil && !errors.Is(err, store.ErrMalformed):
		t.Fatalf("Get of a corrupt record: got %v, want an error wrapping store.ErrMalformed (or a record that fails Validate)", err)
	case err != nil:
		t.Logf("Get of a corrupt record: %v", err)
		// The store must not overwrite what it cannot read.
		if _, cerr := w.Create(ctxFor(t), sample("b", 3)); cerr == nil {
			t.Errorf("Create over a corrupt record succeeded")
		} else {
			t.Logf("Create over a corrupt record: %v", cerr)
		}
		next := good
		next.Holder, next.Transitions = "b", 3
		if _, uerr := w.Update(ctxFor(t), next); uerr == nil {
			t.Errorf("Update over a corrupt record succeeded")
		} else {
			t.Logf("Update over a corrupt record: %v", uerr)
		}
		if _, err := read(); !errors.Is(err, store.ErrMalformed) {
			t.Errorf("after refused writes, Get returns %v; the corrupt record must stay as it is", err)
		}
	default:
		verr := rec.Validate()
		if verr == nil {
			t.Fatalf("Get of a corrupt record returned a record that validates: %+v", rec)
		}
		if !errors.Is(verr, store.ErrMalformed) {
			t.Errorf("Validate: %v does not wrap store.ErrMalformed", verr)
		}
		t.Logf("Get of a corrupt record returned one that fails Validate: %v", verr)
		again, err := read()
		if err != nil || again.Version != rec.Version {
			t.Errorf("reading a corrupt record changed it: version %q then %q (err %v)", rec.Version, again.Version, err)
		}
	}
}
