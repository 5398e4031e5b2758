package etcd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/incumbent-io/incumbent/store"
)

// watchStartTimeout bounds how long Watch waits for etcd to confirm a new
// watch, unless ctx ends earlier.
const watchStartTimeout = 10 * time.Second

// Watch implements store.Store. It returns once etcd has confirmed the
// watch (waiting at most 10s), so that every change after `after` (or after
// the moment of the call, when empty) is delivered. Puts and deletions of
// the key arrive in revision order. While the member is unreachable the
// channel stays open and the client resumes the watch where it was. The
// channel is closed when ctx ends; before closing for any other reason it
// delivers one event whose Err says why: the revisions to replay were
// compacted (wraps rpctypes.ErrCompacted), a value is malformed (wraps
// store.ErrMalformed), the member lost its cluster's leader, or the user may
// not read the key (wraps store.ErrPermission).
//
// A Store of a Keyspace shares the Keyspace's watch of its prefix instead
// (see Keyspace), with the same promises but these: successive changes may
// be merged into the newest state, never a deletion (a record deleted, and
// maybe created again, since the state last told is told as a deletion,
// then the new record); a deletion carries its revision when the shared
// watch saw it, zero when it was found otherwise (by reading the prefix
// again, or by the new record's creation revision); and revisions the
// shared watch can no longer replay (compacted) are no error: it reads the
// prefix again and the current state is told. Its errors name the prefix; a
// refusal wraps store.ErrPermission as above, the client's user then
// lacking read permission on the prefix.
func (s *Store) Watch(ctx context.Context, after string) (<-chan store.Event, error) {
	var rev int64
	if after != "" {
		var err error
		rev, err = strconv.ParseInt(after, 10, 64)
		if err != nil || rev < 0 {
			return nil, fmt.Errorf("watch %s: version %q is not an etcd mod revision", s, after)
		}
	}
	if s.shared != nil {
		return s.watchShared(ctx, after != "", rev)
	}
	opts := []clientv3.OpOption{clientv3.WithCreatedNotify()}
	if after != "" {
		opts = append(opts, clientv3.WithRev(rev+1))
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	responses := s.client.Watch(wctx, s.key, opts...)

	start := time.NewTimer(watchStartTimeout)
	defer start.Stop()
	var first clientv3.WatchResponse
	select {
	case resp, ok := <-responses:
		if !ok {
			cancel()
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("watch %s: %w", s, err)
			}
			return nil, fmt.Errorf("watch %s: the etcd client closed the watch before it started", s)
		}
		first = resp
	case <-start.C:
		cancel()
		return nil, fmt.Errorf("watch %s: etcd did not confirm the watch within %v", s, watchStartTimeout)
	case <-ctx.Done():
		cancel()
		return nil, fmt.Errorf("watch %s: %w", s, ctx.Err())
	}
	if err := first.Err(); err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
		cancel()
		return nil, s.wrap("watch", err)
	}

	out := make(chan store.Event)
	go func() {
		defer close(out)
		defer cancel()
		send := func(ev store.Event) bool {
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		resp, ok := first, true
		for {
			if !ok {
				if ctx.Err() == nil {
					send(store.Event{Err: fmt.Errorf("watch %s: the etcd client closed the watch", s)})
				}
				return
			}
			if err := resp.Err(); err != nil {
				if ctx.Err() == nil {
					send(store.Event{Err: s.wrap("watch", err)})
				}
				return
			}
			for _, ev := range resp.Events {
				var e store.Event
				switch ev.Type {
				case clientv3.EventTypeDelete:
					e.Deleted = true
					e.Record.Revision = ev.Kv.ModRevision // the deletion's revision
				default:
					rec, err := s.decodeAt(ev.Kv.Value, ev.Kv.ModRevision)
					if err != nil {
						send(store.Event{Err: fmt.Errorf("watch %s: %w", s, err)})
						return
					}
					e.Record = rec
				}
				if !send(e) {
					return
				}
			}
			select {
			case resp, ok = <-responses:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// watchShared is Watch on the Keyspace's shared watch: from the version rev
// when from is set, else from now. Like the Store's own watch, it returns
// once etcd has confirmed the shared watch (waiting at most
// watchStartTimeout), or with the error that ended it.
func (s *Store) watchShared(ctx context.Context, from bool, rev int64) (<-chan store.Event, error) {
	k := known{exists: rev > 0, rev: rev}
	if !from {
		// Now is the revision of a read of the key, which also says
		// whether the record exists.
		resp, err := s.client.Get(ctx, s.key, clientv3.WithCountOnly())
		if err != nil {
			return nil, s.wrap("watch", err)
		}
		k = known{exists: resp.Count > 0, rev: resp.Header.Revision}
	}
	h := s.shared
	sub := h.subscribe(s.name)
	start := time.NewTimer(watchStartTimeout)
	defer start.Stop()
	select {
	case <-sub.run.ready:
	case <-start.C:
		h.unsubscribe(sub)
		return nil, fmt.Errorf("watch %s: etcd did not confirm the shared watch of %s within %v", s, h.prefix, watchStartTimeout)
	case <-ctx.Done():
		h.unsubscribe(sub)
		return nil, fmt.Errorf("watch %s: %w", s, ctx.Err())
	}
	if err := sub.run.err; err != nil {
		h.unsubscribe(sub)
		return nil, s.wrapShared(err)
	}
	out := make(chan store.Event)
	go s.followShared(ctx, sub, k, out)
	return out, nil
}

// followShared tells out what changes in the hub's memory of the record,
// from k on, until ctx ends or the shared watch fails, then closes out.
func (s *Store) followShared(ctx context.Context, sub *subscriber, k known, out chan<- store.Event) {
	h := s.shared
	defer close(out)
	defer h.unsubscribe(sub)
	send := func(ev store.Event) bool {
		select {
		case out <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		select {
		case <-sub.wake:
		case <-ctx.Done():
			return
		}
		e, hubRev, err := h.state(sub)
		if err != nil {
			if ctx.Err() == nil {
				send(store.Event{Err: s.wrapShared(err)})
			}
			return
		}
		deleted, deletedRev, kv := k.next(e, hubRev)
		if deleted && !send(store.Event{Deleted: true, Record: store.Record{Revision: deletedRev}}) {
			return
		}
		if kv == nil {
			continue
		}
		rec, err := s.decodeAt(kv.Value, kv.ModRevision)
		if err != nil {
			send(store.Event{Err: fmt.Errorf("watch %s: %w", s, err)})
			return
		}
		if !send(store.Event{Record: rec}) {
			return
		}
	}
}
