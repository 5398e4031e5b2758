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

// shutdownTimeout bounds the status API's shutdown once the elector ended.
const shutdownTimeout = 2 * time.Second

// Elector is what Run drives: an *election.Elector.
type Elector interface {
	Run(ctx context.Context) error
}

// Sidecar is one candidate and its companions.
type Sidecar struct {
	// Elector campaigns until Run's context ends. Required.
	Elector Elector
	// Listener and Handler serve the status API while Run runs; both or
	// neither.
	Listener net.Listener
	Handler  http.Handler
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
// elector fails. Shutdown order: the elector ends its term, waits for the
// duties (the child is stopped) and releases the lease; then background
// loops end; then the status API closes. It returns the exit code set by
// Stop (0 otherwise) and the elector's error.
func (s *Sidecar) Run(ctx context.Context) (int, error) {
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	if (s.Listener == nil) != (s.Handler == nil) {
		return 1, errors.New("sidecar: Listener and Handler go together")
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

	var srv *http.Server
	serveDone := make(chan error, 1)
	apiCtx, stopAPI := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAPI()
	if s.Listener != nil {
		srv = &http.Server{
			Handler:           s.Handler,
			ReadHeaderTimeout: 5 * time.Second,
			BaseContext:       func(net.Listener) context.Context { return apiCtx }, // ends watch streams at shutdown
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}
		go func() { serveDone <- srv.Serve(s.Listener) }()
	}

	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	for _, f := range s.Background {
		bg.Go(func() { f(bgCtx) })
	}

	err := s.Elector.Run(ctx)
	stopBG()
	bg.Wait()

	if srv != nil {
		stopAPI()
		sctx, cancelShutdown := context.WithTimeout(context.Background(), shutdownTimeout)
		if serr := srv.Shutdown(sctx); serr != nil {
			log.Warn("status API shutdown", "err", serr)
		}
		cancelShutdown()
		if serr := <-serveDone; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			log.Warn("status API stopped", "err", serr)
		}
	}
	s.mu.Lock()
	code := s.exitCode
	s.mu.Unlock()
	if err != nil {
		return max(code, 1), fmt.Errorf("election: %w", err)
	}
	return code, nil
}
