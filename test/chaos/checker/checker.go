// Package checker is the independent judge of the fault-injection harness.
// It plays the fenced resource that every leader's workload writes to, and
// keeps the journal from which it reports what went wrong:
//
//   - a term begins (Begin) and ends (End); its acting interval runs from its
//     beginning to its end, or to its last write if it never said it ended
//     (it was killed). Two intervals of different tokens that intersect are
//     an overlapping pair of terms;
//   - a write carries its term's token; a token below the highest one seen
//     so far is stale: with fencing on the write is rejected, with fencing off
//     it is accepted, and either way it is counted;
//   - a term that begins with a token not above every token begun before it
//     is a token out of order.
//
// The harness marks each injected fault from its injection until leadership
// is back (StartFault, Fault.Settle), and every finding is attributed to the
// fault in progress when it happened. The checker trusts nothing the
// election library says: it sees only what the workloads send it, stamped
// with its own clock, in the order it received them.
package checker

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Options configures a Checker.
type Options struct {
	// Fencing makes the resource reject writes with a stale token. Off only
	// in the negative control, which proves that the checker can fail.
	Fencing bool
	// Clock stamps every event. Default time.Now.
	Clock func() time.Time
	// Kinds lists fault kinds the report shows first, in this order, even
	// if none was injected; others follow in the order first injected.
	Kinds []string
	// APIServer says that the resource is the Kubernetes API server, not
	// the checker: workloads report each write with the API server's
	// verdict (APIWrite), and Fencing says whether its fence policy is
	// installed. The checker then refuses nothing and judges what the API
	// server accepted (see APIWrite).
	APIServer bool
}

// Term is what the checker knows about one term.
type Term struct {
	Token    int64
	Identity string
	PID      int // the workload's process ID, from Begin
	// Begin is when the term said it began. End is when it said it ended,
	// zero until then. LastWrite is its last write, zero if none.
	Begin, End, LastWrite time.Time
	// Writes counts its writes, Rejected those the resource refused.
	Writes, Rejected int
}

// Ended reports whether the term said it ended.
func (t Term) Ended() bool { return !t.End.IsZero() }

// Until is the end of the term's acting interval: its end, or its last
// write if later (or if it never ended), or its beginning if it did nothing.
func (t Term) Until() time.Time {
	u := t.Begin
	if t.LastWrite.After(u) {
		u = t.LastWrite
	}
	if t.End.After(u) {
		u = t.End
	}
	return u
}

// StaleWrite is a write whose token was below the highest seen.
type StaleWrite struct {
	At       time.Time
	Token    int64
	Identity string
	Highest  int64 // the highest token seen when it arrived
	Accepted bool  // fencing was off
}

// Checker is the journal and the fenced resource. All methods are safe for
// concurrent use.
type Checker struct {
	fencing   bool
	apiServer bool
	clock     func() time.Time
	kinds     []string

	mu         sync.Mutex
	terms      []*Term // in the order they began
	byToken    map[int64]*Term
	highest    int64 // highest token seen in a Begin or a Write
	maxBegun   int64
	anyBegun   bool
	writes     int
	stale      []StaleWrite
	outOfOrder []Term
	protocol   []string // requests that break the workload's protocol
	faults     []*Fault
	changed    chan struct{}
	// With APIServer: the writes the API server accepted, and how many
	// writes of a term not known to be stale it refused.
	accepted       []apiWrite
	refusedCurrent int
}

// apiWrite is a write the API server accepted.
type apiWrite struct {
	at       time.Time
	token    int64
	identity string
	rv       int64 // the resourceVersion of the object written
}

// New returns an empty Checker.
func New(o Options) *Checker {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return &Checker{fencing: o.Fencing, apiServer: o.APIServer, clock: o.Clock, kinds: slices.Clone(o.Kinds), byToken: map[int64]*Term{}, changed: make(chan struct{})}
}

// Fencing reports whether stale writes are rejected.
func (c *Checker) Fencing() bool { return c.fencing }

// notify wakes every waiter; c.mu must be held.
func (c *Checker) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Changed returns a channel that is closed at the next event.
func (c *Checker) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// Begin records that the term with token began, held by identity, its
// workload running as process pid. A token not above every token begun
// before is recorded as out of order; a token begun twice is a protocol
// error (the second one is still recorded as a term).
func (c *Checker) Begin(token int64, identity string, pid int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &Term{Token: token, Identity: identity, PID: pid, Begin: c.clock()}
	if c.anyBegun && token <= c.maxBegun {
		c.outOfOrder = append(c.outOfOrder, *t)
	}
	if _, dup := c.byToken[token]; dup {
		c.protocol = append(c.protocol, fmt.Sprintf("%s: token %d begun twice (by %s, pid %d)", stamp(t.Begin), token, identity, pid))
	}
	c.anyBegun = true
	c.maxBegun = max(c.maxBegun, token)
	c.highest = max(c.highest, token)
	c.terms = append(c.terms, t)
	c.byToken[token] = t
	c.notify()
}

// Write records a write of the term with token and says whether the
// resource accepted it: it is refused only when fencing is on and the token
// is below the highest seen.
func (c *Checker) Write(token int64, identity string) (accepted bool, highest int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock()
	c.writes++
	t := c.byToken[token]
	switch {
	case t == nil:
		c.protocol = append(c.protocol, fmt.Sprintf("%s: write with token %d by %s, which never began", stamp(now), token, identity))
	case t.Identity != identity:
		c.protocol = append(c.protocol, fmt.Sprintf("%s: write with token %d by %s, but %s began it", stamp(now), token, identity, t.Identity))
	case t.Ended():
		c.protocol = append(c.protocol, fmt.Sprintf("%s: write with token %d by %s after its end", stamp(now), token, identity))
	}
	accepted = true
	if token < c.highest {
		accepted = !c.fencing
		c.stale = append(c.stale, StaleWrite{At: now, Token: token, Identity: identity, Highest: c.highest, Accepted: accepted})
	}
	highest = c.highest
	c.highest = max(c.highest, token)
	if t != nil {
		t.Writes++
		t.LastWrite = now
		if !accepted {
			t.Rejected++
		}
	}
	c.notify()
	return accepted, highest
}

// APIWrite records a write of the term with token to the Kubernetes API
// server and the API server's verdict: accepted, with the resourceVersion
// of the object written (rv), or refused by the fence policy. The checker
// judges an accepted write by etcd's order, which every resourceVersion of
// the cluster shares and every token is made of (a token is the
// resourceVersion of the Lease write that began its term): it is stale if
// some term with a higher token began with a Lease write before it, that
// is, if a token T' with token < T' < rv has begun (judged in Report, once
// every term has said it began). A refused write is stale if its token is
// below the highest seen when it arrives; a refusal of any other write is
// counted apart, as the fence's cost to the term in office.
func (c *Checker) APIWrite(token int64, identity string, accepted bool, rv int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock()
	c.writes++
	t := c.byToken[token]
	switch {
	case t == nil:
		c.protocol = append(c.protocol, fmt.Sprintf("%s: write with token %d by %s, which never began", stamp(now), token, identity))
	case t.Identity != identity:
		c.protocol = append(c.protocol, fmt.Sprintf("%s: write with token %d by %s, but %s began it", stamp(now), token, identity, t.Identity))
	case t.Ended():
		c.protocol = append(c.protocol, fmt.Sprintf("%s: write with token %d by %s after its end", stamp(now), token, identity))
	}
	switch {
	case accepted:
		c.accepted = append(c.accepted, apiWrite{at: now, token: token, identity: identity, rv: rv})
	case token < c.highest:
		c.stale = append(c.stale, StaleWrite{At: now, Token: token, Identity: identity, Highest: c.highest})
	default:
		c.refusedCurrent++
	}
	c.highest = max(c.highest, token)
	if t != nil {
		t.Writes++
		t.LastWrite = now
		if !accepted {
			t.Rejected++
		}
	}
	c.notify()
}

// End records that the term with token ended.
func (c *Checker) End(token int64, identity string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock()
	t := c.byToken[token]
	switch {
	case t == nil:
		c.protocol = append(c.protocol, fmt.Sprintf("%s: end of token %d by %s, which never began", stamp(now), token, identity))
	case t.Ended():
		c.protocol = append(c.protocol, fmt.Sprintf("%s: token %d ended twice", stamp(now), token))
	default:
		t.End = now
	}
	c.notify()
}

// Protocol records a request that breaks the workload's protocol (for
// example a malformed one), to be reported.
func (c *Checker) Protocol(what string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.protocol = append(c.protocol, stamp(c.clock())+": "+what)
	c.notify()
}

// Terms returns a copy of every term, in the order they began.
func (c *Checker) Terms() []Term {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Term, len(c.terms))
	for i, t := range c.terms {
		out[i] = *t
	}
	return out
}

// Fault is one injected fault, from its injection until leadership is
// back.
type Fault struct {
	c       *Checker
	Kind    string
	Start   time.Time
	settled time.Time
}

// StartFault records that a fault of the given kind is being injected now.
// Faults must not overlap: settle one before starting the next.
func (c *Checker) StartFault(kind string) *Fault {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := &Fault{c: c, Kind: kind, Start: c.clock()}
	if n := len(c.faults); n > 0 && c.faults[n-1].settled.IsZero() {
		c.protocol = append(c.protocol, fmt.Sprintf("%s: fault %s started before fault %s settled", stamp(f.Start), kind, c.faults[n-1].Kind))
	}
	c.faults = append(c.faults, f)
	return f
}

// Settle records that leadership is back after the fault (or that the
// harness gave up waiting for it); findings after now are no longer
// attributed to it.
func (f *Fault) Settle() {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	if f.settled.IsZero() {
		f.settled = f.c.clock()
	}
}

func stamp(t time.Time) string { return t.Format("15:04:05.000000") }
