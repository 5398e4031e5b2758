package sidecar

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// ShutdownSignals lists the signals that end Run in order: SIGTERM and
// SIGINT.
func ShutdownSignals() []os.Signal { return []os.Signal{syscall.SIGTERM, syscall.SIGINT} }

// SignalError is the cause (context.Cause) of a context that
// NotifyShutdown ended because a shutdown signal arrived.
type SignalError struct {
	// Signal is the signal that arrived.
	Signal os.Signal
}

func (e *SignalError) Error() string { return "received " + SignalName(e.Signal) }

// SignalName is the conventional name of a shutdown signal, "SIGTERM" or
// "SIGINT", and the Go name of any other ("hangup").
func SignalName(sig os.Signal) string {
	switch sig {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	}
	return sig.String()
}

// NotifyShutdown is signal.NotifyContext for ShutdownSignals, whose cause
// says which signal arrived: a *SignalError. The binary ends its whole
// invocation with it, and Run ends with it, so that whichever of the two
// sees a signal first, the cause is the same.
func NotifyShutdown(parent context.Context) (ctx context.Context, stop context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, ShutdownSignals()...)
	go func() {
		select {
		case sig := <-ch:
			cancel(&SignalError{Signal: sig})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		cancel(nil)
		signal.Stop(ch)
	}
}

// notifyShutdown is NotifyShutdown that logs the signal when one ends ctx,
// as Run begins its shutdown. stop also waits for that log line.
func notifyShutdown(parent context.Context, log *slog.Logger) (ctx context.Context, stop context.CancelFunc) {
	ctx, stopNotify := NotifyShutdown(parent)
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		<-ctx.Done()
		if se := (*SignalError)(nil); errors.As(context.Cause(ctx), &se) {
			log.Info("shutting down", "signal", SignalName(se.Signal))
		}
	}()
	return ctx, func() {
		stopNotify()
		<-logged
	}
}
