package podlabel

import (
	"context"
	"log/slog"
	"sync"
	"testing"
)

// A Follow racing with a term's start never overwrites the leader role.
func TestFollowNeverOverwritesLeader(t *testing.T) {
	for range 2000 {
		l, err := New(nil, "p", "lease", slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(l.Follow)
		wg.Go(func() { l.want(RoleLeader, context.Background()) })
		wg.Wait()
		l.mu.Lock()
		role := l.role
		l.mu.Unlock()
		if role == RoleFollower {
			// Follow came first, then the leader role: only then may the
			// last word be leader; it must be.
			t.Fatal("a Follow overwrote the leader role")
		}
	}
}
