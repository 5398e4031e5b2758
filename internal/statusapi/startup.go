package statusapi

import "sync"

// Startup is what the sidecar waits for before its election can run (its
// store, the permission checks). The zero value is not waiting; a nil
// *Startup never waits. It is safe for concurrent use.
type Startup struct {
	mu      sync.Mutex
	reason  string
	waiting bool
}

// Wait records that startup waits, and why ("waiting for the API server:
// ..."): the API reports it until Done.
func (s *Startup) Wait(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reason, s.waiting = reason, true
}

// Done records that startup is over.
func (s *Startup) Done() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reason, s.waiting = "", false
}

// Waiting returns the reason startup waits, while it does.
func (s *Startup) Waiting() (reason string, waiting bool) {
	if s == nil {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason, s.waiting
}
