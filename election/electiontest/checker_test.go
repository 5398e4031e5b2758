package electiontest

import (
	"strings"
	"testing"
)

// The checker must catch what it exists to catch.
func TestCheckerReportsOverlapsAndFallingTokens(t *testing.T) {
	c := NewChecker()
	endA := c.Begin("a", 1)
	endB := c.Begin("b", 2) // a still acts: overlap
	endA()
	endB()
	endC := c.Begin("c", 2) // token did not rise
	endC()
	v := c.Violations()
	if len(v) != 2 || !strings.Contains(v[0], "while a (token 1") || !strings.Contains(v[1], "not above the previous 2") {
		t.Fatalf("violations %q; want one overlap and one non-rising token", v)
	}
	if c.Started() != 3 || len(c.Ended()) != 3 || len(c.Active()) != 0 {
		t.Errorf("started %d, ended %d, active %d; want 3, 3, 0", c.Started(), len(c.Ended()), len(c.Active()))
	}
}

func TestCheckerAcceptsCleanHandovers(t *testing.T) {
	c := NewChecker()
	for i, id := range []string{"a", "b", "a", "c"} {
		c.Begin(id, int64(i))()
	}
	if v := c.Violations(); len(v) != 0 {
		t.Fatalf("violations on clean hand-overs: %q", v)
	}
}
