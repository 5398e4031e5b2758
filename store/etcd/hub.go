package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// hub is the one watch of a Keyspace's prefix, shared by the Watches of its
// Stores and fanned out to them by election name.
//
// Like an informer, it reads every record under the prefix (in pages, at
// one revision), keeps the newest key-value of each in memory, and watches
// the prefix from the revision after that read, applying each change to
// memory. When etcd can no longer replay the changes the watch missed (it
// resumes after a lost connection from the last revision it delivered,
// which a compaction may have removed), the hub reads the prefix again and
// carries on: memory then holds the current state, and each subscriber is
// told the difference, a deletion included (see known).
//
// It tells a subscriber only that its record may have changed, by a wake-up
// that never blocks; the subscriber's own goroutine then takes the record's
// state from memory and tells its caller what it has not told yet (see
// known.next). So the hub never waits for a subscriber, and a subscriber
// that reads slowly is told, once it reads, the newest state: never a state
// older than one it told, and never skipping a deletion.
//
// A run of the hub starts with its first subscriber and ends when the last
// leaves (its context ended), or when the shared watch fails for a reason
// other than compaction; a failure ends every subscription with the error,
// as a Store's own watch would end with it (a refused read or watch, the
// member cut off from its cluster's leader, the client closed), and the
// next subscriber starts a new run.
type hub struct {
	client *clientv3.Client
	prefix string // the Keyspace's prefix and the "/" after it

	mu    sync.Mutex
	subs  map[string]map[*subscriber]struct{} // of the current run, by election name
	count int
	run   *hubRun // nil while no Watch subscribes
}

// hubRun is one run of the shared watch.
type hubRun struct {
	cancel context.CancelFunc
	ready  chan struct{} // closed once the shared watch is confirmed, or failed before
	err    error         // why the run failed before it was ready; set before ready is closed

	// Under hub.mu:
	cache map[string]entry // by election name
	rev   int64            // every change up to this revision is in cache
}

// entry is the hub's state of one record.
type entry struct {
	kv      *mvccpb.KeyValue // the newest key-value; nil when deleted
	deleted int64            // the revision of the latest deletion the watch reported, 0 if none
}

// subscriber is one Watch's share of the hub.
type subscriber struct {
	name string
	run  *hubRun
	wake chan struct{} // holds a wake-up: the record may have changed
	err  error         // why the run ended; under hub.mu
}

// listPage is how many keys one page of the hub's read holds.
const listPage = 500

func newHub(client *clientv3.Client, prefix string) *hub {
	return &hub{client: client, prefix: prefix, subs: map[string]map[*subscriber]struct{}{}}
}

// subscribe registers a Watch of the election name, starting a run when
// there is none. The subscriber holds a wake-up at once, so that its first
// look at the hub's memory tells what changed before it subscribed.
func (h *hub) subscribe(name string) *subscriber {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.run == nil {
		ctx, cancel := context.WithCancel(context.Background())
		h.run = &hubRun{cancel: cancel, ready: make(chan struct{})}
		go h.loop(ctx, h.run)
	}
	s := &subscriber{name: name, run: h.run, wake: make(chan struct{}, 1)}
	s.wake <- struct{}{}
	if h.subs[name] == nil {
		h.subs[name] = map[*subscriber]struct{}{}
	}
	h.subs[name][s] = struct{}{}
	h.count++
	return s
}

// unsubscribe ends s. The last subscriber ends the run.
func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	subs := h.subs[s.name]
	if _, ok := subs[s]; !ok {
		return // dropped when its run failed
	}
	delete(subs, s)
	if len(subs) == 0 {
		delete(h.subs, s.name)
	}
	h.count--
	if h.count == 0 {
		h.run.cancel()
		h.run = nil
	}
}

// state returns the hub's state of s's record, the revision up to which
// that state is complete, and why the run ended, if it did.
func (h *hub) state(s *subscriber) (entry, int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.err != nil {
		return entry{}, 0, s.err
	}
	return s.run.cache[s.name], s.run.rev, nil
}

// loop runs r until ctx ends (the last subscriber left) or the shared watch
// fails: it reads the prefix, then watches it from there, and reads it again
// whenever the watch cannot be resumed for compaction.
func (h *hub) loop(ctx context.Context, r *hubRun) {
	for {
		rev, err := h.list(ctx, r)
		if errors.Is(err, rpctypes.ErrCompacted) {
			continue // compacted between two pages: read it all again
		}
		if err == nil {
			err = h.watch(ctx, r, rev)
			if errors.Is(err, rpctypes.ErrCompacted) {
				continue
			}
		}
		if ctx.Err() == nil {
			h.fail(r, err)
		}
		return
	}
}

// list reads every record under the prefix, at one revision, into r's
// memory, and wakes every subscriber, since any record may have changed
// since the memory it replaces. It returns the revision of the read.
func (h *hub) list(ctx context.Context, r *hubRun) (int64, error) {
	lctx, cancel := context.WithTimeout(ctx, watchStartTimeout)
	defer cancel()
	cache := map[string]entry{}
	var rev int64
	from, end := h.prefix, clientv3.GetPrefixRangeEnd(h.prefix)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(listPage)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := h.client.Get(lctx, from, opts...)
		if err != nil {
			return 0, fmt.Errorf("read the records: %w", err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			if name, ok := h.nameOf(kv.Key); ok {
				cache[name] = entry{kv: kv}
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	r.cache, r.rev = cache, rev
	for _, subs := range h.subs {
		wakeAll(subs)
	}
	return rev, nil
}

// watch watches the prefix from the revision after rev, applying every
// change to r's memory, until ctx ends or the watch fails; it returns why
// (an error wrapping rpctypes.ErrCompacted when etcd can no longer replay
// what it missed). The first time, it makes r ready once etcd has confirmed
// the watch.
func (h *hub) watch(ctx context.Context, r *hubRun, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	responses := h.client.Watch(wctx, h.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithCreatedNotify())
	start := time.NewTimer(watchStartTimeout)
	defer start.Stop()
	unconfirmed := start.C // nil once etcd has confirmed the watch
	for {
		var resp clientv3.WatchResponse
		var ok bool
		select {
		case resp, ok = <-responses:
		case <-unconfirmed:
			return fmt.Errorf("etcd did not confirm the watch within %v", watchStartTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
		switch {
		case !ok && ctx.Err() != nil:
			return ctx.Err()
		case !ok:
			return errors.New("the etcd client closed the watch")
		}
		if err := resp.Err(); err != nil {
			return err
		}
		if unconfirmed != nil {
			unconfirmed = nil
			h.ready(r)
		}
		if len(resp.Events) > 0 {
			h.apply(ctx, r, resp.Events)
		}
	}
}

// ready marks r's shared watch as confirmed.
func (h *hub) ready(r *hubRun) {
	select {
	case <-r.ready:
	default:
		close(r.ready)
	}
}

// apply takes the events of one watch response into r's memory and wakes
// the subscribers of the records they changed. etcd sends all the events of
// one revision in one response, so r.rev stays a revision up to which
// memory is complete.
func (h *hub) apply(ctx context.Context, r *hubRun, events []*clientv3.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	for _, ev := range events {
		r.rev = max(r.rev, ev.Kv.ModRevision)
		name, ok := h.nameOf(ev.Kv.Key)
		if !ok {
			continue // a fence key, or the record of a longer prefix
		}
		e := r.cache[name]
		if ev.Type == clientv3.EventTypeDelete {
			e.kv, e.deleted = nil, ev.Kv.ModRevision // a deletion's mod revision is its own
		} else {
			e.kv = ev.Kv
		}
		r.cache[name] = e
		wakeAll(h.subs[name])
	}
}

// fail ends r with err: every subscriber is told, and the next Watch starts
// a new run. Before r was ready, the Watches waiting for it return err.
func (h *hub) fail(r *hubRun, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-r.ready:
	default:
		r.err = err
		close(r.ready)
	}
	if h.run != r {
		return
	}
	for _, subs := range h.subs {
		for s := range subs {
			s.err = err
		}
		wakeAll(subs)
	}
	clear(h.subs)
	h.count = 0
	h.run = nil
	r.cancel()
}

// nameOf returns the election name whose record is key, if it is one: a
// key right under the prefix (not a fence key <name>/term, nor a key under a
// longer prefix).
func (h *hub) nameOf(key []byte) (string, bool) {
	name, ok := strings.CutPrefix(string(key), h.prefix)
	return name, ok && name != "" && !strings.Contains(name, "/")
}

// wakeAll wakes each subscriber without waiting: one already woken reads
// its record once for both.
func wakeAll(subs map[*subscriber]struct{}) {
	for s := range subs {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// known is what a Watch has told its caller of its record: whether the
// record existed as of revision rev (the revision of the last state told,
// or the version the Watch started from).
type known struct {
	exists bool
	rev    int64
}

// next returns what the Watch must tell so that its caller knows e, the
// hub's state of the record, complete up to revision hubRev: a deletion
// (with its revision, or zero when it is not known), then the record kv
// (nil: none), and moves k to that state. It tells nothing that is not newer
// than k: a hub behind what the caller knows has nothing to tell yet.
//
// A deletion is never missed: a record that exists now but was created
// after k.rev, while the caller knew it existing, was deleted in between;
// one that is gone now and existed at k.rev, in memory complete past k.rev,
// was deleted after it. A deletion's revision is told only when it is
// newer than what the caller knows (otherwise zero), so that it is never
// taken for an old event.
func (k *known) next(e entry, hubRev int64) (deleted bool, deletedRev int64, kv *mvccpb.KeyValue) {
	if e.kv != nil {
		if e.kv.ModRevision <= k.rev {
			return false, 0, nil // what the caller knows, or older
		}
		if k.exists && e.kv.CreateRevision > k.rev {
			deleted = true
			if e.deleted > k.rev && e.deleted < e.kv.CreateRevision {
				deletedRev = e.deleted
			}
		}
		*k = known{exists: true, rev: e.kv.ModRevision}
		return deleted, deletedRev, e.kv
	}
	if !k.exists || hubRev < k.rev {
		return false, 0, nil // still gone, or the hub has not caught up
	}
	if e.deleted > k.rev {
		deletedRev = e.deleted
	}
	*k = known{exists: false, rev: hubRev}
	return true, deletedRev, nil
}
