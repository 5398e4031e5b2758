package checker

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeClock advances only when told to.
type fakeClock struct{ now time.Time }

func (f *fakeClock) Now() time.Time { return f.now }

func (f *fakeClock) step(d time.Duration) { f.now = f.now.Add(d) }

func newChecker(fencing bool) (*Checker, *fakeClock) {
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return New(Options{Fencing: fencing, Clock: clk.Now}), clk
}

// A graceful hand-over and a kill followed by a take-over: no finding.
func TestCleanHistoryHasNoFindings(t *testing.T) {
	c, clk := newChecker(true)
	c.Begin(1, "a", 100)
	clk.step(10 * time.Millisecond)
	if ok, _ := c.Write(1, "a"); !ok {
		t.Fatal("a write of the only term was rejected")
	}
	clk.step(10 * time.Millisecond)
	c.End(1, "a")
	clk.step(10 * time.Millisecond)

	f := c.StartFault("kill")
	c.Begin(2, "b", 101)
	clk.step(10 * time.Millisecond)
	c.Write(2, "b") // b is then killed: it never ends
	clk.step(2 * time.Second)
	c.Begin(3, "c", 102)
	clk.step(10 * time.Millisecond)
	c.Write(3, "c")
	f.Settle()

	r := c.Report()
	if r.Total.Overlaps != 0 || r.Total.StaleAttempted != 0 || r.Total.OutOfOrder != 0 || len(r.Protocol) != 0 {
		t.Fatalf("clean history reported findings:\n%s", r.Markdown())
	}
	if r.Terms != 3 || r.Ended != 1 || r.Writes != 3 {
		t.Errorf("terms %d ended %d writes %d, want 3, 1 and 3", r.Terms, r.Ended, r.Writes)
	}
	k := r.Kind("kill")
	if k.Faults != 1 || k.Moved != 1 {
		t.Errorf("kill: %d faults, %d moved; want 1 and 1", k.Faults, k.Moved)
	}
}

// A paused leader that writes after its successor began: with fencing the
// write is rejected, the overlap is found, and both are attributed to the
// fault in progress.
func TestStaleWriteIsRejectedAndOverlapFound(t *testing.T) {
	for _, fencing := range []bool{true, false} {
		c, clk := newChecker(fencing)
		c.Begin(1, "a", 100)
		clk.step(time.Millisecond)
		c.Write(1, "a")
		clk.step(time.Millisecond)
		f := c.StartFault("stop")
		clk.step(2 * time.Second)
		c.Begin(2, "b", 101)
		clk.step(time.Millisecond)
		c.Write(2, "b")
		clk.step(time.Second)
		accepted, highest := c.Write(1, "a") // resumed
		if accepted != !fencing || highest != 2 {
			t.Errorf("fencing %v: stale write accepted=%v highest=%d, want accepted=%v highest=2", fencing, accepted, highest, !fencing)
		}
		clk.step(5 * time.Millisecond)
		c.End(1, "a")
		clk.step(5 * time.Millisecond)
		c.Write(2, "b")
		f.Settle()
		clk.step(time.Second)

		r := c.Report()
		k := r.Kind("stop")
		if k.Overlaps != 1 || len(r.Overlaps) != 1 {
			t.Fatalf("fencing %v: %d overlaps, want 1:\n%s", fencing, k.Overlaps, r.Markdown())
		}
		if o := r.Overlaps[0]; o.Older.Token != 1 || o.Newer.Token != 2 || o.For != time.Second+6*time.Millisecond {
			t.Errorf("fencing %v: overlap %+v, want tokens 1 and 2 for 1.006s", fencing, o)
		}
		if k.StaleAttempted != 1 {
			t.Errorf("fencing %v: %d stale writes, want 1", fencing, k.StaleAttempted)
		}
		if fencing && (k.StaleRejected != 1 || k.StaleAccepted != 0) {
			t.Errorf("fencing on: rejected %d accepted %d, want 1 and 0", k.StaleRejected, k.StaleAccepted)
		}
		if !fencing && (k.StaleRejected != 0 || k.StaleAccepted != 1) {
			t.Errorf("fencing off: rejected %d accepted %d, want 0 and 1", k.StaleRejected, k.StaleAccepted)
		}
		if got := k.Unavailability; len(got) != 1 || got[0] != 2*time.Second {
			t.Errorf("fencing %v: unavailability %v, want [2s]", fencing, got)
		}
		if r.Kind(NoFault).Overlaps != 0 {
			t.Errorf("fencing %v: overlap attributed outside the fault", fencing)
		}
	}
}

// A killed leader's last write bounds its interval: a write after the next
// term began extends it into an overlap; one before does not.
func TestKilledTermEndsAtItsLastWrite(t *testing.T) {
	c, clk := newChecker(true)
	c.Begin(1, "a", 100)
	clk.step(time.Millisecond)
	c.Write(1, "a")
	clk.step(time.Second)
	c.Begin(2, "b", 101)
	if r := c.Report(); r.Total.Overlaps != 0 {
		t.Fatalf("a term killed before its successor began overlaps it:\n%s", r.Markdown())
	}
	clk.step(time.Millisecond)
	c.Write(1, "a") // it was not dead after all
	r := c.Report()
	if r.Kind(NoFault).Overlaps != 1 || r.Kind(NoFault).StaleRejected != 1 {
		t.Fatalf("a write after the successor began: want 1 overlap and 1 rejected stale write outside faults:\n%s", r.Markdown())
	}
}

func TestTokensOutOfOrder(t *testing.T) {
	c, clk := newChecker(true)
	c.Begin(5, "a", 100)
	clk.step(time.Millisecond)
	c.End(5, "a")
	clk.step(time.Millisecond)
	f := c.StartFault("etcd-restart")
	c.Begin(5, "b", 101) // same token again
	clk.step(time.Millisecond)
	c.End(5, "b")
	clk.step(time.Millisecond)
	c.Begin(4, "c", 102) // lower
	f.Settle()
	r := c.Report()
	if k := r.Kind("etcd-restart"); k.OutOfOrder != 2 || len(r.OutOfOrder) != 2 {
		t.Fatalf("want 2 tokens out of order during the fault, got %d:\n%s", k.OutOfOrder, r.Markdown())
	}
	if len(r.Protocol) == 0 {
		t.Error("a token begun twice is not reported as a protocol error")
	}
}

// A fault after which the term in office stays in office costs nothing.
func TestUnavailabilityWithoutHandOverIsZero(t *testing.T) {
	c, clk := newChecker(true)
	c.Begin(1, "a", 100)
	clk.step(time.Second)
	f := c.StartFault("latency")
	clk.step(3 * time.Second)
	c.Write(1, "a")
	f.Settle()
	clk.step(time.Second)
	g := c.StartFault("latency")
	clk.step(1500 * time.Millisecond)
	c.End(1, "a")
	clk.step(700 * time.Millisecond)
	c.Begin(2, "a", 103)
	g.Settle()
	k := c.Report().Kind("latency")
	if k.Faults != 2 || k.Moved != 1 {
		t.Fatalf("latency: %d faults %d moved, want 2 and 1", k.Faults, k.Moved)
	}
	if k.Unavailability[0] != 0 || k.Unavailability[1] != 2200*time.Millisecond {
		t.Errorf("unavailability %v, want [0 2.2s]", k.Unavailability)
	}
	if k.P50() != 0 || k.Max() != 2200*time.Millisecond {
		t.Errorf("p50 %v max %v, want 0 and 2.2s", k.P50(), k.Max())
	}
}

func TestUnsettledFaultIsReported(t *testing.T) {
	c, _ := newChecker(true)
	c.StartFault("kill")
	c.StartFault("stop") // before the first settled
	r := c.Report()
	if r.Unsettled != 2 || len(r.Protocol) != 1 {
		t.Fatalf("unsettled %d, protocol %v; want 2 and one error", r.Unsettled, r.Protocol)
	}
	if !strings.Contains(r.Markdown(), "never settled") {
		t.Errorf("the markdown does not mention unsettled faults:\n%s", r.Markdown())
	}
}

func TestReportShowsListedKindsFirst(t *testing.T) {
	c := New(Options{Fencing: true, Kinds: []string{"b", "a"}})
	c.StartFault("c").Settle()
	c.StartFault("a").Settle()
	r := c.Report()
	var got []string
	for _, k := range r.Kinds {
		got = append(got, k.Kind)
	}
	if strings.Join(got, ",") != "b,a,c" {
		t.Errorf("kinds %v, want b, a, c", got)
	}
	if r.Kind("b").Faults != 0 || r.Kind("a").Faults != 1 || r.Total.Faults != 2 {
		t.Errorf("counts: b %d a %d total %d, want 0, 1, 2", r.Kind("b").Faults, r.Kind("a").Faults, r.Total.Faults)
	}
	if !strings.Contains(r.Markdown(), "| b | 0 |") {
		t.Errorf("a kind never injected is missing from the table:\n%s", r.Markdown())
	}
}

func TestPercentiles(t *testing.T) {
	k := KindReport{Unavailability: []time.Duration{5, 1, 4, 2, 3}}
	if k.P50() != 3 || k.Max() != 5 {
		t.Errorf("p50 %v max %v, want 3 and 5", k.P50(), k.Max())
	}
	k = KindReport{Unavailability: []time.Duration{2, 1}}
	if k.P50() != 1 || k.Max() != 2 {
		t.Errorf("p50 %v max %v, want 1 and 2", k.P50(), k.Max())
	}
	if (KindReport{}).P50() != 0 {
		t.Error("p50 of nothing is not zero")
	}
}

func TestHandler(t *testing.T) {
	c, clk := newChecker(true)
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	post := func(path string) int {
		t.Helper()
		clk.step(time.Millisecond)
		resp, err := http.Post(srv.URL+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, s := range []struct {
		path string
		want int
	}{
		{"/begin?token=1&id=a&pid=10", 200},
		{"/write?token=1&id=a", 200},
		{"/begin?token=2&id=b&pid=11", 200},
		{"/write?token=1&id=a", 409},
		{"/write?token=2&id=b", 200},
		{"/end?token=1&id=a", 200},
		{"/begin?token=x&id=a&pid=1", 400},
		{"/begin?token=3&id=&pid=1", 400},
		{"/begin?token=3&id=c&pid=0", 400},
		{"/write?token=-1&id=c", 400},
		{"/nowhere", 400},
	} {
		if got := post(s.path); got != s.want {
			t.Errorf("POST %s: %d, want %d", s.path, got, s.want)
		}
	}
	resp, err := http.Get(srv.URL + "/write?token=2&id=b")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 && resp.StatusCode != 405 {
		t.Errorf("GET /write: %d, want 400 or 405", resp.StatusCode)
	}
	r := c.Report()
	if r.Terms != 2 || r.Total.StaleRejected != 1 || r.Total.Overlaps != 1 {
		t.Errorf("terms %d, rejected %d, overlaps %d; want 2, 1, 1:\n%s", r.Terms, r.Total.StaleRejected, r.Total.Overlaps, r.Markdown())
	}
	if len(r.Protocol) < 5 {
		t.Errorf("%d protocol errors recorded, want one per bad request: %v", len(r.Protocol), r.Protocol)
	}
	terms := c.Terms()
	if len(terms) != 2 || terms[0].PID != 10 || !terms[0].Ended() || terms[1].Ended() || terms[0].Rejected != 1 {
		t.Errorf("terms %+v", terms)
	}
}
