// Package electiontest checks package election's promises on any backend,
// and gives tests the means to check them on their own candidates.
//
// Run is the election conformance suite: the algorithm of package election
// on top of a store.Store, with its invariants asserted (mutual exclusion
// with rising tokens over many hand-overs, a graceful hand-over taken
// through the watch without reading the record, a crash take-over no
// earlier than the lease duration after the last renewal the crashed leader
// sent, and, with WithDelete, tokens that keep rising when the record is
// deleted and a candidate that never saw it takes over). The store's own
// semantics are checked by package store/storetest; a backend's test runs
// both:
//
//	func TestConformance(t *testing.T) {
//		newStore := func(t *testing.T, name string) store.Store { ... }
//		storetest.Run(t, newStore, storetest.WithDelete(del))
//		electiontest.Run(t, newStore, electiontest.WithDelete(del))
//	}
//
// Checker records terms, from any number of candidates, and reports every
// overlap and every token that did not rise: use it in a Lead callback to
// check an election of your own, or your own Lead's use of its term.
//
// Stores returned by a NewStore for one name must share one record, as
// separate processes or clients of one server would; the suite calls it
// several times per name and never reuses a name across subtests. Names are
// lowercase DNS-1123 subdomains of at most 63 characters.
package electiontest

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/incumbent-io/incumbent/store"
)

// NewStore returns a store for the election name. Stores returned for the
// same name share one record. It fails t if it cannot.
type NewStore func(t *testing.T, name string) store.Store

// Option adds an optional capability of the backend to the suite.
type Option func(*suite)

// WithDelete gives the suite a way to delete the record of name out of band,
// as an operator would. It enables the subtests about deletion.
func WithDelete(del func(t *testing.T, name string)) Option {
	return func(s *suite) { s.delete = del }
}

type suite struct {
	newStore NewStore
	delete   func(t *testing.T, name string)
}

// Run runs the election conformance suite on the backend newStore makes.
// Hand-over and take-over latencies are logged, never asserted.
func Run(t *testing.T, newStore NewStore, opts ...Option) {
	s := &suite{newStore: newStore}
	for _, o := range opts {
		o(s)
	}
	t.Run("MutualExclusion", s.testMutualExclusion)
	t.Run("GracefulHandOver", s.testGracefulHandOver)
	t.Run("CrashTakeOver", s.testCrashTakeOver)
	if s.delete != nil {
		t.Run("TokensRiseAcrossDeletion", s.testTokensRiseAcrossDeletion)
	}
}

// name returns a fresh election name for the current subtest.
func name(t *testing.T, base string) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random name: %v", err)
	}
	base = strings.ToLower(base)
	if len(base) > 50 {
		base = base[:50]
	}
	return "et-" + base + "-" + hex.EncodeToString(b)
}
