// Package sidecar runs one incumbent candidate with everything it does on
// the side: the work done during each term (duties: a child process, a
// leader-only port, pod labels, events), the status API, background loops,
// and an orderly shutdown that releases the lease only after the work is
// gone.
package sidecar

import (
	"sync"

	"github.com/incumbent-io/incumbent/election"
)

// Duty is work done for the duration of each term. Lead is called when a
// term starts; it must return soon after the term ends (within the
// elector's grace period). A Duty may end the term early (term.Resign).
type Duty interface {
	Lead(term *election.Term)
}

// Lead returns an election.Config.Lead function that runs every duty
// concurrently for a term and returns once all of them have returned. With
// no duty, it waits for the term to end.
func Lead(duties ...Duty) func(*election.Term) {
	return func(term *election.Term) {
		if len(duties) == 0 {
			<-term.Done()
			return
		}
		var wg sync.WaitGroup
		for _, d := range duties {
			wg.Go(func() { d.Lead(term) })
		}
		wg.Wait()
	}
}
