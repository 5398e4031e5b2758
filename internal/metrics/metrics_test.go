package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/incumbent-io/incumbent/store"
)

func TestMetricsFollowTheElector(t *testing.T) {
	m := New("default/db")
	if got := value(t, m.isLeader); got != 0 {
		t.Fatalf("is_leader before any term = %v, want 0", got)
	}
	m.HolderChanged("a", 1)
	m.Acquired(2, 3*time.Millisecond)
	m.Leading(true)
	m.Leading(true) // repeated: no second term
	m.Renewed(time.Millisecond, nil)
	m.Renewed(2*time.Millisecond, errors.New("timeout"))
	m.HolderChanged("b", 2)

	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{"is_leader", value(t, m.isLeader), 1},
		{"terms", value(t, m.terms), 1},
		{"holder changes", value(t, m.holderChanges), 2},
		{"observed term", value(t, m.observedTerm), 2},
		{"renew failures", value(t, m.renewFailures), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	var h dto.Metric
	if err := m.renew.Write(&h); err != nil || h.GetHistogram().GetSampleCount() != 2 {
		t.Errorf("renew histogram: %v samples (err %v), want 2", h.GetHistogram().GetSampleCount(), err)
	}
	led := m.leaderSeconds()
	m.Leading(false)
	m.Leading(false)
	after := m.leaderSeconds()
	if after < led || value(t, m.isLeader) != 0 {
		t.Errorf("after stepping down: leader seconds %v (was %v), is_leader %v", after, led, value(t, m.isLeader))
	}
	if again := m.leaderSeconds(); again != after {
		t.Errorf("leader seconds moved while following: %v then %v", after, again)
	}
}

func TestHandlerExposesPrivateRegistry(t *testing.T) {
	m := New("ns/lease")
	m.Leading(true)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`incumbent_is_leader{lease="ns/lease"} 1`,
		`incumbent_terms_total{lease="ns/lease"} 1`,
		`incumbent_acquire_duration_seconds_bucket{lease="ns/lease",le="0.001"} 0`,
		`incumbent_leader_seconds_total{lease="ns/lease"}`,
		`process_resident_memory_bytes`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics output lacks %q", want)
		}
	}
	// Two instances in one process do not collide: no global registry.
	New("ns/lease").Leading(true)
}

// value reads the current value of a gauge or counter.
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.GetCounter().GetValue()
}

// The leases of one sidecar share one registry: every incumbent_* series is
// there once per lease, told apart by its label, and the Go and process
// series once.
func TestSeveralLeasesShareOneRegistry(t *testing.T) {
	a := New("ns/a")
	b := a.For("ns/b")
	c := a.For("ns/c")
	b.Leading(true)
	c.Watching(false, store.ErrPermission)
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`incumbent_is_leader{lease="ns/a"} 0`,
		`incumbent_is_leader{lease="ns/b"} 1`,
		`incumbent_is_leader{lease="ns/c"} 0`,
		`incumbent_terms_total{lease="ns/b"} 1`,
		`incumbent_watch_failures_total{lease="ns/c",reason="forbidden"} 1`,
		`incumbent_watch_failures_total{lease="ns/a",reason="forbidden"} 0`,
		`incumbent_renew_duration_seconds_count{lease="ns/c"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics output lacks %q", want)
		}
	}
	if n := strings.Count(body, "\ngo_goroutines "); n != 1 {
		t.Errorf("go_goroutines appears %d times, want once", n)
	}
	if b.Registry() != a.Registry() {
		t.Error("the leases' metrics are on different registries")
	}
	defer func() {
		if recover() == nil {
			t.Error("a lease registered twice on one registry did not panic")
		}
	}()
	a.For("ns/b")
}
