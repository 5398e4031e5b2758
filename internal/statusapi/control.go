package statusapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ControlOptions configure the control endpoint.
type ControlOptions struct {
	// Source is the elector reported on, unless Elections is set.
	Source Source
	// Lease and Namespace name the election in the JSON answers; with
	// Elections, Namespace is theirs.
	Lease, Namespace string
	// Elections, instead of Source, Lease and Acknowledge, are every lease
	// of the sidecar, each with its Acknowledge.
	Elections []Election
	// Acknowledge is called by POST /v1/stepped-down with the term the
	// application names (0: whichever step-down is under way). It returns
	// an error when there is nothing to acknowledge: no step-down under way,
	// or one of another term. Nil: this sidecar does not wait for an
	// application (it runs the work itself, or was told not to wait).
	Acknowledge func(term int64) error
	// Withdraw is called by POST /v1/withdraw: it withdraws every election.
	// Required.
	Withdraw func()
	// Pod is this sidecar's pod: a withdrawal that names another one
	// (pod=...) is refused.
	Pod string
	// Grace bounds the View's validUntil (see Options.Grace).
	Grace time.Duration
	// Startup reports what startup waits for (see Options.Startup).
	Startup *Startup
	// Logger receives what the endpoint does. Default slog.Default().
	Logger *slog.Logger
}

// NewControl returns the handler of the control endpoint, the part of the
// API that acts on the sidecar. Serve it on a loopback address or a Unix
// socket only, never on an address probes or other pods reach; it refuses
// requests that do not come from loopback anyway.
//
//	POST /v1/stepped-down[?term=N]  the application has stopped acting for the leader: a
//	                                step-down under way releases the lease now instead of
//	                                at the end of the grace. 200; 409 when no step-down (of
//	                                term N) is under way: it never starts one.
//	POST /v1/withdraw[?pod=P&lease=L] the pod is terminating (a preStop hook): step down at
//	                                once and never campaign again. 202; 409 when P or L
//	                                name another sidecar's pod or lease.
//	GET  /v1/status                 the View, as on the status API.
//
// and, for each lease (a sidecar may hold several):
//
//	POST /v1/leases/NAME/stepped-down[?term=N]  as /v1/stepped-down, for lease NAME
//	GET  /v1/leases                             every lease's View, as on the status API
//	GET  /v1/leases/NAME/status                 the View of lease NAME
//
// With several leases, /v1/stepped-down and /v1/status answer 400 naming
// the per-lease paths, and a withdrawal withdraws every lease (its lease=
// must then name all of them, as INCUMBENT_LEASE does).
func NewControl(o ControlOptions) (http.Handler, error) {
	if o.Withdraw == nil || (o.Source == nil && len(o.Elections) == 0) {
		return nil, errors.New("statusapi: the control endpoint needs a Source and a Withdraw function")
	}
	elections, err := electionsOf(o.Source, o.Lease, o.Acknowledge, o.Elections)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c := &control{opts: o, elections: elections}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/stepped-down", oneOf(elections, c.steppedDown))
	mux.HandleFunc("POST /v1/withdraw", c.withdraw)
	mux.HandleFunc("GET /v1/status", oneOf(elections, c.status))
	mux.HandleFunc("POST /v1/leases/{name}/stepped-down", namedOf(elections, c.steppedDown))
	mux.HandleFunc("GET /v1/leases", c.leases)
	mux.HandleFunc("GET /v1/leases/{name}/status", namedOf(elections, c.status))
	return loopbackOnly(mux), nil
}

type control struct {
	opts      ControlOptions
	elections []Election
}

func (c *control) steppedDown(w http.ResponseWriter, r *http.Request, e Election) {
	var term int64
	if s := r.URL.Query().Get("term"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			writeText(w, http.StatusBadRequest, fmt.Sprintf("invalid term %q: want a positive integer (the term's fencing token)\n", s))
			return
		}
		term = n
	}
	if e.Acknowledge == nil {
		writeText(w, http.StatusConflict, "this sidecar does not wait for an application to stop (it runs the work itself, or --await-app is off)\n")
		return
	}
	if err := e.Acknowledge(term); err != nil {
		writeText(w, http.StatusConflict, err.Error()+"\n")
		return
	}
	if len(c.elections) == 1 {
		c.opts.Logger.Info("the application says it stopped acting: releasing the lease now", "term", term)
	} else {
		c.opts.Logger.Info("the application says it stopped acting: releasing the lease now", "term", term, "lease", e.Lease)
	}
	writeText(w, http.StatusOK, "acknowledged\n")
}

func (c *control) withdraw(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if pod := q.Get("pod"); pod != "" && c.opts.Pod != "" && pod != c.opts.Pod {
		writeText(w, http.StatusConflict, fmt.Sprintf("this is the sidecar of pod %q, not of %q: is another sidecar on this address?\n", c.opts.Pod, pod))
		return
	}
	if lease := q.Get("lease"); lease != "" && !c.holds(lease) {
		if len(c.elections) == 1 {
			writeText(w, http.StatusConflict, fmt.Sprintf("this sidecar campaigns for lease %q, not %q\n", c.elections[0].Lease, lease))
		} else {
			writeText(w, http.StatusConflict, fmt.Sprintf("this sidecar campaigns for leases %s, not %s: a withdrawal names them all (it withdraws every one)\n", leaseList(c.elections), lease))
		}
		return
	}
	c.opts.Logger.Info("asked to withdraw (the pod is terminating?): stepping down at once, no more campaigns",
		"reason", r.URL.Query().Get("reason"))
	c.opts.Withdraw()
	writeText(w, http.StatusAccepted, "withdrawing\n")
}

// holds reports whether lease, as a withdrawal names it, is this sidecar's:
// its one lease (or, as before, any when it was not named), or with several
// every one of them, comma-separated in any order.
func (c *control) holds(lease string) bool {
	if len(c.elections) == 1 {
		return c.elections[0].Lease == "" || lease == c.elections[0].Lease
	}
	named := map[string]bool{}
	for _, n := range strings.Split(lease, ",") {
		named[strings.TrimSpace(n)] = true
	}
	if len(named) != len(c.elections) {
		return false
	}
	for _, e := range c.elections {
		if !named[e.Lease] {
			return false
		}
	}
	return true
}

func (c *control) status(w http.ResponseWriter, r *http.Request, e Election) {
	writeJSON(w, http.StatusOK, viewOf(e, e.Source.Status(), c.opts.Namespace, c.opts.Grace, c.opts.Startup))
}

func (c *control) leases(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, leasesOf(c.elections, c.opts.Namespace, c.opts.Grace, c.opts.Startup))
}

// loopbackOnly refuses requests from anywhere but loopback (a Unix socket's
// peers, whose address is empty or "@", are local by nature), and requests
// a web browser sends on a page's behalf (they carry an Origin): a page
// that a developer opens must not be able to post to it.
func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.RemoteAddr != "" && r.RemoteAddr != "@" {
			host, _, err := net.SplitHostPort(r.RemoteAddr)
			if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
				writeText(w, http.StatusForbidden, "the control endpoint answers loopback only\n")
				return
			}
		}
		if r.Header.Get("Origin") != "" {
			writeText(w, http.StatusForbidden, "the control endpoint does not answer web pages (the request has an Origin)\n")
			return
		}
		next.ServeHTTP(w, r)
	})
}
