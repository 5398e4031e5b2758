// Package writegate keeps a leader's HTTP client from writing once its term
// has ended: a wrapper of an http.RoundTripper, or of a client-go
// rest.Config, that refuses every request but GET and HEAD (which carry
// Kubernetes' get, list and watch; not a GET that upgrades to a WebSocket,
// as exec, attach and port-forward do) as soon as the term's context is done,
// without sending it. A stray goroutine of a Go controller that keeps
// writing after step-down then gets an error wrapping ErrTermEnded, and the
// reason the term ended, instead of a write the API server would accept.
//
// The gate is checked when a request starts. A write already sent when the
// term ends is not recalled: the API server's own fence (incumbent fence)
// and fencing tokens cover that window, and writes that do not go through
// this client.
package writegate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"k8s.io/client-go/rest"
)

// ErrTermEnded is wrapped by the error of every request the gate refuses.
// The same error also wraps the term's own reason (for an election.Term,
// election.ErrLeaseLost, election.ErrResigned, ...), so that errors.Is
// finds either.
var ErrTermEnded = errors.New("write refused locally: the leader's term has ended")

// Term is what the gate needs of a term: a context done when the term
// ends, whose cause says why. *election.Term satisfies it.
type Term interface {
	Context() context.Context
}

// RoundTripper returns rt gated by term: requests other than GET and HEAD
// (and GETs that ask to upgrade the connection) fail with an error wrapping
// ErrTermEnded, and are not sent, once
// term.Context() is done. A nil rt means http.DefaultTransport.
func RoundTripper(term Term, rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return &gate{ctx: term.Context(), next: rt}
}

// Config returns a copy of cfg whose clients are gated by term, as
// RoundTripper gates them. Build the leader's clients of one term from it.
func Config(term Term, cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	ctx := term.Context()
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &gate{ctx: ctx, next: rt} })
	return c
}

type gate struct {
	ctx  context.Context // the term's
	next http.RoundTripper
}

func (g *gate) RoundTrip(req *http.Request) (*http.Response, error) {
	if !isRead(req) && g.ctx.Err() != nil {
		if req.Body != nil {
			req.Body.Close() // as a RoundTripper must, even on error
		}
		return nil, fmt.Errorf("%w: %s %s not sent: %w", ErrTermEnded, req.Method, req.URL.Path, context.Cause(g.ctx))
	}
	return g.next.RoundTrip(req)
}

// isRead reports whether req only reads: a GET or HEAD that does not ask to
// switch protocols (client-go's WebSocket exec, attach and port-forward are
// GETs with an Upgrade header).
func isRead(req *http.Request) bool {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return false
	}
	if req.Header.Get("Upgrade") != "" {
		return false
	}
	for _, v := range req.Header.Values("Connection") {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return false
			}
		}
	}
	return true
}
