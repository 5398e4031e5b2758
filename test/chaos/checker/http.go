package checker

import (
	"fmt"
	"net/http"
	"strconv"
)

// Handler serves the workload's protocol:
//
//	POST /begin?token=T&id=I&pid=P   a term begins
//	POST /write?token=T&id=I         a fenced write: 409 Conflict if refused
//	POST /write?token=T&id=I&outcome=accepted&rv=R
//	POST /write?token=T&id=I&outcome=refused
//	                                  a write to the API server, and its verdict
//	POST /end?token=T&id=I           the term ends
//
// A malformed request gets 400 Bad Request and is recorded as a protocol
// error.
func (c *Checker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /begin", func(w http.ResponseWriter, r *http.Request) {
		token, id, ok := c.params(w, r)
		if !ok {
			return
		}
		pid, err := strconv.Atoi(r.URL.Query().Get("pid"))
		if err != nil || pid <= 0 {
			c.bad(w, r, "pid must be a positive integer")
			return
		}
		c.Begin(token, id, pid)
	})
	mux.HandleFunc("POST /write", func(w http.ResponseWriter, r *http.Request) {
		token, id, ok := c.params(w, r)
		if !ok {
			return
		}
		if outcome := r.URL.Query().Get("outcome"); outcome != "" {
			var rv int64
			if outcome == "accepted" {
				v, err := strconv.ParseInt(r.URL.Query().Get("rv"), 10, 64)
				if err != nil || v <= 0 {
					c.bad(w, r, "rv must be a positive integer with outcome=accepted")
					return
				}
				rv = v
			} else if outcome != "refused" {
				c.bad(w, r, "outcome must be accepted or refused")
				return
			}
			c.APIWrite(token, id, outcome == "accepted", rv)
			return
		}
		if accepted, highest := c.Write(token, id); !accepted {
			http.Error(w, fmt.Sprintf("stale token %d: token %d has been seen", token, highest), http.StatusConflict)
		}
	})
	mux.HandleFunc("POST /end", func(w http.ResponseWriter, r *http.Request) {
		token, id, ok := c.params(w, r)
		if !ok {
			return
		}
		c.End(token, id)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.bad(w, r, "unknown path or method (want POST /begin, /write or /end)")
	})
	return mux
}

// params reads the token and identity every request carries.
func (c *Checker) params(w http.ResponseWriter, r *http.Request) (token int64, id string, ok bool) {
	q := r.URL.Query()
	token, err := strconv.ParseInt(q.Get("token"), 10, 64)
	if err != nil || token < 0 {
		c.bad(w, r, "token must be a non-negative integer")
		return 0, "", false
	}
	id = q.Get("id")
	if id == "" {
		c.bad(w, r, "id must not be empty")
		return 0, "", false
	}
	return token, id, true
}

func (c *Checker) bad(w http.ResponseWriter, r *http.Request, why string) {
	msg := fmt.Sprintf("%s %s: %s", r.Method, r.URL.RequestURI(), why)
	c.Protocol("bad request: " + msg)
	http.Error(w, msg, http.StatusBadRequest)
}
