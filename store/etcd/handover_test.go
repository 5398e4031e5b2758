package etcd_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/election"
)

// A rolling update, one replica at a time: the leader resigns and leaves,
// and a follower, told of the release by its watch, takes over at once; a
// new replica joins. Every term ends with ErrResigned and the next one has
// a higher token. The hand-over time (Resign called → next term begins) is
// logged, never asserted.
func TestHandOverOnResign(t *testing.T) {
	h := startCandidates(t, 3, shared.Endpoint())
	const rounds = 15
	var times []time.Duration
	for round := range rounds {
		cur, term := h.leader(30 * time.Second)
		started := h.checker.Started()
		resigned := time.Now()
		term.Resign()
		h.waitFor(30*time.Second, "the next term begins", func() bool { return h.checker.Started() > started })
		next, _ := h.leader(30 * time.Second)
		if cause := term.Err(); !errors.Is(cause, election.ErrResigned) {
			t.Fatalf("round %d: the term ended with %v, want ErrResigned", round, cause)
		}
		if next.Token <= cur.Token || next.Identity == cur.Identity {
			t.Fatalf("round %d: %s (token %d) after %s (token %d)", round, next.Identity, next.Token, cur.Identity, cur.Token)
		}
		d := next.Start.Sub(resigned)
		times = append(times, d)
		t.Logf("round %d: %s (token %d) resigned, %s (token %d) leads %v later", round, cur.Identity, cur.Token, next.Identity, next.Token, d.Round(10*time.Microsecond))
		h.stop(cur.Identity)
		h.add(fmt.Sprintf("candidate-%d", 3+round))
	}
	slices.Sort(times)
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	t.Logf("hand-over on resign over %d rounds (-race, 2 cores): min %v, p50 %v, p90 %v, max %v", rounds,
		r(times[0]), r(times[len(times)/2]), r(times[len(times)*9/10]), r(times[len(times)-1]))
}
