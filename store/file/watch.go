package file

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/incumbent-io/incumbent/store"
)

// seen is the state a watch last reported.
type seen struct {
	exists bool
	v      version
}

// Watch implements store.Store. It reports the states of the record after
// the version after (or after the state read when Watch is called, when
// after is empty), in order: changes made faster than the watch reads the
// file are coalesced into the newest, but a deletion is always reported,
// including one followed at once by a re-creation; a deletion carries no
// revision (zero: see the package documentation). It is notified by the
// operating system, through the notification watch of the folder that it
// shares with the other Watches of its Dir's Stores (see Dir), or reads the
// file every Options.PollInterval when Options.Poll is set or notifications
// are unavailable. The channel is closed when ctx ends, and after an event
// carrying Err when the record becomes unreadable (a malformed record, say)
// or the folder goes away.
func (s *Store) Watch(ctx context.Context, after string) (<-chan store.Event, error) {
	var base seen
	if after != "" {
		v, err := parseVersion(after)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", s, err)
		}
		base = seen{exists: true, v: v}
	}
	sub := s.d.subscribe(filepath.Base(s.path)) // before the first read, so no change can slip between
	if after == "" {
		_, v, err := s.read()
		switch {
		case err == nil:
			base = seen{exists: true, v: v}
		case errors.Is(err, store.ErrNotFound):
		default:
			if sub != nil {
				s.d.unsubscribe(sub)
			}
			return nil, fmt.Errorf("watch %s: %w", s, err)
		}
	}
	out := make(chan store.Event)
	go s.follow(ctx, sub, base, out)
	return out, nil
}

// follow reports every new state of the record on out, until ctx ends or the
// record cannot be read, then closes out. It reads the record each time sub
// wakes it, or every Options.PollInterval when sub is nil.
func (s *Store) follow(ctx context.Context, sub *subscription, base seen, out chan<- store.Event) {
	defer close(out)
	var (
		wake <-chan struct{}
		tick <-chan time.Time
	)
	if sub != nil {
		defer s.d.unsubscribe(sub)
		wake = sub.wake
	} else {
		t := time.NewTicker(s.opts.PollInterval)
		defer t.Stop()
		tick = t.C
	}
	send := func(ev store.Event) bool {
		select {
		case out <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	fail := func(err error) bool {
		send(store.Event{Err: fmt.Errorf("watch %s: %w", s, err)})
		return false
	}
	// check reads the record and reports it if it changed; false ends the
	// watch.
	check := func() bool {
		rec, v, err := s.read()
		switch {
		case errors.Is(err, store.ErrNotFound):
			if !base.exists {
				return true
			}
			base = seen{}
			return send(store.Event{Deleted: true})
		case err != nil:
			return fail(err)
		case base.exists && base.v == v:
			return true
		case base.exists && base.v.incarnation != v.incarnation:
			// Deleted and created again since the last read.
			if !send(store.Event{Deleted: true}) {
				return false
			}
		}
		base = seen{exists: true, v: v}
		return send(store.Event{Record: rec})
	}
	for ok := check(); ok; {
		select {
		case <-ctx.Done():
			return
		case <-wake:
			if err := s.d.broken(sub); err != nil {
				ok = fail(err)
			} else {
				ok = check()
			}
		case <-tick:
			ok = check()
		}
	}
}
