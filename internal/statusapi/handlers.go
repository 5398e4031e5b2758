package statusapi

import (
	"encoding/json"
	"net/http"
)

func (h *handler) contrib(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Contrib{Name: h.opts.Source.Status().Leader})
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.view(h.opts.Source.Status()))
}

func (h *handler) readyLeader(w http.ResponseWriter, r *http.Request) {
	if h.opts.Source.Status().IsLeader {
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
	if err := h.opts.Source.Check(); err != nil {
		writeText(w, http.StatusServiceUnavailable, "unhealthy: "+err.Error()+"\n")
		return
	}
	writeText(w, http.StatusOK, "ok\n")
}

func (h *handler) ready(w http.ResponseWriter, r *http.Request) {
	if reason, waiting := h.opts.Startup.Waiting(); waiting {
		writeText(w, http.StatusServiceUnavailable, "starting: "+reason+"\n")
		return
	}
	if s := h.opts.Source.Status(); !s.Known {
		writeText(w, http.StatusServiceUnavailable, "starting: the lease has not been read yet\n")
		return
	}
	writeText(w, http.StatusOK, "ready\n")
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
