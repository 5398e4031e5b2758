package statusapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// electionHandler answers a request about one election.
type electionHandler func(w http.ResponseWriter, r *http.Request, e Election)

func (h *handler) contrib(w http.ResponseWriter, r *http.Request, e Election) {
	writeJSON(w, http.StatusOK, Contrib{Name: e.Source.Status().Leader})
}

func (h *handler) status(w http.ResponseWriter, r *http.Request, e Election) {
	writeJSON(w, http.StatusOK, h.view(e, e.Source.Status()))
}

func (h *handler) readyLeader(w http.ResponseWriter, r *http.Request, e Election) {
	if e.Source.Status().IsLeader {
		writeText(w, http.StatusOK, "leader\n")
		return
	}
	writeText(w, http.StatusServiceUnavailable, "not the leader\n")
}

func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	if reason, waiting := h.opts.Startup.Waiting(); waiting {
		writeText(w, http.StatusOK, "ok: starting: "+reason+"\n")
		return
	}
	if len(h.elections) == 1 {
		if err := h.elections[0].Source.Check(); err != nil {
			writeText(w, http.StatusServiceUnavailable, "unhealthy: "+err.Error()+"\n")
			return
		}
		writeText(w, http.StatusOK, "ok\n")
		return
	}
	var failed []string
	for _, e := range h.elections {
		if err := e.Source.Check(); err != nil {
			failed = append(failed, "unhealthy: lease "+e.Lease+": "+err.Error()+"\n")
		}
	}
	if len(failed) > 0 {
		writeText(w, http.StatusServiceUnavailable, strings.Join(failed, ""))
		return
	}
	writeText(w, http.StatusOK, "ok\n")
}

func (h *handler) ready(w http.ResponseWriter, r *http.Request) {
	if reason, waiting := h.opts.Startup.Waiting(); waiting {
		writeText(w, http.StatusServiceUnavailable, "starting: "+reason+"\n")
		return
	}
	if len(h.elections) == 1 {
		if s := h.elections[0].Source.Status(); !s.Known {
			writeText(w, http.StatusServiceUnavailable, "starting: the lease has not been read yet\n")
			return
		}
		writeText(w, http.StatusOK, "ready\n")
		return
	}
	var unread []string
	for _, e := range h.elections {
		if !e.Source.Status().Known {
			unread = append(unread, e.Lease)
		}
	}
	if len(unread) > 0 {
		writeText(w, http.StatusServiceUnavailable, "starting: not read yet: lease "+strings.Join(unread, ", ")+"\n")
		return
	}
	writeText(w, http.StatusOK, "ready\n")
}

// Leases is the document of GET /v1/leases: the View of every lease of the
// sidecar, in the order it was given them.
type Leases struct {
	Items []View `json:"items"`
}

func (h *handler) leases(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, leasesOf(h.elections, h.opts.Namespace, h.opts.Grace, h.opts.Startup))
}

func leasesOf(es []Election, namespace string, grace time.Duration, startup *Startup) Leases {
	out := Leases{Items: make([]View, len(es))}
	for i, e := range es {
		out.Items[i] = viewOf(e, e.Source.Status(), namespace, grace, startup)
	}
	return out
}

// one serves f for the sidecar's one election; with several it answers 400,
// naming the per-lease paths.
func (h *handler) one(f electionHandler) http.HandlerFunc {
	return oneOf(h.elections, f)
}

// named serves f for the election named by the path's {name}; 404 for a
// lease the sidecar does not hold.
func (h *handler) named(f electionHandler) http.HandlerFunc {
	return namedOf(h.elections, f)
}

func oneOf(es []Election, f electionHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if len(es) != 1 {
			writeText(w, http.StatusBadRequest, severalLeases(es, r.URL.Path))
			return
		}
		f(w, r, es[0])
	}
}

func namedOf(es []Election, f electionHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		for _, e := range es {
			if e.Lease == name {
				f(w, r, e)
				return
			}
		}
		writeText(w, http.StatusNotFound, "this sidecar does not hold lease "+strconv.Quote(name)+"; it holds "+leaseList(es)+"\n")
	}
}

// severalLeases is the answer of an endpoint of one election when the
// sidecar holds several.
func severalLeases(es []Election, path string) string {
	per := map[string]string{
		"/v1/status": "GET /v1/leases/NAME/status", "/v1/watch": "GET /v1/leases/NAME/watch",
		"/v1/stepped-down": "POST /v1/leases/NAME/stepped-down[?term=N]",
	}[path]
	if per == "" {
		per = "GET /v1/leases/NAME/status (isLeader)"
	}
	return "this sidecar holds several leases (" + leaseList(es) + "), and " + path +
		" answers for one: ask " + per + ", or GET /v1/leases for every lease\n"
}

func leaseList(es []Election) string {
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.Lease
	}
	return strings.Join(names, ", ")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeText(w, http.StatusInternalServerError, "encode: "+err.Error()+"\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeText(w http.ResponseWriter, code int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(s))
}
