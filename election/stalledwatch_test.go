package election_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/incumbent-io/incumbent/election/electiontest"
	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/memory"
)

// stalledFollower follows the record for the election (store.Follower) but
// tells only its state at the start, then nothing more: a shared watch that
// stalled without breaking.
type stalledFollower struct{ store.Store }

func (s stalledFollower) Follow(ctx context.Context, fn func(store.Event), ended func(error)) (bool, error) {
	rec, err := s.Get(ctx)
	switch {
	case err == nil:
		fn(store.Event{Record: rec})
	default:
		fn(store.Event{Deleted: true})
	}
	context.AfterFunc(ctx, func() { ended(nil) })
	return true, nil
}

// A follower whose followed record stalls sees the leader's lease as
// expired, and its take-over fails on the version it knows. It must not
// wait for that watch for ever: it reads the record, follows the leader's
// renewals from there, and takes over once the leader really stops (its
// store cut off, so it cannot release): an acquisition with the version it
// read.
func TestAFollowerReadsPastAStalledFollowedRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := memory.New("stalled")
		chk := electiontest.NewChecker()
		leaderStore := &cuttable{Store: ms}
		l := startInBubble(t, edgeConfig(leaderStore, "leader", nil), chk, 0)
		leads(t, l)
		f := startInBubble(t, edgeConfig(stalledFollower{ms}, "follower", nil), chk, 0)
		synctest.Wait()
		time.Sleep(time.Minute) // virtual time: the follower believes the lease expired long ago
		synctest.Wait()
		if v := chk.Violations(); len(v) > 0 {
			t.Fatalf("overlapping terms while the leader renews: %v", v)
		}
		leaderStore.cut.Store(true)
		<-l.ended
		leads(t, f) // within ten minutes of virtual time
		if v := chk.Violations(); len(v) > 0 {
			t.Fatalf("overlapping terms: %v", v)
		}
		f.stop(t)
		l.stop(t)
	})
}
