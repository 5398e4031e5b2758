package checker

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// With the API server as the resource, an accepted write is judged by etcd's
// order: stale if a newer term's Lease write (its token) comes before the
// write's resourceVersion, whenever the report arrives; a refused write is
// stale if its token is below the highest seen, and counted apart if not.
func TestAPIServerWritesAreJudgedByResourceVersion(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := New(Options{APIServer: true, Fencing: true, Clock: clk.Now})
	f := c.StartFault("stop")
	c.Begin(100, "a", 1)
	c.APIWrite(100, "a", true, 105) // a's, before anybody else
	clk.step(time.Millisecond)
	c.Begin(200, "b", 2)
	c.APIWrite(200, "b", false, 0)  // b's first write, before the policy saw b: a cost, not stale
	c.APIWrite(200, "b", true, 210) // b's
	c.APIWrite(100, "a", true, 150) // accepted before b's Lease write (200), reported late: not stale
	c.APIWrite(100, "a", false, 0)  // a refused after b began: stale, rejected
	c.APIWrite(100, "a", true, 220) // a accepted after b's Lease write: stale, accepted
	f.Settle()

	r := c.Report()
	k := r.Kind("stop")
	if k.StaleAttempted != 2 || k.StaleRejected != 1 || k.StaleAccepted != 1 || r.RefusedCurrent != 1 || r.Writes != 6 {
		t.Errorf("stale attempted %d, rejected %d, accepted %d, refused current %d, writes %d; want 2, 1, 1, 1, 6:\n%s",
			k.StaleAttempted, k.StaleRejected, k.StaleAccepted, r.RefusedCurrent, r.Writes, r.Markdown())
	}
	if !strings.Contains(r.Markdown(), "the fence policy installed") {
		t.Errorf("the report does not say the API server was the resource:\n%s", r.Markdown())
	}

	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	for q, want := range map[string]int{
		"token=200&id=b&outcome=accepted&rv=230": http.StatusOK,
		"token=200&id=b&outcome=refused":         http.StatusOK,
		"token=200&id=b&outcome=accepted":        http.StatusBadRequest,
		"token=200&id=b&outcome=maybe":           http.StatusBadRequest,
	} {
		resp, err := http.Post(srv.URL+"/write?"+q, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("POST /write?%s: %d, want %d", q, resp.StatusCode, want)
		}
	}
}
