// Package statusapi serves what an incumbent sidecar knows about its
// election over HTTP, so that the application next to it can ask whether it
// leads, or be told as soon as that changes:
//
//	GET /v1/status      JSON View of the election
//	GET /               {"name":"<leader>"}, as the retired contrib leader-elector answered
//	GET /v1/watch       Server-Sent Events: the View now, then one event per change
//	GET /readyz/leader  200 while leading, 503 otherwise
//	GET /readyz         200 once the sidecar knows the election's state, 503 while it starts
//	GET /healthz        200 while the sidecar works as it should (it may be waiting for its
//	                    store: the body says so), 503 when it is broken (Elector.Check)
//	GET /metrics        Prometheus exposition, when a metrics handler is given
//
// Every other path answers 404, every other method 405. These endpoints only
// read. The endpoints that act (the application's acknowledgement of a
// step-down, the withdrawal of a terminating pod) are served apart, by
// NewControl, on loopback only.
package statusapi

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/incumbent-io/incumbent/election"
)

// Source is what the API reports on: an *election.Elector.
type Source interface {
	// Status returns what is known now.
	Status() election.Status
	// Subscribe returns the current status at once, then each change.
	Subscribe() (statuses <-chan election.Status, cancel func())
	// Check returns nil while the election loop is healthy.
	Check() error
}

// Options configure the handler.
type Options struct {
	// Source is the elector reported on. Required.
	Source Source
	// Lease and Namespace name the election in the JSON answers.
	Lease     string
	Namespace string
	// Metrics serves /metrics; nil answers 404 there.
	Metrics http.Handler
	// Grace is the sidecar's --grace: it bounds the View's validUntil.
	Grace time.Duration
	// Startup, when set, says what the sidecar waits for before its
	// election runs: while it waits, /healthz answers 200 saying so,
	// /readyz 503, and the View's state is "starting" with that reason.
	Startup *Startup
	// Heartbeat is the interval of SSE comment lines that keep idle watch
	// connections open through proxies. Default 15s.
	Heartbeat time.Duration
	// Logger receives request errors. Default slog.Default().
	Logger *slog.Logger
}

// DefaultHeartbeat is the default interval of SSE keep-alive comments.
const DefaultHeartbeat = 15 * time.Second

// New returns the API's handler.
func New(o Options) (http.Handler, error) {
	if o.Source == nil {
		return nil, errors.New("statusapi: a Source is required")
	}
	if o.Heartbeat < 0 {
		return nil, errors.New("statusapi: Heartbeat must not be negative")
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	h := &handler{opts: o}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.contrib)
	mux.HandleFunc("GET /v1/status", h.status)
	mux.HandleFunc("GET /v1/watch", h.watch)
	mux.HandleFunc("GET /readyz/leader", h.readyLeader)
	mux.HandleFunc("GET /readyz", h.ready)
	mux.HandleFunc("GET /healthz", h.healthz)
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
	}
	return mux, nil
}

type handler struct {
	opts Options
}

// view converts a status for the answers.
func (h *handler) view(s election.Status) View {
	v := ViewOf(s, h.opts.Lease, h.opts.Namespace, h.opts.Grace)
	if reason, waiting := h.opts.Startup.Waiting(); waiting {
		v.State, v.Reason = string(election.StateStarting), reason
	}
	return v
}
