// Package memory is a store.Store that lives in the memory of one process:
// real compare-and-set and watch semantics, no persistence. It suits
// examples, unit tests, and elections among goroutines.
package memory

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/incumbent-io/incumbent/store"
)

// Store is an in-memory store.Store. The zero value is not usable; call New.
type Store struct {
	name string

	mu       sync.Mutex
	rec      store.Record
	exists   bool
	version  int64
	watchers map[chan store.Event]struct{}
	history  []store.Event // every change, for watches that start in the past
}

// New returns an empty store named name.
func New(name string) *Store {
	return &Store{name: name, watchers: map[chan store.Event]struct{}{}}
}

// String implements store.Store.
func (s *Store) String() string { return "memory " + s.name }

// Get implements store.Store.
func (s *Store) Get(ctx context.Context) (store.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.exists {
		return store.Record{}, fmt.Errorf("get %s: %w", s, store.ErrNotFound)
	}
	return s.rec, nil
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, rec store.Record) (store.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exists {
		return store.Record{}, fmt.Errorf("create %s: %w", s, store.ErrConflict)
	}
	return s.put(rec), nil
}

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, rec store.Record) (store.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !s.exists:
		return store.Record{}, fmt.Errorf("update %s: %w", s, store.ErrNotFound)
	case s.rec.Version != rec.Version:
		return store.Record{}, fmt.Errorf("update %s: %w: version is %s, not %s", s, store.ErrConflict, s.rec.Version, rec.Version)
	}
	return s.put(rec), nil
}

// Delete removes the record, as an operator might.
func (s *Store) Delete() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.exists {
		return
	}
	s.exists = false
	s.version++
	s.rec = store.Record{}
	s.broadcast(store.Event{Deleted: true, Record: store.Record{Version: strconv.FormatInt(s.version, 10), Revision: s.version}})
}

func (s *Store) put(rec store.Record) store.Record {
	s.version++
	rec.Version = strconv.FormatInt(s.version, 10)
	rec.Revision = s.version // the counter survives Delete: revisions keep rising
	s.rec, s.exists = rec, true
	s.broadcast(store.Event{Record: rec})
	return rec
}

// broadcast hands ev to every watcher. A watcher that cannot keep up is
// dropped (its channel closed), as a real server drops a slow watch.
func (s *Store) broadcast(ev store.Event) {
	s.history = append(s.history, ev)
	if len(s.history) > 256 {
		s.history = append(s.history[:0], s.history[len(s.history)-256:]...)
	}
	for c := range s.watchers {
		select {
		case c <- ev:
		default:
			delete(s.watchers, c)
			close(c)
		}
	}
}

// Watch implements store.Store.
func (s *Store) Watch(ctx context.Context, after string) (<-chan store.Event, error) {
	from := int64(0)
	if after != "" {
		v, err := strconv.ParseInt(after, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("watch %s: bad version %q: %w", s, after, err)
		}
		from = v
	}
	c := make(chan store.Event, 64)
	s.mu.Lock()
	if after == "" {
		from = s.version
	}
	for _, ev := range s.history {
		v, _ := strconv.ParseInt(ev.Record.Version, 10, 64)
		if v > from {
			select {
			case c <- ev:
			default:
			}
		}
	}
	s.watchers[c] = struct{}{}
	s.mu.Unlock()
	go func() {
		<-ctx.Done()
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.watchers[c]; ok {
			delete(s.watchers, c)
			close(c)
		}
	}()
	return c, nil
}

var _ store.Store = (*Store)(nil)
