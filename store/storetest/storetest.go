// Package storetest is the conformance suite of the store.Store semantics
// every backend must have: conditional writes, round trips, races, revisions
// that rise across deletion, watch order, malformed records. (The election
// running on top of a store is checked by package election/electiontest.)
//
// A backend's test calls Run with a function that returns a fresh Store for
// an election name:
//
//	func TestConformance(t *testing.T) {
//		dir := t.TempDir()
//		storetest.Run(t, func(t *testing.T, name string) store.Store {
//			s, err := file.New(dir, name)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		}, storetest.WithDelete(...), storetest.WithCorrupt(...))
//	}
//
// Stores returned for one name must share one record, as separate processes
// or clients of one server would; the suite calls it several times per name
// and never reuses a name across subtests. Names are lowercase
// DNS-1123 subdomains of at most 63 characters.
package storetest

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

// WithCorrupt gives the suite a way to corrupt the (existing) record of name
// out of band, as a bad hand edit would: afterwards Get must return an error
// wrapping store.ErrMalformed, or a Record whose Validate fails.
func WithCorrupt(corrupt func(t *testing.T, name string)) Option {
	return func(s *suite) { s.corrupt = corrupt }
}

// WithCoalescingWatch declares that the backend's Watch reports states
// rather than every write: states written faster than the watch reads them
// may be skipped. The states it reports must still come in order, end with
// the newest, and never skip a deletion. Without this option every change
// must be reported.
func WithCoalescingWatch() Option {
	return func(s *suite) { s.coalesces = true }
}

type suite struct {
	newStore  NewStore
	delete    func(t *testing.T, name string)
	corrupt   func(t *testing.T, name string)
	coalesces bool
}

func newSuite(newStore NewStore, opts []Option) *suite {
	s := &suite{newStore: newStore}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Run runs the whole suite (RunStore, in a subtest "store").
func Run(t *testing.T, newStore NewStore, opts ...Option) {
	t.Run("store", func(t *testing.T) { RunStore(t, newStore, opts...) })
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
	return "st-" + base + "-" + hex.EncodeToString(b)
}
