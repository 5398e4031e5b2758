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
// permission is waited for the same way under --on-refused=wait (logged at
// error level, naming the verb and the resource, and recorded as an Event
// on the pod), so that a Role fixed later is picked up without a restart;
// under --on-refused=exit it ends startup (exit 3). A configuration error
// ends startup (exit 2).
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
		refused := false
		switch {
		case err == nil:
			o.startup.Done()
			switch {
			case o.refusals.granted(startupKey):
				o.logger.Info("permissions granted: starting the election", "attempts", attempt)
			case attempt > 1:
				o.logger.Info(what+" answers: starting the election", "attempts", attempt)
			}
			return nil
		case ctx.Err() != nil:
			return nil
		case isRefused(err):
			if o.onRefused == onRefusedExit {
				return err
			}
			refused = true
		case hasExitCode(err):
			return err
		}
		reason := fmt.Sprintf("waiting for %s: %v", what, err)
		msg := "waiting for " + what
		level := slog.LevelWarn
		switch {
		case refused:
			o.refusals.refused(startupKey, err)
			reason = "a permission is refused; retrying until it is granted: " + err.Error()
			msg = "a permission is refused: waiting for it to be granted (--on-refused=wait)"
			if errors.Is(err, store.ErrCredentials) {
				reason = "the API server rejects the credentials; retrying until they are accepted: " + err.Error()
				msg = "the API server rejects this sidecar's credentials: waiting for them to be accepted (--on-refused=wait)"
			}
			level = slog.LevelError
		case errors.Is(err, store.ErrMalformed):
			reason = fmt.Sprintf("the lease record is malformed; fix or delete it (%s): %v", st, err)
			level = slog.LevelError
		case attempt >= startupLoudAfter:
			level = slog.LevelError
		}
		o.startup.Wait(reason)
		o.logger.Log(ctx, level, msg, "err", err, "attempt", attempt, "retry_in", delay)
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
		var optional []string
		err = step(func(ctx context.Context) error {
			var err error
			optional, err = rbac.Check(ctx, kc.SelfSubjectAccessReviews(), o.rbacOptions())
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

// rbacOptions returns the permissions the flags need (Kubernetes only).
func (o *runOptions) rbacOptions() rbac.Options {
	ro := rbac.Options{Lease: o.lease, Namespace: o.namespace}
	for _, m := range runModes() {
		if m.on(o) && m.rbac != nil {
			m.rbac(&ro)
		}
	}
	return ro
}

// hasExitCode reports whether err already says how the command ends (a
// usage error, a refused permission): retrying cannot cure it.
func hasExitCode(err error) bool {
	var ex *exitError
	return errors.As(err, &ex)
}
