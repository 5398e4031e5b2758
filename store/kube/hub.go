package kube

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/incumbent-io/incumbent/store"
)

// hub is one watch of all the Leases of a namespace, shared by the Stores of
// a Client and fanned out to them by name (WatchNamespace).
//
// Like an informer, it lists the namespace's Leases, keeps them in memory
// and watches from the list's revision; a watch the API server ends is
// resumed from the last revision seen, and one it can no longer resume (410
// Gone) is replaced by a new list, whose differences are told as changes.
// Because it holds every Lease, a Store that subscribes with the version it
// read last is told at once what changed since, with no request: a newer
// state, or the deletion (and, if the Lease was re-created, the new one:
// told apart by its UID).
//
// It runs while it has subscribers. It never blocks on one: what a
// subscriber has not read yet waits, merged into the Lease's newest state
// (a deletion is never merged away), so a subscriber may miss intermediate
// states of a Lease, as the store.Store contract allows, never the latest.
type hub struct {
	leases   hubClient
	ns       string
	fallback bool                       // WatchAuto: a refusal is given up on, not returned
	refused  func(ns string, err error) // tells the Client of a refusal (with fallback)
	clock    func() time.Time           // time.Now, for the refusal's hold
	restart  time.Duration              // wait before a new list or watch after an error

	mu        sync.Mutex
	subs      map[string]map[*subscriber]struct{} // by Lease name
	count     int
	running   context.CancelFunc // nil while stopped
	synced    bool               // cache and rv reflect a list and the watch since
	listed    bool               // this run has listed (its cache, if not synced, is being relisted)
	cache     map[string]*coordinationv1.Lease
	rv        int64     // every change up to this revision is in cache
	downSince time.Time // the list or watch has failed since, without a watch started
	err       error     // the refusal of the last run (without fallback)
	refusedAt time.Time // when err was set
}

// hubClient is what a hub needs of a leaseClient.
type hubClient interface {
	List(ctx context.Context, opts metav1.ListOptions) (*coordinationv1.LeaseList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// subscriberBuffer is how many events a subscriber's channel holds; beyond
// them they wait in its pending list. An election's Lease changes about
// once per renewal, and its tracker reads each event at once: four is ample.
const subscriberBuffer = 4

// listPage is how many Leases one page of the hub's list holds.
const listPage = 500

// errOwnWatch tells a Store to watch its own Lease: the shared watch of its
// namespace was refused and given up on.
var errOwnWatch = errors.New("the shared watch was given up on")

// subscriber is one Store's Watch on a hub.
type subscriber struct {
	name   string
	from   position // what the subscriber knows, until primed
	primed bool
	last   int64                                   // the newest revision told, or known to the subscriber
	exists bool                                    // what the subscriber knows: the Lease exists (once primed)
	ch     chan store.Event                        // nil with fn
	fn     func(store.Event)                       // instead of ch: see store.Follower
	ended  func(error)                             // with fn: called once, when dropped
	event  func(*coordinationv1.Lease) store.Event // decodes a Lease for this Store
	stop   func() bool                             // stops the context.AfterFunc

	// A subscriber that does not keep up is not waited for: what it has not
	// read yet waits in pending, merged into the newest state (deletions
	// kept), and a goroutine of its own feeds it (flushing) until it has
	// caught up.
	pending   []store.Event
	flushing  bool
	closing   bool          // close ch once pending is told (after an Err)
	abandoned bool          // ended: close ch without telling the rest
	done      chan struct{} // closed when abandoned while flushing
}

func newHub(leases hubClient, ns string, fallback bool, refused func(string, error)) *hub {
	return &hub{leases: leases, ns: ns, fallback: fallback, refused: refused, clock: time.Now, restart: time.Second,
		subs: map[string]map[*subscriber]struct{}{}}
}

// position is where a subscription starts: after the version of the Lease
// the subscriber read last (exists), or after a revision at which the Lease
// did not exist, or (current) with the Lease's state as the hub knows it.
type position struct {
	rev     int64     // the version read, or the revision it was absent at
	uid     types.UID // the Lease's UID at rev, if known
	exists  bool
	current bool
}

// subscribe reports the changes to Lease name after the position from on
// the returned channel, until ctx ends:
//
//   - after a version: what changed since, then what follows;
//   - after a revision at which the Lease did not exist: what was created
//     since, then what follows;
//   - current: first the Lease as the hub knows it, or its deletion if it
//     knows none, then what follows.
func (h *hub) subscribe(ctx context.Context, name string, from position, event func(*coordinationv1.Lease) store.Event) (<-chan store.Event, error) {
	ch := make(chan store.Event, subscriberBuffer)
	if err := h.add(ctx, &subscriber{name: name, from: from, ch: ch, event: event, done: make(chan struct{})}); err != nil {
		return nil, err
	}
	return ch, nil
}

// follower is subscribe for a store.Follower: the events are given to fn,
// and ended is called when the subscription ends.
func (h *hub) follower(ctx context.Context, name string, from position, event func(*coordinationv1.Lease) store.Event, fn func(store.Event), ended func(error)) error {
	return h.add(ctx, &subscriber{name: name, from: from, fn: fn, ended: ended, event: event})
}

// add starts subscription s.
func (h *hub) add(ctx context.Context, s *subscriber) error {
	name := s.name
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil && h.clock().Sub(h.refusedAt) < watchRetryForbidden {
		return h.err
	}
	if h.subs[name] == nil {
		h.subs[name] = map[*subscriber]struct{}{}
	}
	h.subs[name][s] = struct{}{}
	h.count++
	if h.running == nil {
		rctx, cancel := context.WithCancel(context.Background())
		h.running = cancel
		go h.run(rctx)
	}
	s.stop = context.AfterFunc(ctx, func() { h.unsubscribe(s) })
	if h.synced {
		h.prime(s)
	}
	return nil
}

// hubOutage is how long a hub that has listed keeps its subscribers while
// it cannot watch.
const hubOutage = 30 * time.Second

// watchRetryForbidden is how long a refused shared watch (WatchNamespace)
// keeps failing every Watch before it is tried again.
const watchRetryForbidden = 5 * time.Minute

// unsubscribe ends s, after its context ended.
func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.drop(s, true, nil)
}

// drop forgets s and closes its channel: at once when abandon is set,
// otherwise once it has read what is pending; or, for a follower, tells it
// why it ended (err). The last one stops the hub. Called with mu.
func (h *hub) drop(s *subscriber, abandon bool, err error) {
	subs := h.subs[s.name]
	if _, ok := subs[s]; !ok {
		if abandon && s.flushing && !s.abandoned {
			s.abandoned = true
			close(s.done)
		}
		return
	}
	delete(subs, s)
	if len(subs) == 0 {
		delete(h.subs, s.name)
	}
	if s.stop != nil && !(s.flushing && !abandon) {
		s.stop() // (one still flushing ends with its context, if not read to the end)
	}
	switch {
	case s.fn != nil:
		s.ended(err)
	case !s.flushing:
		close(s.ch)
	case abandon:
		s.abandoned = true
		close(s.done)
	default:
		s.closing = true
	}
	h.count--
	if h.count == 0 && h.running != nil {
		h.running()
		h.running = nil
		h.synced, h.listed, h.cache, h.rv, h.downSince = false, false, nil, 0, time.Time{}
	}
}

// send tells s ev without waiting: into its channel if there is room and
// nothing is pending, else into pending, merged with a pending state that
// ev supersedes. An Err ends s once told. Called with mu.
func (h *hub) send(s *subscriber, ev store.Event) {
	if s.fn != nil {
		if ev.Err != nil {
			h.drop(s, true, ev.Err)
			return
		}
		s.fn(ev)
		return
	}
	if !s.flushing {
		select {
		case s.ch <- ev:
			if ev.Err != nil {
				h.drop(s, false, nil)
			}
			return
		default:
		}
	}
	if n := len(s.pending); n > 0 && ev.Err == nil && !ev.Deleted {
		if last := s.pending[n-1]; last.Err == nil && !last.Deleted {
			s.pending[n-1] = ev // a newer state of the record replaces an older one
			return
		}
	}
	s.pending = append(s.pending, ev)
	if !s.flushing {
		s.flushing = true
		go h.flush(s)
	}
	if ev.Err != nil {
		h.drop(s, false, nil)
	}
}

// flush feeds s what is pending, until nothing is, then ends.
func (h *hub) flush(s *subscriber) {
	for {
		h.mu.Lock()
		if s.abandoned || (len(s.pending) == 0 && s.closing) {
			s.flushing, s.pending = false, nil
			close(s.ch)
			h.mu.Unlock()
			return
		}
		if len(s.pending) == 0 {
			s.flushing, s.pending = false, nil
			h.mu.Unlock()
			return
		}
		ev := s.pending[0]
		s.pending = s.pending[1:]
		h.mu.Unlock()
		select {
		case s.ch <- ev:
		case <-s.done:
		}
	}
}

// tell tells s the Lease l (nil: its deletion, at revision rev), if it is
// newer than what s knows. A deletion the hub did not see itself (it was
// listed away) is told with a revision at or below which it happened, so
// that a subscriber that has seen something newer can tell it is stale.
// Called with mu.
func (h *hub) tell(s *subscriber, l *coordinationv1.Lease, rev int64) {
	if _, ok := h.subs[s.name][s]; !ok {
		return // ended (by an Err told before)
	}
	if rev > 0 && rev <= s.last {
		return
	}
	s.last = max(s.last, rev)
	s.exists = l != nil
	if l == nil {
		h.send(s, store.Event{Deleted: true, Record: store.Record{Revision: rev}})
		return
	}
	h.send(s, s.event(l))
}

// prime tells a new subscriber what it does not know yet, from the cache
// (see subscribe). Called with mu, once synced.
func (h *hub) prime(s *subscriber) {
	s.primed = true
	l, from := h.cache[s.name], s.from
	s.exists = from.exists
	switch {
	case from.current && l != nil:
		h.tell(s, l, 0)
		s.last = max(s.last, h.rv)
	case from.current:
		h.tell(s, nil, h.rv) // absent as of h.rv
	case !from.exists:
		s.last = from.rev
		if l != nil && revisionOf(l) > from.rev {
			h.tell(s, l, revisionOf(l))
		}
	case l != nil && revisionOf(l) > from.rev:
		if l.UID != from.uid { // the caller knows the UID: see Store.watchShared
			s.last = from.rev
			h.tell(s, nil, revisionOf(l)-1) // deleted and created again since
		}
		h.tell(s, l, revisionOf(l))
	case l == nil && h.rv >= from.rev:
		s.last = from.rev
		h.tell(s, nil, h.rv) // deleted since
	default:
		// Unchanged, or the hub has not seen that version yet: it will
		// tell what follows it.
		s.last = from.rev
	}
}

// known returns the Lease name as the hub knows it, if it has listed and
// knows one.
func (h *hub) known(name string) *coordinationv1.Lease {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.synced {
		return nil
	}
	return h.cache[name]
}

// run lists and watches until ctx ends (the last subscriber left).
func (h *hub) run(ctx context.Context) {
	for ctx.Err() == nil {
		h.mu.Lock()
		synced, rv := h.synced, h.rv
		h.mu.Unlock()
		if !synced {
			list, err := h.list(ctx)
			if err != nil {
				if h.failed(ctx, err) {
					return
				}
				continue
			}
			h.resync(ctx, list)
			continue
		}
		w, err := h.leases.Watch(ctx, metav1.ListOptions{ResourceVersion: strconv.FormatInt(rv, 10), AllowWatchBookmarks: true})
		if err != nil {
			if h.failed(ctx, err) {
				return
			}
			continue
		}
		started := h.clock()
		h.follow(ctx, w)
		w.Stop()
		if h.clock().Sub(started) < h.restart && !sleepCtx(ctx, h.restart) {
			return
		}
	}
}

// list reads every Lease of the namespace, in pages.
func (h *hub) list(ctx context.Context) (*coordinationv1.LeaseList, error) {
	all := &coordinationv1.LeaseList{}
	opts := metav1.ListOptions{Limit: listPage}
	for {
		page, err := h.leases.List(ctx, opts)
		if err != nil {
			return nil, err
		}
		if all.ResourceVersion == "" {
			all.ResourceVersion = page.ResourceVersion // the snapshot every page is of
		}
		all.Items = append(all.Items, page.Items...)
		if page.Continue == "" {
			return all, nil
		}
		opts.Continue = page.Continue
	}
}

// failed handles an error of a list or a watch: 410 Gone makes the hub list
// again; anything else ends every subscription, and so the run. It reports
// whether the run is over.
func (h *hub) failed(ctx context.Context, err error) bool {
	switch {
	case ctx.Err() != nil:
		return true
	case apierrors.IsResourceExpired(err) || apierrors.IsGone(err):
		h.mu.Lock()
		if ctx.Err() == nil {
			h.synced = false // too old to resume: list again
		}
		h.mu.Unlock()
		return false
	case apierrors.IsForbidden(err):
		h.refuse(ctx, err)
		return true
	}
	// A hub that has listed goes on from its revision while the API server
	// cannot answer for a moment (overloaded, restarting): its subscribers
	// keep what they know, rather than all reading at once. Credentials
	// rejected, a hub that never listed, or an outage longer than
	// hubOutage end every subscription: each election then reads its
	// Lease, which reports why it cannot, and polls until it can follow
	// again, as while any watch is down.
	h.mu.Lock()
	defer h.mu.Unlock()
	if ctx.Err() != nil {
		return true
	}
	now := h.clock()
	if h.downSince.IsZero() {
		h.downSince = now
	}
	if h.listed && !apierrors.IsUnauthorized(err) && now.Sub(h.downSince) < hubOutage {
		h.mu.Unlock()
		ok := sleepCtx(ctx, h.restart)
		h.mu.Lock()
		return !ok
	}
	broken := fmt.Errorf("watch leases in namespace %q: %w", h.ns, err)
	for _, subs := range h.subs {
		for s := range subs {
			h.drop(s, true, broken)
		}
	}
	return true
}

// refuse ends every subscription after the API server refused the shared
// watch: with fallback the Client gives it up, and the elections watch their
// own Leases; without, their Watch fails with the refusal for a while.
func (h *hub) refuse(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	perm := fmt.Errorf("watch leases in namespace %q: %w: the API server refused verb \"list\" or \"watch\" on resource \"leases\" (group coordination.k8s.io) for all the namespace's Leases, which one shared watch needs: %w",
		h.ns, store.ErrPermission, err)
	if h.fallback {
		h.refused(h.ns, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	if !h.fallback {
		h.err, h.refusedAt = perm, h.clock()
	}
	for _, subs := range h.subs {
		for s := range subs {
			h.drop(s, true, perm)
		}
	}
}

// resync takes a new list: the first one primes the waiting subscribers;
// a later one (after 410 Gone) tells each subscriber what changed.
func (h *hub) resync(ctx context.Context, list *coordinationv1.LeaseList) {
	rv, err := strconv.ParseInt(list.ResourceVersion, 10, 64)
	if err != nil || rv <= 0 {
		rv = 0
	}
	cache := make(map[string]*coordinationv1.Lease, len(list.Items))
	for i := range list.Items {
		l := &list.Items[i]
		trim(l)
		cache[l.Name] = l
		rv = max(rv, revisionOf(l))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	old, first := h.cache, h.cache == nil
	h.cache, h.rv, h.synced, h.listed = cache, rv, true, true
	for name, subs := range h.subs {
		for s := range subs {
			if first || !s.primed {
				h.prime(s)
				continue
			}
			was, now := old[name], cache[name]
			switch {
			case now == nil && s.exists:
				h.tell(s, nil, rv) // deleted while the hub could not watch
			case now != nil && was != nil && now.UID != was.UID && s.exists:
				h.tell(s, nil, revisionOf(now)-1) // deleted and created again
			}
			if now != nil {
				h.tell(s, now, revisionOf(now))
			}
		}
	}
}

// follow applies the events of w until it ends or ctx does.
func (h *hub) follow(ctx context.Context, w watch.Interface) {
	for {
		var ev watch.Event
		var ok bool
		select {
		case ev, ok = <-w.ResultChan():
		case <-ctx.Done():
			return
		}
		if !ok {
			return
		}
		if ev.Type == watch.Error {
			h.failed(ctx, apierrors.FromObject(ev.Object))
			return
		}
		l, isLease := ev.Object.(*coordinationv1.Lease)
		if !isLease {
			continue
		}
		h.apply(ctx, ev.Type, l)
	}
}

// apply takes one event of the watch into the cache and tells the Lease's
// subscribers.
func (h *hub) apply(ctx context.Context, typ watch.EventType, l *coordinationv1.Lease) {
	rev, name := revisionOf(l), l.Name
	trim(l)
	h.mu.Lock()
	defer h.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	h.rv = max(h.rv, rev)
	h.downSince = time.Time{} // the watch delivers
	switch typ {
	case watch.Added, watch.Modified:
		h.cache[name] = l
	case watch.Deleted:
		delete(h.cache, name)
		l = nil
	default: // a bookmark only moves rv
		return
	}
	for s := range h.subs[name] {
		h.tell(s, l, rev)
	}
}

// revisionOf is l's resourceVersion as a number; zero when it is not one.
func revisionOf(l *coordinationv1.Lease) int64 {
	rv, err := strconv.ParseInt(l.ResourceVersion, 10, 64)
	if err != nil || rv < 0 {
		return 0
	}
	return rv
}

// sleepCtx waits d, or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
