package etcd_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/incumbent-io/incumbent/election/electiontest"
	"github.com/incumbent-io/incumbent/internal/tcpproxy"
	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/etcd"
	"github.com/incumbent-io/incumbent/store/storetest"
)

// The conformance suites over the Stores of one Keyspace, as one process
// that runs many elections has: all the candidates of each election share
// its watch, with those of every other election of the suite.
func TestConformanceKeyspace(t *testing.T) { conformanceKeyspace(t, 1) }

// The same with the fence key kept.
func TestConformanceKeyspaceWithTheFenceKey(t *testing.T) {
	conformanceKeyspace(t, 1, etcd.WithFenceKey())
}

// The same over the Stores of two Keyspaces, each with a client of its own,
// as two such processes have: the candidates of an election alternate
// between them.
func TestConformanceTwoKeyspaces(t *testing.T) { conformanceKeyspace(t, 2) }

func conformanceKeyspace(t *testing.T, processes int, opts ...etcd.Option) {
	prefix := testPrefix(t)
	key := func(name string) string { return prefix + "/" + name }
	var spaces []*etcd.Keyspace
	for range processes {
		spaces = append(spaces, newKeyspace(t, sharedClient(t), prefix))
	}
	var made atomic.Int64
	newStore := func(t *testing.T, name string) store.Store {
		s, err := spaces[made.Add(1)%int64(len(spaces))].Store(name, opts...)
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
	// A Watch is told what changed since its version from the shared
	// watch's memory, which holds each record's newest state: changes may
	// be merged (never a deletion).
	storetest.Run(t, newStore,
		storetest.WithDelete(del),
		storetest.WithCoalescingWatch(),
		storetest.WithCorrupt(func(t *testing.T, name string) {
			if _, err := sharedClient(t).Put(testContext(t), key(name), `{"format":1,"holder":`); err != nil {
				t.Fatal(err)
			}
		}),
	)
}

func newKeyspace(t *testing.T, c *clientv3.Client, prefix string) *etcd.Keyspace {
	t.Helper()
	ks, err := etcd.NewKeyspace(c, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func keyspaceStore(t *testing.T, ks *etcd.Keyspace, name string, opts ...etcd.Option) *etcd.Store {
	t.Helper()
	s, err := ks.Store(name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// watchFrom watches s from version after until the test ends.
func watchFrom(t *testing.T, s *etcd.Store, after string) <-chan store.Event {
	t.Helper()
	ch, err := s.Watch(testContext(t), after)
	if err != nil {
		t.Fatalf("Watch %s from %q: %v", s, after, err)
	}
	return ch
}

func TestNewKeyspaceRejectsBadInput(t *testing.T) {
	c := sharedClient(t)
	if _, err := etcd.NewKeyspace(nil, ""); err == nil {
		t.Error("NewKeyspace without a client succeeded")
	}
	for _, prefix := range []string{"leases", "/leases/", "/", "/a b"} {
		if _, err := etcd.NewKeyspace(c, prefix); err == nil {
			t.Errorf("NewKeyspace(%q) succeeded", prefix)
		}
	}
	ks := newKeyspace(t, c, "")
	if ks.Prefix() != etcd.DefaultPrefix {
		t.Errorf("Prefix %q, want the default %q", ks.Prefix(), etcd.DefaultPrefix)
	}
	for _, name := range []string{"", "a/b", "..", "a b"} {
		if _, err := ks.Store(name); err == nil {
			t.Errorf("Store(%q) succeeded", name)
		}
	}
	s := keyspaceStore(t, ks, "db", etcd.WithFenceKey())
	if s.Key() != etcd.DefaultPrefix+"/db" || s.FenceKey() != etcd.DefaultPrefix+"/db/term" {
		t.Errorf("key %q and fence key %q, want %q and %q", s.Key(), s.FenceKey(), etcd.DefaultPrefix+"/db", etcd.DefaultPrefix+"/db/term")
	}
}

// Any number of Watches of a Keyspace's Stores hold one watcher on the
// server, which goes away with the last of them; Stores of New hold one
// each.
func TestKeyspaceHoldsOneWatcher(t *testing.T) {
	const elections = 40
	srv := startServer(t, nil)
	c := newClient(t, etcd.Config{Endpoints: []string{srv.Endpoint()}})
	ks := newKeyspace(t, c, "/incumbent/leases")
	waitWatchers(t, srv, 0)

	ctx, cancel := context.WithCancel(testContext(t))
	stores := make([]*etcd.Store, elections)
	watches := make([]<-chan store.Event, elections)
	for i := range stores {
		stores[i] = keyspaceStore(t, ks, fmt.Sprintf("election-%02d", i))
		ch, err := stores[i].Watch(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		watches[i] = ch
	}
	waitWatchers(t, srv, 1)
	for i, s := range stores {
		rec, err := s.Create(ctx, held(fmt.Sprint("holder-", i), 0))
		if err != nil {
			t.Fatal(err)
		}
		if ev := next(t, watches[i]); ev.Err != nil || !sameRecord(ev.Record, rec) {
			t.Fatalf("%s: the watch reported %+v, want %+v", s, ev, rec)
		}
	}
	cancel()
	for _, ch := range watches {
		closed(t, ch)
	}
	waitWatchers(t, srv, 0)

	// The same elections' Stores of New: a watcher each.
	ctx, cancel = context.WithCancel(testContext(t))
	defer cancel()
	for i := range elections {
		s, err := etcd.New(c, "/incumbent/leases", fmt.Sprintf("election-%02d", i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Watch(ctx, ""); err != nil {
			t.Fatal(err)
		}
	}
	waitWatchers(t, srv, elections)
}

// waitWatchers waits until the member counts want watchers, for at most
// ten seconds: a cancelled watch leaves the server a moment after its
// channel closed.
func waitWatchers(t *testing.T, srv *etcdServer, want int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		got := watchers(t, srv)
		if got == want {
			return
		}
		select {
		case <-poll.C:
		case <-deadline:
			t.Fatalf("the etcd member has %d watchers, want %d", got, want)
		}
	}
}

// watchers reads how many watchers the member has, from its metrics.
func watchers(t *testing.T, srv *etcdServer) int {
	t.Helper()
	resp, err := http.Get(srv.Endpoint() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	const metric = "etcd_debugging_mvcc_watcher_total "
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), metric); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s%s: %v", metric, v, err)
			}
			return int(n)
		}
	}
	t.Fatalf("no metric %q at %s/metrics (%v)", metric, srv.Endpoint(), sc.Err())
	return 0
}

// A Watch whose caller reads nothing holds up no other Watch of the
// Keyspace, of its own record or another; once read, it reports states in
// order, ending with the newest, then the deletion with its revision.
func TestKeyspaceSlowWatchHoldsUpNoOther(t *testing.T) {
	ctx := testContext(t)
	c := sharedClient(t)
	ks := newKeyspace(t, c, testPrefix(t))
	a, b := keyspaceStore(t, ks, "a"), keyspaceStore(t, ks, "b")
	recA, err := a.Create(ctx, held("x", 0))
	if err != nil {
		t.Fatal(err)
	}
	recB, err := b.Create(ctx, held("x", 0))
	if err != nil {
		t.Fatal(err)
	}
	slow := watchFrom(t, keyspaceStore(t, ks, "a"), recA.Version) // not read until the end
	sameKey := watchFrom(t, keyspaceStore(t, ks, "a"), recA.Version)
	otherRecord := watchFrom(t, keyspaceStore(t, ks, "b"), recB.Version)
	for i := 1; i <= 20; i++ {
		recA.Transitions = int64(i)
		if recA, err = a.Update(ctx, recA); err != nil {
			t.Fatal(err)
		}
		recB.Transitions = int64(i)
		if recB, err = b.Update(ctx, recB); err != nil {
			t.Fatal(err)
		}
		untilRevision(t, sameKey, recA.Revision)
		untilRevision(t, otherRecord, recB.Revision)
	}
	untilRevision(t, slow, recA.Revision)

	del, err := c.Delete(ctx, a.Key())
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []<-chan store.Event{slow, sameKey} {
		if ev := next(t, ch); ev.Err != nil || !ev.Deleted || ev.Record.Revision != del.Header.Revision {
			t.Fatalf("after the deletion the watch reported %+v, want the deletion at revision %d", ev, del.Header.Revision)
		}
	}
}

// untilRevision reads events until one reports revision rev, failing the
// test on an error, a deletion, or a revision not above the one before.
func untilRevision(t *testing.T, ch <-chan store.Event, rev int64) {
	t.Helper()
	var last int64
	for {
		ev := next(t, ch)
		switch {
		case ev.Err != nil || ev.Deleted:
			t.Fatalf("the watch reported %+v, want revision %d", ev, rev)
		case ev.Record.Revision <= last || ev.Record.Revision > rev:
			t.Fatalf("the watch reported revision %d after %d, want a revision above it, up to %d", ev.Record.Revision, last, rev)
		}
		if last = ev.Record.Revision; last == rev {
			return
		}
	}
}

// When the shared watch loses its connection and etcd has compacted away
// what it missed, it reads the prefix again: every Watch stays open and is
// told the current state of its record, deletions included, where a
// Store's own watch ends with ErrCompacted.
func TestKeyspaceTellsTheCurrentStateAfterACompaction(t *testing.T) {
	ctx := testContext(t)
	proxy, err := tcpproxy.Start(strings.TrimPrefix(shared.Endpoint(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	cut := newClient(t, etcd.Config{Endpoints: []string{"http://" + proxy.Addr()}})
	admin := sharedClient(t)
	prefix := testPrefix(t)
	ks := newKeyspace(t, cut, prefix)

	direct := map[string]*etcd.Store{}
	recs := map[string]store.Record{}
	watches := map[string]<-chan store.Event{}
	for _, name := range []string{"deleted", "recreated", "updated", "unchanged"} {
		s, err := etcd.New(admin, prefix, name)
		if err != nil {
			t.Fatal(err)
		}
		direct[name] = s
		if recs[name], err = s.Create(ctx, held(name, 0)); err != nil {
			t.Fatal(err)
		}
		watches[name] = watchFrom(t, keyspaceStore(t, ks, name), recs[name].Version)
	}
	own, err := etcd.New(cut, prefix, "updated")
	if err != nil {
		t.Fatal(err)
	}
	ownWatch := watchFrom(t, own, recs["updated"].Version)

	// Cut the Keyspace's client off; change the records, and compact the
	// revisions its watches would resume from.
	proxy.Set(tcpproxy.Refuse)
	if _, err := admin.Delete(ctx, direct["deleted"].Key()); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Delete(ctx, direct["recreated"].Key()); err != nil {
		t.Fatal(err)
	}
	recreated, err := direct["recreated"].Create(ctx, held("again", 5))
	if err != nil {
		t.Fatal(err)
	}
	updated := recs["updated"]
	for i := 1; i <= 3; i++ {
		updated.Transitions = int64(i)
		if updated, err = direct["updated"].Update(ctx, updated); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.Compact(ctx, updated.Revision); err != nil {
		t.Fatal(err)
	}
	proxy.Set(tcpproxy.Pass)

	if ev := next(t, watches["deleted"]); ev.Err != nil || !ev.Deleted {
		t.Errorf("deleted: the watch reported %+v, want the deletion", ev)
	}
	if ev := next(t, watches["recreated"]); ev.Err != nil || !ev.Deleted {
		t.Errorf("recreated: the watch reported %+v, want the deletion first", ev)
	} else if ev := next(t, watches["recreated"]); ev.Err != nil || !sameRecord(ev.Record, recreated) {
		t.Errorf("recreated: after the deletion the watch reported %+v, want the new record %+v", ev, recreated)
	}
	if ev := next(t, watches["updated"]); ev.Err != nil || !sameRecord(ev.Record, updated) {
		t.Errorf("updated: the watch reported %+v, want the newest record %+v", ev, updated)
	}
	if ev := next(t, ownWatch); !errors.Is(ev.Err, rpctypes.ErrCompacted) {
		t.Errorf("the Store's own watch reported %+v, want an error wrapping ErrCompacted", ev)
	}

	// The shared watch goes on: the next change of any record is told.
	unchanged := recs["unchanged"]
	unchanged.Transitions = 1
	if unchanged, err = direct["unchanged"].Update(ctx, unchanged); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, watches["unchanged"]); ev.Err != nil || !sameRecord(ev.Record, unchanged) {
		t.Errorf("unchanged: after the compaction the watch reported %+v, want %+v", ev, unchanged)
	}
}

// A shared watch whose client is closed ends every Watch with an error.
func TestKeyspaceWatchEndsWhenTheClientCloses(t *testing.T) {
	c := newClient(t, etcd.Config{Endpoints: []string{shared.Endpoint()}})
	ks := newKeyspace(t, c, testPrefix(t))
	a := watchFrom(t, keyspaceStore(t, ks, "a"), "")
	b := watchFrom(t, keyspaceStore(t, ks, "b"), "")
	c.Close()
	for _, ch := range []<-chan store.Event{a, b} {
		if ev := next(t, ch); ev.Err == nil {
			t.Fatalf("the watch reported %+v, want an error", ev)
		} else {
			t.Logf("client closed: %v", ev.Err)
		}
		closed(t, ch)
	}
}

// A Keyspace's watch of its Stores covers the whole prefix: a user who may
// read and write the election's key but not read the prefix has each Watch
// refused with an error wrapping store.ErrPermission that names the key and
// the prefix, and may still read and write; with read permission on the
// prefix the Watch works.
func TestKeyspaceWatchNeedsReadPermissionOnThePrefix(t *testing.T) {
	ctx := testContext(t)
	srv := startServer(t, nil)
	const prefix, name = "/incumbent/leases", "db"
	key := prefix + "/" + name
	admin := newClient(t, etcd.Config{Endpoints: []string{srv.Endpoint()}})
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(admin.UserAdd(ctx, "root", "root-pw"))
	must(admin.UserGrantRole(ctx, "root", "root"))
	must(admin.RoleAdd(ctx, "lease-rw"))
	must(admin.RoleGrantPermission(ctx, "lease-rw", key, "", clientv3.PermissionType(clientv3.PermReadWrite)))
	must(admin.RoleAdd(ctx, "leases-read"))
	must(admin.RoleGrantPermission(ctx, "leases-read", prefix+"/", clientv3.GetPrefixRangeEnd(prefix+"/"), clientv3.PermissionType(clientv3.PermRead)))
	must(admin.UserAdd(ctx, "alice", "alice-pw"))
	must(admin.UserGrantRole(ctx, "alice", "lease-rw"))
	must(admin.UserAdd(ctx, "bob", "bob-pw"))
	must(admin.UserGrantRole(ctx, "bob", "lease-rw"))
	must(admin.UserGrantRole(ctx, "bob", "leases-read"))
	must(admin.AuthEnable(ctx))
	storeAs := func(user string) *etcd.Store {
		t.Helper()
		c := newClient(t, etcd.Config{Endpoints: []string{srv.Endpoint()}, Username: user, Password: user + "-pw"})
		return keyspaceStore(t, newKeyspace(t, c, prefix), name)
	}

	alice := storeAs("alice")
	rec, err := alice.Create(ctx, held("alice", 0))
	if err != nil {
		t.Fatalf("alice (readwrite on the key) create: %v", err)
	}
	for _, after := range []string{"", rec.Version} {
		_, err := alice.Watch(ctx, after)
		if !errors.Is(err, store.ErrPermission) || !strings.HasPrefix(err.Error(), "watch etcd key "+key) || !strings.Contains(err.Error(), prefix+"/") {
			t.Fatalf("alice (no read on the prefix) watch from %q: %v; want ErrPermission naming the key and the prefix", after, err)
		}
		t.Logf("alice: %v", err)
	}
	rec.Transitions = 1
	if rec, err = alice.Update(ctx, rec); err != nil {
		t.Fatalf("alice update: %v", err)
	}

	bob := storeAs("bob")
	events, err := bob.Watch(ctx, rec.Version)
	if err != nil {
		t.Fatalf("bob (read on the prefix) watch: %v", err)
	}
	rec.Transitions = 2
	if rec, err = alice.Update(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev.Err != nil || !sameRecord(ev.Record, rec) {
		t.Fatalf("bob's watch reported %+v, want %+v", ev, rec)
	}
}
