package electiontest

import (
	"fmt"
	"sync"
	"time"
)

// Term is one recorded term.
type Term struct {
	Identity   string
	Token      int64
	Start, End time.Time
}

// Checker records the terms of competing candidates and reports every
// violation of leader election's two promises: no two terms overlap, and
// fencing tokens only ever rise. It is shared by all candidates of one
// election in a test: each calls Begin first thing in its Lead callback and
// the function Begin returns last thing before Lead returns. It is safe for
// concurrent use.
type Checker struct {
	mu         sync.Mutex
	active     map[int]Term
	next       int
	lastToken  int64
	seenToken  bool
	terms      []Term
	violations []string
	changed    chan struct{}
}

// NewChecker returns an empty Checker.
func NewChecker() *Checker {
	return &Checker{active: map[int]Term{}, changed: make(chan struct{}, 1)}
}

// Begin records the start of a term and returns the function that records
// its end. Call it first thing when the term starts, and call the returned
// function last thing before the work returns.
func (c *Checker) Begin(identity string, token int64) (end func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for _, t := range c.active {
		c.violations = append(c.violations, fmt.Sprintf("%s (token %d) started at %s while %s (token %d, since %s) still acted",
			identity, token, now.Format(time.StampMicro), t.Identity, t.Token, t.Start.Format(time.StampMicro)))
	}
	if c.seenToken && token <= c.lastToken {
		c.violations = append(c.violations, fmt.Sprintf("%s started with token %d, not above the previous %d", identity, token, c.lastToken))
	}
	c.lastToken, c.seenToken = token, true
	id := c.next
	c.next++
	c.active[id] = Term{Identity: identity, Token: token, Start: now}
	c.notify()
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		t := c.active[id]
		delete(c.active, id)
		t.End = time.Now()
		c.terms = append(c.terms, t)
		c.notify()
	}
}

func (c *Checker) notify() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// Changed receives a value after terms begin or end.
func (c *Checker) Changed() <-chan struct{} { return c.changed }

// Violations lists every overlap and every token that did not rise.
func (c *Checker) Violations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.violations...)
}

// Ended returns the terms that have ended, in the order they ended.
func (c *Checker) Ended() []Term {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Term(nil), c.terms...)
}

// Active returns the terms in progress.
func (c *Checker) Active() []Term {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Term
	for _, t := range c.active {
		out = append(out, t)
	}
	return out
}

// Started returns how many terms have begun.
func (c *Checker) Started() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next
}
