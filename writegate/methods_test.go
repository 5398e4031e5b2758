package writegate_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/incumbent-io/incumbent/writegate"
)

type ctxTerm struct{ ctx context.Context }

func (c ctxTerm) Context() context.Context { return c.ctx }

// TestOnlyGETAndHEADPassAfterTheEnd: every method passes during the term;
// after it only GET and HEAD reach the server, and the others fail with
// the term's cause.
func TestOnlyGETAndHEADPassAfterTheEnd(t *testing.T) {
	var reached atomic.Int64
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	defer server.Close()
	ctx, end := context.WithCancelCause(context.Background())
	client := &http.Client{Transport: writegate.RoundTripper(ctxTerm{ctx}, nil)}
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}
	do := func(method string) error {
		req, err := http.NewRequest(method, server.URL+"/x", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	for _, m := range methods {
		if err := do(m); err != nil {
			t.Errorf("%s during the term: %v", m, err)
		}
	}
	cause := errors.New("lease lost")
	end(cause)
	before := reached.Load()
	for _, m := range methods {
		err := do(m)
		switch m {
		case http.MethodGet, http.MethodHead:
			if err != nil {
				t.Errorf("%s after the term: %v", m, err)
			}
		default:
			if !errors.Is(err, writegate.ErrTermEnded) || !errors.Is(err, cause) {
				t.Errorf("%s after the term: %v, want an error wrapping ErrTermEnded and the term's cause", m, err)
			}
		}
	}
	if got := reached.Load() - before; got != 2 {
		t.Errorf("after the term, %d requests reached the server, want 2 (GET and HEAD)", got)
	}
}

// TestUpgradesAreRefusedAfterTheEnd: a GET that asks to switch protocols
// (client-go's WebSocket exec, attach and port-forward) is not a read, and
// is refused once the term has ended, like a write.
func TestUpgradesAreRefusedAfterTheEnd(t *testing.T) {
	var reached atomic.Int64
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	defer server.Close()
	ctx, end := context.WithCancelCause(context.Background())
	client := &http.Client{Transport: writegate.RoundTripper(ctxTerm{ctx}, nil)}
	cause := errors.New("lease lost")
	end(cause)
	for _, hdr := range [][2]string{{"Upgrade", "websocket"}, {"Connection", "Upgrade"}} {
		req, err := http.NewRequest(http.MethodGet, server.URL+"/api/v1/namespaces/x/pods/p/exec", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(hdr[0], hdr[1])
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		if !errors.Is(err, writegate.ErrTermEnded) || !errors.Is(err, cause) {
			t.Errorf("GET with %s: %s after the term: %v, want it refused", hdr[0], hdr[1], err)
		}
	}
	if got := reached.Load(); got != 0 {
		t.Errorf("%d upgrade requests reached the server after the term, want none", got)
	}
}
