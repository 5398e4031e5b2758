// Package metrics exports an election's measurements to Prometheus. It
// implements election.Metrics on a private prometheus.Registry: nothing is
// registered globally, so several electors (or tests) in one process never
// collide.
package metrics

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store"
)

// Metrics is the Prometheus view of one candidate. It is safe for concurrent
// use and never blocks.
type Metrics struct {
	reg *prometheus.Registry

	isLeader      prometheus.Gauge
	terms         prometheus.Counter
	holderChanges prometheus.Counter
	observedTerm  prometheus.Gauge
	acquire       prometheus.Histogram
	renew         prometheus.Histogram
	renewFailures prometheus.Counter
	watching      prometheus.Gauge
	watchFailures *prometheus.CounterVec
	healthy       prometheus.Gauge

	mu          sync.Mutex
	holder      string // last holder reported
	holderKnown bool
	leaderSince time.Time     // zero while following
	ledBefore   time.Duration // time led in terms that have ended
}

// latencyBuckets cover a loopback round trip (1 ms) to a struggling API
// server (10 s, the default renew deadline).
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New returns Metrics on a fresh registry. lease names the election; it is
// attached to every incumbent_* series as the constant label "lease". The
// registry also carries the Go runtime and process collectors.
func New(lease string) *Metrics {
	reg := prometheus.NewRegistry()
	m := newOn(reg, lease)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// For returns the Metrics of another election of the same process, on m's
// registry: its incumbent_* series are those of m with the label
// lease="<lease>", so that one /metrics serves every lease of a sidecar that
// holds several. It panics if lease is m's own or was given before, as a
// registry refuses a series twice.
func (m *Metrics) For(lease string) *Metrics { return newOn(m.reg, lease) }

// newOn makes the Metrics of the election lease and registers them on reg.
func newOn(reg *prometheus.Registry, lease string) *Metrics {
	labels := prometheus.Labels{"lease": lease}
	f := func(o prometheus.Opts) prometheus.Opts { o.ConstLabels = labels; return o }
	m := &Metrics{reg: reg}
	m.isLeader = prometheus.NewGauge(prometheus.GaugeOpts(f(prometheus.Opts{
		Name: "incumbent_is_leader",
		Help: "1 while this candidate is inside a term (leading), 0 otherwise.",
	})))
	m.terms = prometheus.NewCounter(prometheus.CounterOpts(f(prometheus.Opts{
		Name: "incumbent_terms_total",
		Help: "Terms this candidate has won.",
	})))
	m.holderChanges = prometheus.NewCounter(prometheus.CounterOpts(f(prometheus.Opts{
		Name: "incumbent_leader_transitions_total",
		Help: "Changes of the lease holder observed by this candidate (including the lease becoming free).",
	})))
	m.observedTerm = prometheus.NewGauge(prometheus.GaugeOpts(f(prometheus.Opts{
		Name: "incumbent_observed_term",
		Help: "Fencing token of the current holder's term, as observed by this candidate (0 while unknown).",
	})))
	m.acquire = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "incumbent_acquire_duration_seconds", ConstLabels: labels, Buckets: latencyBuckets,
		Help: "Duration of the winning write of each acquisition.",
	})
	m.renew = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "incumbent_renew_duration_seconds", ConstLabels: labels, Buckets: latencyBuckets,
		Help: "Duration of every renewal attempt, successful or not.",
	})
	m.renewFailures = prometheus.NewCounter(prometheus.CounterOpts(f(prometheus.Opts{
		Name: "incumbent_renew_failures_total",
		Help: "Renewal attempts that failed (conflict, timeout, unreachable store, ...).",
	})))
	m.watching = prometheus.NewGauge(prometheus.GaugeOpts(f(prometheus.Opts{
		Name: "incumbent_watching",
		Help: "1 while a watch of the lease record runs, 0 while the record is polled every retry period instead.",
	})))
	m.watchFailures = prometheus.NewCounterVec(prometheus.CounterOpts(f(prometheus.Opts{
		Name: "incumbent_watch_failures_total",
		Help: "Watches of the lease record that could not be established, by reason: forbidden (the watch permission is missing) or error.",
	})), []string{"reason"})
	m.watchFailures.WithLabelValues("forbidden")
	m.watchFailures.WithLabelValues("error")
	m.healthy = prometheus.NewGauge(prometheus.GaugeOpts(f(prometheus.Opts{
		Name: "incumbent_workload_healthy",
		Help: "1 while the workload's health check passes (or none is configured), 0 while it fails and the candidate holds back.",
	})))
	m.healthy.Set(1)
	leaderSeconds := prometheus.NewCounterFunc(prometheus.CounterOpts(f(prometheus.Opts{
		Name: "incumbent_leader_seconds_total",
		Help: "Seconds this candidate has spent leading, including the current term.",
	})), m.leaderSeconds)
	reg.MustRegister(m.isLeader, m.terms, m.holderChanges, m.observedTerm, m.acquire, m.renew,
		m.renewFailures, m.watching, m.watchFailures, m.healthy, leaderSeconds)
	return m
}

// Registry is the private registry holding every series.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Leading implements election.Metrics.
func (m *Metrics) Leading(leading bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case leading && m.leaderSince.IsZero():
		m.leaderSince = time.Now()
		m.isLeader.Set(1)
		m.terms.Inc()
	case !leading && !m.leaderSince.IsZero():
		m.ledBefore += time.Since(m.leaderSince)
		m.leaderSince = time.Time{}
		m.isLeader.Set(0)
	}
}

// Acquired implements election.Metrics.
func (m *Metrics) Acquired(token int64, took time.Duration) {
	m.acquire.Observe(took.Seconds())
	m.observedTerm.Set(float64(token))
}

// Renewed implements election.Metrics.
func (m *Metrics) Renewed(took time.Duration, err error) {
	m.renew.Observe(took.Seconds())
	if err != nil {
		m.renewFailures.Inc()
	}
}

// HolderChanged implements election.Metrics.
func (m *Metrics) HolderChanged(holder string, term int64) {
	m.mu.Lock()
	changed := !m.holderKnown || holder != m.holder
	m.holder, m.holderKnown = holder, true
	m.mu.Unlock()
	if changed {
		m.holderChanges.Inc()
	}
	m.observedTerm.Set(float64(term))
}

// Healthy implements election.Metrics.
func (m *Metrics) Healthy(healthy bool, reason string) {
	if healthy {
		m.healthy.Set(1)
	} else {
		m.healthy.Set(0)
	}
}

// Watching implements election.Metrics.
func (m *Metrics) Watching(watching bool, err error) {
	if watching {
		m.watching.Set(1)
		return
	}
	m.watching.Set(0)
	switch {
	case errors.Is(err, store.ErrPermission):
		m.watchFailures.WithLabelValues("forbidden").Inc()
	case err != nil:
		m.watchFailures.WithLabelValues("error").Inc()
	}
}

func (m *Metrics) leaderSeconds() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.ledBefore
	if !m.leaderSince.IsZero() {
		d += time.Since(m.leaderSince)
	}
	return d.Seconds()
}

var _ election.Metrics = (*Metrics)(nil)
