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
func (s *Store) Watch(ctx context.Context, after string) (<-chan store.Event, error) {
	opts := []clientv3.OpOption{clientv3.WithCreatedNotify()}
	if after != "" {
		rev, err := strconv.ParseInt(after, 10, 64)
		if err != nil || rev < 0 {
			return nil, fmt.Errorf("watch %s: version %q is not an etcd mod revision", s, after)
		}
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
