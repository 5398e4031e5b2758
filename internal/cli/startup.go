package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/client-go/rest"

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

	// The access reviews of a sidecar with several leases: their client's
	// rate limit, and the time the check's bound grows by per lease.
	reviewQPS          = 50
	reviewBurst        = 100
	reviewTimePerLease = 100 * time.Millisecond
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
func (o *runOptions) waitForStore(ctx context.Context, sts []store.Store, preflights []func(context.Context) error) error {
	what := o.be.what
	if o.rest != nil {
		what += " at " + o.rest.Host
	}
	o.startup.Wait("checking " + what)
	if len(sts) == 1 {
		o.logger.Info("checking "+what, "lease", sts[0].String())
	} else {
		names := make([]string, len(sts))
		for i, st := range sts {
			names[i] = st.String()
		}
		o.logger.Info("checking "+what, "leases", names)
	}
	delay := startupRetryMin
	for attempt := 1; ; attempt++ {
		st, err := o.checkOnce(ctx, sts, preflights)
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
		case errors.Is(err, store.ErrMalformed) && st != nil:
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
// bound. A failed read of a lease also returns its store.
func (o *runOptions) checkOnce(ctx context.Context, sts []store.Store, preflights []func(context.Context) error) (store.Store, error) {
	stepFor := func(bound time.Duration, f func(ctx context.Context) error) error {
		sctx, cancel := context.WithTimeout(ctx, bound)
		defer cancel()
		err := f(sctx)
		if err != nil && sctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("no answer within %v: %w", bound, err)
		}
		return err
	}
	step := func(f func(ctx context.Context) error) error { return stepFor(startupStepTimeout, f) }
	for _, st := range sts {
		if err := step(func(ctx context.Context) error {
			_, err := st.Get(ctx)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			return err
		}); err != nil {
			return st, err
		}
	}
	if o.be.kubernetes {
		// A review per verb and Lease: with several leases, room for all
		// of them (client-go's default of 5 requests a second would take
		// longer than the bound with a few dozen).
		rc, bound := o.rest, startupStepTimeout
		if len(sts) > 1 {
			rc = rest.CopyConfig(o.rest)
			rc.QPS, rc.Burst = reviewQPS, reviewBurst
			bound += time.Duration(len(sts)) * reviewTimePerLease
		}
		kc, err := kubeclient.New(rc)
		if err != nil {
			return nil, usage(fmt.Errorf("kubernetes client: %w", err))
		}
		var optional []string
		err = stepFor(bound, func(ctx context.Context) error {
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
			return nil, err
		}
	}
	for _, check := range preflights {
		if err := step(check); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// rbacOptions returns the permissions the flags need (Kubernetes only).
func (o *runOptions) rbacOptions() rbac.Options {
	ro := rbac.Options{Lease: o.lease, Namespace: o.namespace}
	if names := o.leaseNames(); len(names) > 1 {
		ro.Leases = names
	}
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
