package election

import (
	"context"
	"errors"
	"log/slog"
	"sync"
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

	mu      sync.Mutex
	obs     observation
	changes uint64 // counts changes of obs
	subs    map[chan struct{}]struct{}
}

func newTracker(s store.Store, clock Clock, retry time.Duration, log *slog.Logger, m Metrics) *tracker {
	if m == nil {
		m = nopMetrics{}
	}
	return &tracker{store: s, clock: clock, retry: retry, log: log, metrics: m, subs: map[chan struct{}]struct{}{}}
}

// latest returns the current observation.
func (k *tracker) latest() observation {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.obs
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
			return o // older than what was seen
		case rec.Revision == o.lastRevision && (o.exists || !exists):
			return o // the same state (a revision seen as "gone" without one is not)
		}
	}
	switch {
	case !exists && o.known && !o.exists:
		return o // still gone
	case exists && o.known && o.exists && o.rec.Version == rec.Version:
		return o // same version
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
	return next
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

// run keeps the observation fresh until ctx ends: it watches the record, and
// while no watch can be established it reads the record every retry period.
// A refused read is returned at once, since retrying cannot cure it; a
// refused watch only costs speed: it is reported once, and the record is
// polled, with a new watch attempt every watchRetryForbidden.
func (k *tracker) run(ctx context.Context, timeout time.Duration) error {
	var forbiddenUntil time.Time // no watch attempt before, after a refusal
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		o, err := k.read(rctx)
		cancel()
		if err != nil {
			if errors.Is(err, store.ErrPermission) {
				return err
			}
			k.log.Warn("cannot read the lease record; retrying", "err", err)
			if !sleep(k.clock, ctx.Done(), k.retry) {
				break
			}
			continue
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
			k.metrics.Watching(false, err)
			switch {
			case errors.Is(err, store.ErrPermission):
				if forbiddenUntil.IsZero() {
					k.log.Warn(`the lease record cannot be watched; polling it every retry period instead, which costs one read per retry period and slows hand-overs to up to a retry period: add verb "watch" to the candidate's permissions`,
						"err", err, "retry_period", k.retry)
				}
				forbiddenUntil = k.clock.Now().Add(watchRetryForbidden)
			case ctx.Err() == nil:
				k.log.Warn("cannot watch the lease record; polling every retry period", "err", err)
			}
			if !sleep(k.clock, ctx.Done(), k.retry) {
				break
			}
			continue
		}
		if !forbiddenUntil.IsZero() {
			k.log.Info("watching the lease record again")
			forbiddenUntil = time.Time{}
		}
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
		// A watch that breaks at once must not turn into a busy loop.
		if k.clock.Now().Sub(started) < k.retry && !sleep(k.clock, ctx.Done(), k.retry) {
			break
		}
	}
	return nil
}
