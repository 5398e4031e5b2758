// Package leaderport opens a TCP listener only while this candidate leads,
// and closes it (with every connection on it) when the term ends: the
// classic "only the leader is Ready" readinessProbe target.
//
// The port answers every HTTP request with 200 and a small JSON document,
// so it suits tcpSocket and httpGet probes alike.
package leaderport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/incumbent-io/incumbent/election"
)

// retryListen is the pause between attempts to open the port when it is
// busy (for example still held by a previous process in TIME_WAIT-free
// shutdown).
const retryListen = 250 * time.Millisecond

// Port is a sidecar duty: Lead opens the address for the duration of a term.
type Port struct {
	addr   string
	listen func(ctx context.Context, network, addr string) (net.Listener, error)
	log    *slog.Logger
}

// New returns a Port for addr ("host:port" or ":port"). It checks the
// address now by opening and closing it once, so that a typo or a port in
// use is reported at startup rather than at the first term.
func New(addr string, log *slog.Logger) (*Port, error) {
	if log == nil {
		log = slog.Default()
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("leader port %q: %w", addr, err)
	}
	if err := ln.Close(); err != nil {
		return nil, fmt.Errorf("leader port %q: %w", addr, err)
	}
	return &Port{addr: addr, listen: lc.Listen, log: log.With("leader_addr", addr)}, nil
}

// Lead opens the port, serves until the term ends, then closes the listener
// and every open connection before returning. If the port cannot be opened
// it retries until the term ends, logging each failure.
func (p *Port) Lead(term *election.Term) {
	var ln net.Listener
	for {
		var err error
		ln, err = p.listen(term.Context(), "tcp", p.addr)
		if err == nil {
			break
		}
		p.log.Error("cannot open the leader port; retrying while the term lasts", "err", err)
		select {
		case <-term.Done():
			return
		case <-time.After(retryListen):
		}
	}
	body, _ := json.Marshal(map[string]any{"isLeader": true, "identity": term.Identity(), "term": term.Token()})
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			_, _ = w.Write(append(body, '\n'))
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	p.log.Info("leader port open", "addr", ln.Addr().String(), "token", term.Token())
	select {
	case <-term.Done():
	case err := <-served:
		// The listener broke while leading: say so. The port stays closed
		// until the next term; the term itself goes on.
		p.log.Error("leader port stopped serving until the next term", "err", err)
		<-term.Done()
	}
	if err := srv.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		p.log.Warn("closing the leader port", "err", err)
	}
	p.log.Info("leader port closed", "addr", ln.Addr().String(), "token", term.Token())
}
