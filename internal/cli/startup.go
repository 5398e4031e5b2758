package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/incumbent-io/incumbent/internal/kubeclient"
	"github.com/incumbent-io/incumbent/internal/rbac"
	"github.com/incumbent-io/incumbent/store"
)

// Startup checks: each attempt's bound, and the backoff between attempts
// while the store does not answer.
const (
	startupAttemptTimeout = 5 * time.Second
	startupRetryMin       = 500 * time.Millisecond
	startupRetryMax       = 30 * time.Second
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
		case errors.Is(err, store.ErrPermission), errors.Is(err, rbac.ErrMissing), isUsage(err):
			return err
		}
		o.startup.Wait(fmt.Sprintf("waiting for %s: %v", what, err))
		o.logger.Warn("waiting for "+what, "err", err, "attempt", attempt, "retry_in", delay)
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

// checkOnce makes one attempt at every startup check.
func (o *runOptions) checkOnce(ctx context.Context, st store.Store, preflights []func(context.Context) error) error {
	actx, cancel := context.WithTimeout(ctx, startupAttemptTimeout)
	defer cancel()
	if _, err := st.Get(actx); err != nil && !errors.Is(err, store.ErrNotFound) {
		if actx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("no answer within %v: %w", startupAttemptTimeout, err)
		}
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
		optional, err := rbac.Check(actx, kc.SelfSubjectAccessReviews(), ro)
		for _, p := range optional {
			o.logger.Warn("an optional permission is missing: the sidecar works without it, but slower (it polls the Lease instead of watching it); add it to the Role", "refused", p)
		}
		switch {
		case errors.Is(err, rbac.ErrCannotCheck):
			o.logger.Warn("cannot check RBAC permissions up front; the first refused request will tell", "err", err)
		case err != nil:
			return err
		}
	}
	for _, check := range preflights {
		if err := check(actx); err != nil {
			return err
		}
	}
	return nil
}

// isUsage reports whether err marks a problem of the invocation.
func isUsage(err error) bool {
	var ex *exitError
	return errors.As(err, &ex) && ex.code == ExitUsage
}
