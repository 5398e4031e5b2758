package election

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/incumbent-io/incumbent/store"
)

// observing is the phase of every Observer.
var observing = phase{state: StateObserving, reason: "an observer never campaigns"}

// Observer follows an election without campaigning: who leads, in which
// term, and when that was last renewed. It costs one watch, and reads the
// record every retry period only while the watch is down.
type Observer struct {
	store   store.Store
	tracker *tracker
	retry   time.Duration
	hub     hub

	mu      sync.Mutex
	running bool
}

// NewObserver returns an Observer of s. retry is the poll interval while the
// watch is down (DefaultRetryPeriod when zero); log may be nil.
func NewObserver(s store.Store, retry time.Duration, log *slog.Logger) *Observer {
	if retry <= 0 {
		retry = DefaultRetryPeriod
	}
	if log == nil {
		log = slog.Default()
	}
	o := &Observer{store: s, retry: retry, tracker: newTracker(s, systemClock{}, retry, log.With("lease", s.String()), nil)}
	o.hub.last = statusOf(s.String(), "", observation{}, observing, time.Now())
	return o
}

// Status returns what the observer knows now.
func (o *Observer) Status() Status { return o.hub.current() }

// Subscribe works as Elector.Subscribe.
func (o *Observer) Subscribe() (statuses <-chan Status, cancel func()) { return o.hub.subscribe() }

// Run follows the election until ctx ends, then returns nil; it returns an
// error only for a permission the store refuses.
func (o *Observer) Run(ctx context.Context) error {
	o.mu.Lock()
	if o.running {
		o.mu.Unlock()
		return errors.New("election: Run called twice on one Observer")
	}
	o.running = true
	o.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		changes, stop := o.tracker.changed()
		defer stop()
		for {
			o.hub.publish(statusOf(o.store.String(), "", o.tracker.latest(), observing, time.Now()))
			select {
			case <-ctx.Done():
				return
			case <-changes:
			}
		}
	}()
	fatal := make(chan error, 1)
	o.tracker.start(ctx, o.retry*2, fatal)
	var err error
	select {
	case err = <-fatal:
	case <-ctx.Done():
	}
	cancel()
	o.tracker.wait()
	<-done
	return err
}
