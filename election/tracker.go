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
	at     time.Time

	// When the record was deleted while held, the holder and the moment its
	// lease would have expired from the last version seen: candidates that
	// saw it held wait until then before re-creating it.
	goneHolder string
	goneUntil  time.Time
	// lastTransitions is the largest transitions counter seen, kept across a
	// deletion so that a re-created record continues the token sequence.
	lastTransitions int64
}

// tracker keeps the latest observation of one store. A background watch
// feeds it; while the watch is down it polls every retry period. Reads and
// writes made by the elector feed it too.
type tracker struct {
	store store.Store
	retry time.Duration
	log   *slog.Logger

	mu      sync.Mutex
	obs     observation
	changes uint64 // counts changes of obs
	subs    map[chan struct{}]struct{}
}

func newTracker(s store.Store, retry time.Duration, log *slog.Logger) *tracker {
	return &tracker{store: s, retry: retry, log: log, subs: map[chan struct{}]struct{}{}}
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

// observe records the outcome of a read, a write or a watch event: rec is
// the record, or exists is false when it is gone. A version already seen
// keeps its first observation time.
func (k *tracker) observe(rec store.Record, exists bool) observation {
	now := time.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	o := k.obs
	switch {
	case !exists && o.known && !o.exists:
		return o // still gone
	case exists && o.known && o.exists && o.rec.Version == rec.Version:
		return o // same version
	}
	next := observation{known: true, exists: exists, rec: rec, at: now, seen: o.seen || exists,
		lastTransitions: max(o.lastTransitions, rec.Transitions),
		goneHolder:      o.goneHolder, goneUntil: o.goneUntil}
	if !exists {
		next.rec = store.Record{}
		if o.exists && o.rec.Held() {
			next.goneHolder = o.rec.Holder
			next.goneUntil = o.at.Add(o.rec.LeaseDuration)
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
// in order and will report anything newer.
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
	return k.observe(rec, err == nil), nil
}

// run keeps the observation fresh until ctx ends: it watches the record, and
// while no watch can be established it reads the record every retry period.
// Permission errors are returned at once, since retrying cannot cure them.
func (k *tracker) run(ctx context.Context, timeout time.Duration) error {
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		o, err := k.read(rctx)
		cancel()
		if err != nil {
			if errors.Is(err, store.ErrPermission) {
				return err
			}
			k.log.Warn("cannot read the lease record; retrying", "err", err)
			if !sleep(ctx, k.retry) {
				break
			}
			continue
		}
		after := ""
		if o.exists {
			after = o.rec.Version
		}
		started := time.Now()
		events, err := k.store.Watch(ctx, after)
		if err != nil {
			if errors.Is(err, store.ErrPermission) {
				return err
			}
			k.log.Warn("cannot watch the lease record; polling every retry period", "err", err)
			if !sleep(ctx, k.retry) {
				break
			}
			continue
		}
		for ev := range events {
			switch {
			case ev.Err != nil:
				k.log.Debug("lease watch ended", "err", ev.Err)
			case ev.Deleted:
				k.observe(store.Record{}, false)
			default:
				k.observe(ev.Record, true)
			}
		}
		// A watch that breaks at once must not turn into a busy loop.
		if time.Since(started) < k.retry && !sleep(ctx, k.retry) {
			break
		}
	}
	return nil
}

// sleep waits for d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
