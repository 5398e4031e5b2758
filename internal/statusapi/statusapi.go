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
// and, for each lease (a sidecar may hold several: run --lease a,b,c):
//
//	GET /v1/leases              {"items":[View, ...]}: every lease, in the order given
//	GET /v1/leases/NAME/status  the View of lease NAME
//	GET /v1/leases/NAME/watch   as /v1/watch, for lease NAME
//
// With several leases the endpoints of one election (/v1/status, /,
// /v1/watch, /readyz/leader) answer 400, naming the per-lease paths: an
// answer about one lease must never pass for the answer about all; /readyz
// waits for every lease, and /healthz fails when any election is broken,
// naming its lease.
//
// Every other path answers 404, every other method 405. These endpoints only
// read. The endpoints that act (the application's acknowledgement of a
// step-down, the withdrawal of a terminating pod) are served apart, by
// NewControl, on loopback only.
package statusapi

import (
	"errors"
	"fmt"
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

// Election is one lease of a sidecar and its elector.
type Election struct {
	// Lease is the lease's name: the NAME of /v1/leases/NAME/....
	Lease string
	// Source is its elector.
	Source Source
	// Acknowledge is the control endpoint's POST
	// /v1/leases/NAME/stepped-down (see ControlOptions.Acknowledge); the
	// status API ignores it.
	Acknowledge func(term int64) error
}

// Options configure the handler.
type Options struct {
	// Source is the elector reported on, unless Elections is set.
	Source Source
	// Lease and Namespace name the election in the JSON answers; with
	// Elections, Namespace is theirs.
	Lease     string
	Namespace string
	// Elections, instead of Source and Lease, are every lease of the
	// sidecar, in the order /v1/leases lists them.
	Elections []Election
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
	elections, err := electionsOf(o.Source, o.Lease, nil, o.Elections)
	if err != nil {
		return nil, err
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
	h := &handler{opts: o, elections: elections}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.one(h.contrib))
	mux.HandleFunc("GET /v1/status", h.one(h.status))
	mux.HandleFunc("GET /v1/watch", h.one(h.watch))
	mux.HandleFunc("GET /readyz/leader", h.one(h.readyLeader))
	mux.HandleFunc("GET /readyz", h.ready)
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("GET /v1/leases", h.leases)
	mux.HandleFunc("GET /v1/leases/{name}/status", h.named(h.status))
	mux.HandleFunc("GET /v1/leases/{name}/watch", h.named(h.watch))
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
	}
	return mux, nil
}

// electionsOf returns the elections of a handler's options: es as given,
// or else the one of src (named lease, acknowledged by ack).
func electionsOf(src Source, lease string, ack func(term int64) error, es []Election) ([]Election, error) {
	if len(es) == 0 {
		if src == nil {
			return nil, errors.New("statusapi: a Source is required")
		}
		return []Election{{Lease: lease, Source: src, Acknowledge: ack}}, nil
	}
	if src != nil {
		return nil, errors.New("statusapi: Source and Elections are one or the other")
	}
	seen := map[string]bool{}
	for _, e := range es {
		switch {
		case e.Source == nil:
			return nil, fmt.Errorf("statusapi: election %q has no Source", e.Lease)
		case e.Lease == "":
			return nil, errors.New("statusapi: every election of Elections needs its Lease name")
		case seen[e.Lease]:
			return nil, fmt.Errorf("statusapi: lease %q is given twice", e.Lease)
		}
		seen[e.Lease] = true
	}
	return es, nil
}

type handler struct {
	opts      Options
	elections []Election
}

// view converts a status of e for the answers.
func (h *handler) view(e Election, s election.Status) View {
	return viewOf(e, s, h.opts.Namespace, h.opts.Grace, h.opts.Startup)
}

// viewOf is the View of election e in status s, "starting" while startup
// waits.
func viewOf(e Election, s election.Status, namespace string, grace time.Duration, startup *Startup) View {
	v := ViewOf(s, e.Lease, namespace, grace)
	if reason, waiting := startup.Waiting(); waiting {
		v.State, v.Reason = string(election.StateStarting), reason
	}
	return v
}
