package election

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/incumbent-io/incumbent/store"
)

// observation is what a candidate knows about the record: its latest
// version and the local (monotonic) time at which that version was first
// seen. Expiry is judged from `at` only, never from stamps in the record.
type observation struct {
	known  bool // something has been observed at all
	exists bool
	seen   bool // the record has existed at some point
	rec    store.Record
	at     time.Time // when rec was first seen, or when the deletion was

	// gone is the last record seen before a deletion, when it was held:
	// candidates that saw it held wait out its lease, counted from the
	// moment they saw the deletion (at), before re-creating the record. The
	// holder may have renewed after the version this candidate saw last,
	// but not after the deletion.
	gone store.Record
	// lastRevision is the largest revision seen, of a record or of a
	// deletion: anything older is stale and ignored.
	lastRevision int64
	// lastTransitions is the largest transitions counter seen, kept across a
	// deletion so that a re-created record continues client-go's count.
	lastTransitions int64
}

// tracker keeps the latest observation of one store. A background watch
// feeds it; while the watch is down it polls every retry period. Reads and
// writes made by the elector feed it too.
type tracker struct {
	store   store.Store
	clock   Clock
	retry   time.Duration
	log     *slog.Logger
	metrics Metrics

	// onChange, when set, is called after each change of the observation,
	// outside mu, by whoever observed it (the elector publishes its status).
	onChange func()

	mu      sync.Mutex
	obs     observation
	changes uint64 // counts changes of obs
	subs    map[chan struct{}]struct{}

	// What keeps the observation fresh (see start) is active while a
	// goroutine of the tracker runs, or while the store follows the record
	// for it (store.Follower), which needs no goroutine: at most one of the
	// two at a time, handed from one to the other.
	amu    sync.Mutex
	active int
	idle   *sync.Cond // signalled when active drops to 0

	followed atomic.Bool // the store follows the record: the observation keeps itself fresh
}

func newTracker(s store.Store, clock Clock, retry time.Duration, log *slog.Logger, m Metrics) *tracker {
	if m == nil {
		m = nopMetrics{}
	}
	k := &tracker{store: s, clock: clock, retry: retry, log: log, metrics: m, subs: map[chan struct{}]struct{}{}}
	k.idle = sync.NewCond(&k.amu)
	return k
}

// latest returns the current observation.
func (k *tracker) latest() observation {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.obs
}

// load copies the current observation into o (without a copy on the
// caller's stack: see campaigner).
func (k *tracker) load(o *observation) {
	k.mu.Lock()
	defer k.mu.Unlock()
	*o = k.obs
}

// changed returns a channel that receives a value each time the
// observation changes. Call stop when done.
func (k *tracker) changed() (ch <-chan struct{}, stop func()) {
	c := make(chan struct{}, 1)
	k.mu.Lock()
	k.subs[c] = struct{}{}
	k.mu.Unlock()
	return c, func() {
		k.mu.Lock()
		delete(k.subs, c)
		k.mu.Unlock()
	}
}

// observe records the outcome of a write or a watch event: rec is the
// record, or exists is false when it is gone (rec then carries at most the
// deletion's revision). A version already seen keeps its first observation
// time; a state older than one already seen (a watch event delivered after
// this process's own write, say) is ignored.
func (k *tracker) observe(rec store.Record, exists bool) observation {
	return k.record(rec, exists, false)
}

// record is observe; current marks the answer of a read that nothing
// overtook: the store's current state, taken even when its revision is
// below one seen before. The store's revisions then went back (an etcd
// restored from a snapshot without bumping its revision, say): fencing
// tokens may repeat, which is reported, but the election goes on.
func (k *tracker) record(rec store.Record, exists, current bool) observation {
	o, changed := k.update(rec, exists, current)
	if changed && k.onChange != nil {
		k.onChange()
	}
	return o
}

// update is record, under mu; it reports whether the observation changed.
func (k *tracker) update(rec store.Record, exists, current bool) (_ observation, changed bool) {
	now := k.clock.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	o := k.obs
	wentBack := false
	if o.known && rec.Revision > 0 {
		switch {
		case rec.Revision < o.lastRevision && current:
			wentBack = true
		case rec.Revision < o.lastRevision:
			return o, false // older than what was seen
		case rec.Revision == o.lastRevision && (o.exists || !exists):
			return o, false // the same state (a revision seen as "gone" without one is not)
		}
	}
	switch {
	case !exists && o.known && !o.exists:
		return o, false // still gone
	case exists && o.known && o.exists && o.rec.Version == rec.Version:
		return o, false // same version
	}
	next := observation{known: true, exists: exists, rec: rec, at: now, seen: o.seen || exists,
		lastRevision:    max(o.lastRevision, rec.Revision),
		lastTransitions: max(o.lastTransitions, rec.Transitions)}
	if wentBack {
		k.log.Error("the store's revisions went back: was it restored from a backup without bumping its revision? Fencing tokens may repeat until its revisions pass the highest seen",
			"revision", rec.Revision, "highest_seen", o.lastRevision)
		next.lastRevision = rec.Revision
	}
	if !exists {
		next.rec = store.Record{}
		if o.exists && o.rec.Held() {
			next.gone = o.rec // waited out; a free record deleted needs no wait
		}
	}
	k.obs = next
	k.changes++
	for c := range k.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	return next, true
}

// read gets the record and observes the result. Errors other than
// ErrNotFound leave the observation unchanged. When the observation changed
// while the read was in flight (the watch delivered something), the read's
// answer may be the older one, so it is dropped: the watch reports changes
// in order and will report anything newer. (A record's revision tells an
// older answer apart too, but "not found" carries no revision.)
func (k *tracker) read(ctx context.Context) (observation, error) {
	k.mu.Lock()
	before := k.changes
	k.mu.Unlock()
	rec, err := k.store.Get(ctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return k.latest(), err
	}
	k.mu.Lock()
	stale := k.changes != before
	k.mu.Unlock()
	if stale {
		return k.latest(), nil
	}
	return k.record(rec, err == nil, true), nil
}

// watchRetryForbidden is how often a watch the store refused for lack of
// permission is tried again, in case the permission was granted since.
const watchRetryForbidden = 5 * time.Minute

// start keeps the observation fresh until ctx ends, in the background:
// it watches the record, and while no watch can be established it reads
// the record every retry period. A refused read ends it, and is sent on
// fatal, since retrying cannot cure it; a refused watch only costs speed:
// it is reported once, and the record is polled, with a new watch attempt
// every watchRetryForbidden. A store that follows the record for the
// election (store.Follower) needs no goroutine of the tracker while it
// does. wait returns once it has ended.
func (k *tracker) start(ctx context.Context, timeout time.Duration, fatal chan<- error) {
	k.amu.Lock()
	k.active++
	k.amu.Unlock()
	go k.loop(ctx, timeout, fatal, time.Time{}, false)
}

// wait returns once what start began has ended (after ctx ended).
func (k *tracker) wait() {
	k.amu.Lock()
	defer k.amu.Unlock()
	for k.active > 0 {
		k.idle.Wait()
	}
}

// finished ends what start began.
func (k *tracker) finished() {
	k.amu.Lock()
	defer k.amu.Unlock()
	k.active--
	if k.active == 0 {
		k.idle.Broadcast()
	}
}

// loop runs the tracker until ctx ends, or until the store follows the
// record for it: the end of that following starts a new loop. A following
// that ended less than a retry period after it began (at followed) is not
// tried again before a retry period passed, so that one that keeps breaking
// does not turn into a busy loop; one that ended in an error (broke) is
// followed by a read of the record, which reports what is wrong (a refusal
// ends the tracker) before the store is asked to follow again.
func (k *tracker) loop(ctx context.Context, timeout time.Duration, fatal chan<- error, followed time.Time, broke bool) {
	if !followed.IsZero() && k.clock.Now().Sub(followed) < k.retry && !sleep(k.clock, ctx.Done(), k.retry) {
		k.finished()
		return
	}
	handedOver, err := k.run(ctx, timeout, fatal, broke)
	if handedOver {
		return
	}
	if err != nil {
		select {
		case fatal <- err:
		default:
		}
	}
	k.finished()
}

// follow asks the store to follow the record for the election. It reports
// whether the store took over: the tracker's goroutine then ends, and the
// end of the following starts a new one.
func (k *tracker) follow(ctx context.Context, f store.Follower, timeout time.Duration, fatal chan<- error) (bool, error) {
	started := k.clock.Now()
	fn := func(ev store.Event) {
		if ev.Deleted {
			k.observe(store.Record{Revision: ev.Record.Revision}, false)
		} else {
			k.observe(ev.Record, true)
		}
	}
	ended := func(err error) {
		k.followed.Store(false)
		k.metrics.Watching(false, nil)
		if err != nil {
			k.log.Debug("following the lease record ended", "err", err)
		}
		if ctx.Err() != nil {
			k.finished()
			return
		}
		go k.loop(ctx, timeout, fatal, started, err != nil) // takes over being active
	}
	k.metrics.Watching(true, nil)
	k.followed.Store(true)
	ok, err := f.Follow(ctx, fn, ended)
	if !ok || err != nil {
		k.followed.Store(false)
		k.metrics.Watching(false, err)
	}
	return ok && err == nil, err
}

// following reports whether the store follows the record for the tracker
// (store.Follower): its observation is then as fresh as a read would make
// it, and kept so without requests.
func (k *tracker) following() bool { return k.followed.Load() }

// run is the tracker's loop: see start. It reports handedOver when the
// store took over following the record. With readFirst it reads the record
// before it asks the store to follow it.
func (k *tracker) run(ctx context.Context, timeout time.Duration, fatal chan<- error, readFirst bool) (handedOver bool, _ error) {
	var forbiddenUntil time.Time // no watch attempt before, after a refusal
	follower, _ := k.store.(store.Follower)
	for ctx.Err() == nil {
		if follower != nil && !readFirst && !k.clock.Now().Before(forbiddenUntil) {
			// A shared watch knows the record already: it follows it
			// for this election, without a read or a goroutine.
			ok, err := k.follow(ctx, follower, timeout, fatal)
			switch {
			case ok:
				if !forbiddenUntil.IsZero() {
					k.log.Info("watching the lease record again")
				}
				return true, nil
			case err != nil:
				if !k.watchFailed(ctx, err, &forbiddenUntil) {
					return false, nil
				}
				continue
			}
		}
		rctx, cancel := context.WithTimeout(ctx, timeout)
		o, err := k.read(rctx)
		cancel()
		if err != nil {
			if errors.Is(err, store.ErrPermission) {
				return false, err
			}
			k.log.Warn("cannot read the lease record; retrying", "err", err)
			if !sleep(k.clock, ctx.Done(), k.retry) {
				break
			}
			continue
		}
		if readFirst {
			readFirst = false
			if follower != nil {
				continue // the record can be read: follow it again
			}
		}
		if k.clock.Now().Before(forbiddenUntil) {
			if !sleep(k.clock, ctx.Done(), k.retry) {
				break
			}
			continue
		}
		after := ""
		if o.exists {
			after = o.rec.Version
		}
		started := k.clock.Now()
		events, err := k.store.Watch(ctx, after)
		if err != nil {
			if !k.watchFailed(ctx, err, &forbiddenUntil) {
				break
			}
			continue
		}
		if !forbiddenUntil.IsZero() {
			k.log.Info("watching the lease record again")
			forbiddenUntil = time.Time{}
		}
		if !k.followWatch(ctx, events, started) {
			break
		}
	}
	return false, nil
}

// followWatch observes the events of a watch started at started until it ends,
// then pauses if it ended at once, so that a watch that keeps breaking does
// not turn into a busy loop. It reports false when ctx ended.
func (k *tracker) followWatch(ctx context.Context, events <-chan store.Event, started time.Time) bool {
	k.metrics.Watching(true, nil)
	for ev := range events {
		switch {
		case ev.Err != nil:
			k.log.Debug("lease watch ended", "err", ev.Err)
		case ev.Deleted:
			k.observe(store.Record{Revision: ev.Record.Revision}, false)
		default:
			k.observe(ev.Record, true)
		}
	}
	k.metrics.Watching(false, nil)
	if k.clock.Now().Sub(started) < k.retry {
		return sleep(k.clock, ctx.Done(), k.retry)
	}
	return ctx.Err() == nil
}

// watchFailed reports a watch that could not start, and waits a retry
// period: a refused watch is reported once and not tried again for
// watchRetryForbidden (forbiddenUntil), the record being polled meanwhile.
// It reports false when ctx ended.
func (k *tracker) watchFailed(ctx context.Context, err error, forbiddenUntil *time.Time) bool {
	k.metrics.Watching(false, err)
	switch {
	case errors.Is(err, store.ErrPermission):
		if forbiddenUntil.IsZero() {
			k.log.Warn(`the lease record cannot be watched; polling it every retry period instead, which costs one read per retry period and slows hand-overs to up to a retry period: add verb "watch" to the candidate's permissions`,
				"err", err, "retry_period", k.retry)
		}
		*forbiddenUntil = k.clock.Now().Add(watchRetryForbidden)
	case ctx.Err() == nil:
		k.log.Warn("cannot watch the lease record; polling every retry period", "err", err)
	}
	return sleep(k.clock, ctx.Done(), k.retry)
}
