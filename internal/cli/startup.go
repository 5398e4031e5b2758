package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/incumbent-io/incumbent/internal/kubeclient"
	"github.com/incumbent-io/incumbent/internal/rbac"
	"github.com/incumbent-io/incumbent/store"
)

// Startup checks: each check's bound, the backoff between attempts while
// the store does not answer, and after how many attempts the waiting is
// logged as an error (it may need someone: a TLS error, a firewall).
const (
	startupStepTimeout = 5 * time.Second
	startupRetryMin    = 500 * time.Millisecond
	startupRetryMax    = 30 * time.Second
	startupLoudAfter   = 5
)

// waitForStore runs the startup checks, once the status API serves: a read
// of the lease, on Kubernetes the check of every permission the flags need,
// and the modes' own checks (the pod to label exists). While the store does
// not answer, or answers with an error a retry may cure, the sidecar says
// what it waits for (in the log, on /healthz, /readyz and /v1/status) and
// tries again with a growing delay, until ctx ends: an unreachable API
// server is waited for, never a reason to exit and crash-loop. A refused
// permission ends startup (exit 3), and so does a configuration error
// (exit 2).
func (o *runOptions) waitForStore(ctx context.Context, st store.Store, preflights []func(context.Context) error) error {
	what := o.be.what
	if o.rest != nil {
		what += " at " + o.rest.Host
	}
	o.startup.Wait("checking " + what)
	o.logger.Info("checking "+what, "lease", st.String())
	delay := startupRetryMin
	for attempt := 1; ; attempt++ {
		err := o.checkOnce(ctx, st, preflights)
		switch {
		case err == nil:
			o.startup.Done()
			if attempt > 1 {
				o.logger.Info(what+" answers: starting the election", "attempts", attempt)
			}
			return nil
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, store.ErrPermission), errors.Is(err, rbac.ErrMissing), hasExitCode(err):
			return err
		}
		reason := fmt.Sprintf("waiting for %s: %v", what, err)
		level := slog.LevelWarn
		switch {
		case errors.Is(err, store.ErrMalformed):
			reason = fmt.Sprintf("the lease record is malformed; fix or delete it (%s): %v", st, err)
			level = slog.LevelError
		case attempt >= startupLoudAfter:
			level = slog.LevelError
		}
		o.startup.Wait(reason)
		o.logger.Log(ctx, level, "waiting for "+what, "err", err, "attempt", attempt, "retry_in", delay)
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		delay = min(2*delay, startupRetryMax)
	}
}

// checkOnce makes one attempt at every startup check, each with its own
// bound.
func (o *runOptions) checkOnce(ctx context.Context, st store.Store, preflights []func(context.Context) error) error {
	step := func(f func(ctx context.Context) error) error {
		sctx, cancel := context.WithTimeout(ctx, startupStepTimeout)
		defer cancel()
		err := f(sctx)
		if err != nil && sctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("no answer within %v: %w", startupStepTimeout, err)
		}
		return err
	}
	if err := step(func(ctx context.Context) error {
		_, err := st.Get(ctx)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}); err != nil {
		return err
	}
	if o.be.kubernetes {
		kc, err := kubeclient.New(o.rest)
		if err != nil {
			return usage(fmt.Errorf("kubernetes client: %w", err))
		}
		ro := rbac.Options{Lease: o.lease, Namespace: o.namespace}
		for _, m := range runModes() {
			if m.on(o) && m.rbac != nil {
				m.rbac(&ro)
			}
		}
		var optional []string
		err = step(func(ctx context.Context) error {
			var err error
			optional, err = rbac.Check(ctx, kc.SelfSubjectAccessReviews(), ro)
			return err
		})
		for _, p := range optional {
			if o.warned[p] {
				continue
			}
			if o.warned == nil {
				o.warned = map[string]bool{}
			}
			o.warned[p] = true
			o.logger.Warn("an optional permission is missing: the sidecar works without it; add it to the Role", "refused", p)
		}
		switch {
		case errors.Is(err, rbac.ErrCannotCheck):
			o.logger.Warn("cannot check RBAC permissions up front; the first refused request will tell", "err", err)
		case err != nil:
			return err
		}
	}
	for _, check := range preflights {
		if err := step(check); err != nil {
			return err
		}
	}
	return nil
}

// hasExitCode reports whether err already says how the command ends (a
// usage error, a refused permission): retrying cannot cure it.
func hasExitCode(err error) bool {
	var ex *exitError
	return errors.As(err, &ex)
}
