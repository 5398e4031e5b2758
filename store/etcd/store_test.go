package etcd_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/etcd"
)

func held(holder string, transitions int64) store.Record {
	now := time.Now()
	return store.Record{Holder: holder, Instance: "i-" + holder, LeaseDuration: 15 * time.Second,
		AcquireTime: now, RenewTime: now, Transitions: transitions}
}

// rawValue reads the key as etcdctl would.
func rawValue(t *testing.T, c *clientv3.Client, s *etcd.Store) (string, int64) {
	t.Helper()
	resp, err := c.Get(testContext(t), s.Key())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return "", 0
	}
	return string(resp.Kvs[0].Value), resp.Kvs[0].ModRevision
}

func TestCompareAndSet(t *testing.T) {
	ctx := testContext(t)
	c := sharedClient(t)
	s := newStore(t, c)
	if s.Key() != testPrefix(t)+"/lease" || s.String() != "etcd key "+s.Key() {
		t.Fatalf("key %q, string %q", s.Key(), s.String())
	}

	if _, err := s.Get(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of an absent key: %v, want ErrNotFound", err)
	}
	if _, err := s.Update(ctx, store.Record{Holder: "a", LeaseDuration: time.Second, Version: "1"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Update of an absent key: %v, want ErrNotFound", err)
	}

	created, err := s.Create(ctx, held("a", 0))
	if err != nil {
		t.Fatal(err)
	}
	raw, rev := rawValue(t, c, s)
	t.Logf("stored value at revision %d: %s", rev, raw)
	if created.Version != strconv.FormatInt(rev, 10) {
		t.Fatalf("Create returned version %q, the key's mod revision is %d", created.Version, rev)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(raw), &v); err != nil || v["format"] != float64(etcd.Format) || v["holder"] != "a" || v["leaseDuration"] != "15s" {
		t.Fatalf("stored value %s (%v): want format %d, holder a, leaseDuration 15s", raw, err, etcd.Format)
	}
	got, err := s.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !sameRecord(got, created) {
		t.Fatalf("Get = %+v, Create returned %+v", got, created)
	}
	if _, err := s.Create(ctx, held("b", 1)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second Create: %v, want ErrConflict", err)
	}

	next := got
	next.RenewTime = next.RenewTime.Add(time.Second)
	next.ReleaseRequested = true
	next.TransferTo = "c"
	updated, err := s.Update(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	if revOf(t, updated) <= revOf(t, got) {
		t.Fatalf("Update returned version %s, not above %s", updated.Version, got.Version)
	}
	if again, err := s.Get(ctx); err != nil || !sameRecord(again, updated) {
		t.Fatalf("Get after Update = %+v, %v; want %+v", again, err, updated)
	}

	stale := got // the version before the update
	stale.Holder = "b"
	if _, err := s.Update(ctx, stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Update from a stale version: %v, want ErrConflict", err)
	}
	for _, bogus := range []string{"", "0", "-3", "abc"} {
		rec := updated
		rec.Version = bogus
		if _, err := s.Update(ctx, rec); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Update with version %q: %v, want ErrConflict", bogus, err)
		}
	}
	if now, err := s.Get(ctx); err != nil || !sameRecord(now, updated) {
		t.Fatalf("refused updates changed the record: %+v, %v", now, err)
	}

	// Deleted by an operator: Update says ErrNotFound, Create works again,
	// and the old version never matches the re-created key.
	if _, err := c.Delete(ctx, s.Key()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, updated); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Update of a deleted key: %v, want ErrNotFound", err)
	}
	recreated, err := s.Create(ctx, held("b", 2))
	if err != nil {
		t.Fatalf("Create after deletion: %v", err)
	}
	if _, err := s.Update(ctx, updated); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Update with the version of the deleted key: %v, want ErrConflict", err)
	}
	if revOf(t, recreated) <= revOf(t, updated) {
		t.Fatalf("re-created version %s not above %s", recreated.Version, updated.Version)
	}
}

// sameRecord compares records field by field, times by instant.
func sameRecord(a, b store.Record) bool {
	return a.Holder == b.Holder && a.Instance == b.Instance && a.LeaseDuration == b.LeaseDuration &&
		a.AcquireTime.Equal(b.AcquireTime) && a.RenewTime.Equal(b.RenewTime) && a.Transitions == b.Transitions &&
		a.HandoffTo == b.HandoffTo && a.TransferTo == b.TransferTo && a.ReleaseRequested == b.ReleaseRequested &&
		a.Version == b.Version
}

func revOf(t *testing.T, r store.Record) int64 {
	t.Helper()
	n, err := strconv.ParseInt(r.Version, 10, 64)
	if err != nil {
		t.Fatalf("version %q is not a revision: %v", r.Version, err)
	}
	return n
}

// Candidates that race from the same version: exactly one wins each round,
// the others get ErrConflict, and nobody's write is lost or doubled.
func TestRacingWritesHaveOneWinner(t *testing.T) {
	ctx := testContext(t)
	const racers, rounds = 6, 20
	clients := []*clientv3.Client{sharedClient(t), sharedClient(t), sharedClient(t)}
	stores := make([]*etcd.Store, racers)
	for i := range stores {
		stores[i] = newStore(t, clients[i%len(clients)])
	}

	race := func(write func(i int) (store.Record, error)) (winners []int, won store.Record) {
		start := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := range racers {
			wg.Go(func() {
				<-start
				rec, err := write(i)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					winners, won = append(winners, i), rec
				case !errors.Is(err, store.ErrConflict):
					t.Errorf("racer %d: %v, want success or ErrConflict", i, err)
				}
			})
		}
		close(start)
		wg.Wait()
		return winners, won
	}

	winners, cur := race(func(i int) (store.Record, error) { return stores[i].Create(ctx, held(fmt.Sprint("r", i), 0)) })
	if len(winners) != 1 {
		t.Fatalf("racing Creates: winners %v, want exactly one", winners)
	}
	tally := map[int]int{}
	for round := 1; round <= rounds; round++ {
		base := cur
		winners, cur = race(func(i int) (store.Record, error) {
			rec := held(fmt.Sprint("r", i), base.Transitions+1)
			rec.Version = base.Version
			return stores[i].Update(ctx, rec)
		})
		if len(winners) != 1 {
			t.Fatalf("round %d: winners %v, want exactly one", round, winners)
		}
		tally[winners[0]]++
		got, err := stores[0].Get(ctx)
		if err != nil || !sameRecord(got, cur) || got.Transitions != int64(round) {
			t.Fatalf("round %d: record %+v (%v), want the winner's %+v with transitions %d", round, got, err, cur, round)
		}
	}
	t.Logf("wins per racer over %d rounds: %v", rounds, tally)
}

func TestMalformedValues(t *testing.T) {
	for _, tc := range []struct{ name, value, says string }{
		{"not json", "db-0 holds it", "not a JSON object"},
		{"array", `[1,2]`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"no format", `{"holder":"a","leaseDuration":"15s"}`, `no "format"`},
		{"newer format", `{"format":2,"holder":"a"}`, "format 2"},
		{"format of wrong type", `{"format":"1"}`, `"format" is "1"`},
		{"transitions of wrong type", `{"format":1,"holder":"a","transitions":"four"}`, "transitions"},
		{"bad duration", `{"format":1,"holder":"a","leaseDuration":"soon"}`, `"soon"`},
		{"bad time", `{"format":1,"holder":"a","renewTime":"yesterday"}`, "yesterday"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			c := sharedClient(t)
			s := newStore(t, c)
			before, err := c.Get(ctx, s.Key())
			if err != nil {
				t.Fatal(err)
			}
			events, err := s.Watch(ctx, strconv.FormatInt(before.Header.Revision, 10))
			if err != nil {
				t.Fatal(err)
			}
			put, err := c.Put(ctx, s.Key(), tc.value)
			if err != nil {
				t.Fatal(err)
			}
			rev := strconv.FormatInt(put.Header.Revision, 10)

			_, err = s.Get(ctx)
			if !errors.Is(err, store.ErrMalformed) || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), s.Key()) {
				t.Fatalf("Get: %v; want ErrMalformed naming the key and saying %q", err, tc.says)
			}
			t.Logf("Get: %v", err)

			if _, err := s.Create(ctx, held("b", 1)); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("Create over a malformed value: %v, want ErrConflict", err)
			}
			// Even given the revision of the malformed value (from the
			// error message, say), a fresh Store refuses to overwrite it.
			fresh := newStore(t, c)
			rec := held("b", 1)
			rec.Version = rev
			if _, err := fresh.Update(ctx, rec); !errors.Is(err, store.ErrMalformed) {
				t.Fatalf("Update over a malformed value: %v, want ErrMalformed", err)
			}
			if raw, _ := rawValue(t, c, s); raw != tc.value {
				t.Fatalf("the malformed value was overwritten: %q", raw)
			}

			ev, ok := <-events
			if !ok || !errors.Is(ev.Err, store.ErrMalformed) {
				t.Fatalf("watch delivered %+v (open %v), want an error wrapping ErrMalformed", ev, ok)
			}
			if ev, ok := <-events; ok {
				t.Fatalf("watch delivered %+v after its error, want it closed", ev)
			}
		})
	}
}

// A value that parses but makes no sense is returned, for
// store.Record.Validate to report, as the Kubernetes store does.
func TestNonsenseValuesAreReturnedForValidate(t *testing.T) {
	ctx := testContext(t)
	c := sharedClient(t)
	s := newStore(t, c)
	if _, err := c.Put(ctx, s.Key(), `{"format":1,"holder":"a","leaseDuration":"-5s","transitions":-1}`); err != nil {
		t.Fatal(err)
	}
	rec, err := s.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rec.LeaseDuration != -5*time.Second || rec.Transitions != -1 || !errors.Is(rec.Validate(), store.ErrMalformed) {
		t.Fatalf("Get = %+v, Validate: %v; want the values as stored and ErrMalformed", rec, rec.Validate())
	}
}

// Fields a newer version added survive an Update by this version, whether
// the Store has seen the value before or not.
func TestUnknownFieldsSurviveUpdate(t *testing.T) {
	ctx := testContext(t)
	c := sharedClient(t)
	s := newStore(t, c)
	if _, err := c.Put(ctx, s.Key(), `{"format":1,"holder":"a","leaseDuration":"15s","transitions":3,"priority":{"a":7},"zone":"eu-1"}`); err != nil {
		t.Fatal(err)
	}
	rec, err := s.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec.Holder, rec.Transitions = "b", 4
	rec, err = s.Update(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	fresh := newStore(t, c) // has seen nothing: reads before it writes
	rec.Holder, rec.Transitions = "c", 5
	if _, err := fresh.Update(ctx, rec); err != nil {
		t.Fatal(err)
	}
	raw, _ := rawValue(t, c, s)
	var v map[string]any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatal(err)
	}
	if v["holder"] != "c" || v["transitions"] != float64(5) || v["zone"] != "eu-1" || fmt.Sprint(v["priority"]) != "map[a:7]" {
		t.Fatalf("value after two updates: %s; want holder c, transitions 5 and the unknown fields kept", raw)
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	c := sharedClient(t)
	if _, err := etcd.New(nil, "", "db"); err == nil || !strings.Contains(err.Error(), "client is required") {
		t.Fatalf("nil client: %v", err)
	}
	for _, tc := range []struct{ prefix, name, says string }{
		{"incumbent", "db", `must start with "/"`},
		{"/incumbent/", "db", `must not end with "/"`},
		{"/", "db", `must not end with "/"`},
		{"/in cumbent", "db", "spaces"},
		{"", "", "must not be empty"},
		{"", "a/b", `not '/'`},
		{"", "..", `must not be ".."`},
		{"", "db 1", `not ' '`},
		{"", strings.Repeat("x", 254), "at most 253"},
	} {
		if _, err := etcd.New(c, tc.prefix, tc.name); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("New(%q, %q) = %v; want an error saying %q", tc.prefix, tc.name, err, tc.says)
		}
	}
	s, err := etcd.New(c, "", "db-0_a.b")
	if err != nil || s.Key() != etcd.DefaultPrefix+"/db-0_a.b" {
		t.Fatalf("New with the default prefix: %v, key %q", err, s.Key())
	}
}

// Requests to a store whose context is done fail, and say where.
func TestErrorsNameTheKey(t *testing.T) {
	s := newStore(t, sharedClient(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Get(ctx)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "get etcd key "+s.Key()) {
		t.Fatalf("Get with a cancelled context: %v", err)
	}
	if _, err := s.Watch(ctx, ""); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "watch etcd key") {
		t.Fatalf("Watch with a cancelled context: %v", err)
	}
}
