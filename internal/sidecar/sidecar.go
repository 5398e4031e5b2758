package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// shutdownTimeout bounds the HTTP servers' shutdown once the elector ended.
const shutdownTimeout = 2 * time.Second

// Server is one HTTP endpoint of the sidecar: the status API, the control
// endpoint.
type Server struct {
	// Name names it in logs, e.g. "status API".
	Name     string
	Listener net.Listener
	Handler  http.Handler
}

// StartupError is what ended Run before its election began: the error of
// Startup, as it is (its Unwrap gives it).
type StartupError struct{ Err error }

func (e *StartupError) Error() string { return e.Err.Error() }
func (e *StartupError) Unwrap() error { return e.Err }

// Elector is what Run drives: an *election.Elector.
type Elector interface {
	Run(ctx context.Context) error
}

// Sidecar is one candidate and its companions.
type Sidecar struct {
	// Elector campaigns until Run's context ends. Required.
	Elector Elector
	// Servers are served from the moment Run starts until after the
	// elector has returned, so that probes and the application see the
	// sidecar (and why it waits) before its election can run.
	Servers []Server
	// Startup, when set, runs once the servers serve and before anything
	// else: it waits for what the election needs (its store, permissions).
	// An error ends Run (as a *StartupError); so does ctx ending, cleanly.
	Startup func(ctx context.Context) error
	// Background loops run from before the elector starts until after it
	// has returned (for example pod labelling, which must see the last
	// term end). Each must return soon after its context ends.
	Background []func(ctx context.Context)
	// Forward receives the signals of ForwardedSignals (for a child
	// process); nil ignores them.
	Forward func(os.Signal) error
	// Logger receives Run's logs. Default slog.Default().
	Logger *slog.Logger

	mu       sync.Mutex
	stop     context.CancelFunc
	exitCode int
}

// ForwardedSignals lists the signals Run hands to Forward instead of acting
// on them: SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH and SIGQUIT.
func ForwardedSignals() []os.Signal {
	return []os.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGQUIT}
}

// Stop ends Run as SIGTERM would, and makes it return code. It is meant
// for a child that exited under the "exit" policy.
func (s *Sidecar) Stop(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exitCode = code
	if s.stop != nil {
		s.stop()
	}
}

// Run runs until ctx ends, SIGTERM or SIGINT arrives, Stop is called, or the
// elector fails. Start-up order: the servers serve, Startup waits for what
// the election needs, the background loops start, the elector runs.
// Shutdown order: the elector ends its term, waits for the duties (the
// child is stopped, the application had its grace) and releases the lease;
// then background loops end; then the servers close. It returns the exit
// code set by Stop (0 otherwise) and the error of Startup or the elector.
func (s *Sidecar) Run(ctx context.Context) (int, error) {
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	for _, sv := range s.Servers {
		if sv.Listener == nil || sv.Handler == nil {
			return 1, fmt.Errorf("sidecar: server %q needs a Listener and a Handler", sv.Name)
		}
	}
	ctx, cancel := notifyShutdown(ctx, log)
	defer cancel()
	s.mu.Lock()
	s.stop = cancel
	s.mu.Unlock()

	fwd := make(chan os.Signal, 4)
	signal.Notify(fwd, ForwardedSignals()...)
	defer signal.Stop(fwd)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-fwd:
				if s.Forward == nil {
					log.Info("ignoring signal: no child to forward it to", "signal", sig.String())
					continue
				}
				if err := s.Forward(sig); err != nil {
					log.Info("signal not forwarded", "signal", sig.String(), "err", err)
				}
			}
		}
	}()

	apiCtx, stopAPI := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAPI()
	servers := make([]*http.Server, len(s.Servers))
	serveDone := make([]chan error, len(s.Servers))
	for i, sv := range s.Servers {
		servers[i] = &http.Server{
			Handler:           sv.Handler,
			ReadHeaderTimeout: 5 * time.Second,
			BaseContext:       func(net.Listener) context.Context { return apiCtx }, // ends watch streams at shutdown
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}
		serveDone[i] = make(chan error, 1)
		go func() { serveDone[i] <- servers[i].Serve(sv.Listener) }()
	}
	shutdown := func() {
		stopAPI()
		for i, srv := range servers {
			sctx, cancelShutdown := context.WithTimeout(context.Background(), shutdownTimeout)
			if serr := srv.Shutdown(sctx); serr != nil {
				log.Warn("HTTP server shutdown", "server", s.Servers[i].Name, "err", serr)
			}
			cancelShutdown()
			if serr := <-serveDone[i]; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
				log.Warn("HTTP server stopped", "server", s.Servers[i].Name, "err", serr)
			}
		}
	}

	if s.Startup != nil {
		if err := s.Startup(ctx); err != nil || ctx.Err() != nil {
			shutdown()
			if err != nil && ctx.Err() == nil {
				return 1, &StartupError{Err: err}
			}
			log.Info("stopped before the election started", "cause", context.Cause(ctx))
			return s.code(), nil
		}
	}

	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	for _, f := range s.Background {
		bg.Go(func() { f(bgCtx) })
	}

	err := s.Elector.Run(ctx)
	stopBG()
	bg.Wait()
	shutdown()
	code := s.code()
	if err != nil {
		return max(code, 1), fmt.Errorf("election: %w", err)
	}
	return code, nil
}

// code is the exit code set by Stop.
func (s *Sidecar) code() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exitCode
}
