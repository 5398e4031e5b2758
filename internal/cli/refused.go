package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/incumbent-io/incumbent/internal/podevents"
	"github.com/incumbent-io/incumbent/internal/rbac"
	"github.com/incumbent-io/incumbent/store"
)

// What run does when the store refuses a permission it needs
// (--on-refused).
const (
	// onRefusedWait keeps the sidecar up: it says which permission is
	// refused (log, status API, an Event on its pod) and retries with
	// backoff, so that a Role applied or fixed later is picked up without a
	// restart.
	onRefusedWait = "wait"
	// onRefusedExit ends run at once with exit code 3 (the behaviour before
	// --on-refused existed), for scripts and CI.
	onRefusedExit = "exit"
)

// onRefusedValue is the value of --on-refused: setting it to anything but
// wait or exit fails, so that a bad value on the command line or in
// INCUMBENT_ON_REFUSED is a usage error naming where it came from.
type onRefusedValue struct{ p *string }

func (v onRefusedValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v onRefusedValue) Set(s string) error {
	if s != onRefusedWait && s != onRefusedExit {
		return fmt.Errorf("want %s or %s", onRefusedWait, onRefusedExit)
	}
	*v.p = s
	return nil
}

func (v onRefusedValue) Type() string { return "wait|exit" }

// checkOnRefused validates --on-refused, for options not set by the flag.
func (o *runOptions) checkOnRefused() error {
	if err := (onRefusedValue{p: new(string)}).Set(o.onRefused); err != nil {
		return usagef("invalid --on-refused %q: %v", o.onRefused, err)
	}
	return nil
}

// isRefused reports whether err says that a permission is refused: a
// request the store refused, a permission the RBAC check found missing, or
// a mode's check that ended in exit code 3.
func isRefused(err error) bool {
	var ex *exitError
	return errors.Is(err, store.ErrPermission) || isMissingPermission(err) ||
		(errors.As(err, &ex) && ex.code == ExitPermission)
}

// refusals reports refused permissions while run waits for them: each
// distinct refusal becomes a Warning Event on the sidecar's pod (when the
// pod is known). Refusals are kept by what was refused (the startup
// checks; a kind of request), so that a refusal ends only when that very
// thing succeeds. A nil *refusals reports nothing.
type refusals struct {
	log    *slog.Logger
	events *podevents.Recorder // nil: the pod is not known, or not on Kubernetes
	fix    string              // how to fix a refused request, for the Event: the rbac command

	mu      sync.Mutex
	pending map[string]string // what was refused → the refusal last reported
}

// startupKey keeps the refusal of the startup checks; the requests of the
// election are kept by their verb.
const startupKey = "startup"

// refused reports err, a refusal of what key names, and returns whether it
// is a new one (not the one last reported for key).
func (r *refusals) refused(key string, err error) bool {
	if r == nil {
		return true
	}
	msg := err.Error()
	r.mu.Lock()
	isNew := r.pending[key] != msg
	if r.pending == nil {
		r.pending = map[string]string{}
	}
	r.pending[key] = msg
	r.mu.Unlock()
	if isNew && r.events != nil {
		// A rejected token is no Role's fault: no Role to print.
		if r.fix != "" && !strings.Contains(msg, "incumbent rbac") && !errors.Is(err, store.ErrCredentials) {
			msg += "; print the Role this sidecar needs with: " + r.fix
		}
		r.events.Refused(msg)
	}
	return isNew
}

// granted records that what key names succeeds, and returns whether that
// ended the last pending refusal.
func (r *refusals) granted(key string) bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.pending[key]; !ok {
		return false
	}
	delete(r.pending, key)
	return len(r.pending) == 0
}

// newRefusals returns the reporter of refused permissions of run. The Event
// is recorded on the pod named by --pod or POD_NAME, on Kubernetes only.
func (o *runOptions) newRefusals(env *modeEnv) *refusals {
	r := &refusals{log: env.log}
	if !o.be.kubernetes || !o.podKnown {
		return r
	}
	r.fix = rbac.Command(o.rbacOptions())
	kc, err := env.kube()
	if err != nil {
		env.log.Debug("refused permissions will not be recorded as pod events", "err", err)
		return r
	}
	leases := make([]string, len(env.leases))
	for i, c := range env.leases {
		leases[i] = o.qualified(c.name)
	}
	rec, err := podevents.New(kc.Events(o.namespace), kc.Pods(o.namespace), podevents.Options{
		Namespace: o.namespace, Pod: o.pod, UID: o.env.Getenv("POD_UID"), Lease: strings.Join(leases, ", "), Logger: env.log})
	if err != nil {
		env.log.Debug("refused permissions will not be recorded as pod events", "err", err)
		return r
	}
	r.events = rec
	return r
}

// wait blocks until the events in flight are written, or ctx ends.
func (r *refusals) wait(ctx context.Context) {
	if r != nil && r.events != nil {
		r.events.Wait(ctx)
	}
}

// retryRefused is the store the elector uses under --on-refused=wait. A
// request the store refuses is reported (logged at error level and
// recorded as an Event, once per distinct refusal) and handed to the
// elector as a failure that retrying may cure: the elector then retries it
// as it retries an unreachable store (a leader steps down at its renew
// deadline), instead of ending its Run, which would end the sidecar.
// Watch is passed through: a refused watch is optional, and the elector
// already falls back to polling.
type retryRefused struct {
	store.Store
	r *refusals
	// lease names the store's lease when the sidecar holds several: its
	// refusals are kept apart from the other leases'.
	lease string
}

// refusedError is a refused request, as the elector sees it under
// --on-refused=wait. It deliberately does not unwrap to its cause: the
// elector must not see store.ErrPermission, which ends its Run. Its message
// holds the cause's, which names the verb and the resource.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return "retrying a refused request: " + e.err.Error() }

// check reports the outcome of one request of kind op and returns the
// error the elector gets. answers are the errors that are answers to an
// allowed request (not found, a conflict).
func (s *retryRefused) check(op string, err error, answers ...error) error {
	key := op
	if s.lease != "" {
		key = op + " " + s.lease
	}
	switch {
	case errors.Is(err, store.ErrPermission):
		if s.r.refused(key, err) {
			msg := "a permission is refused: the election retries until it is granted (--on-refused=wait)"
			if errors.Is(err, store.ErrCredentials) {
				msg = "the API server rejects this sidecar's credentials: the election retries until they are accepted (--on-refused=wait)"
			}
			s.r.log.Error(msg, "err", err)
		}
		return &refusedError{err: err}
	case err == nil || slices.ContainsFunc(answers, func(a error) bool { return errors.Is(err, a) }):
		if s.r.granted(key) {
			if s.lease != "" {
				s.r.log.Info("permissions granted: the election goes on", "verb", op, "lease", s.lease)
			} else {
				s.r.log.Info("permissions granted: the election goes on", "verb", op)
			}
		}
	}
	return err
}

// Get implements store.Store.
func (s *retryRefused) Get(ctx context.Context) (store.Record, error) {
	rec, err := s.Store.Get(ctx)
	return rec, s.check("get", err, store.ErrNotFound)
}

// Create implements store.Store.
func (s *retryRefused) Create(ctx context.Context, rec store.Record) (store.Record, error) {
	rec, err := s.Store.Create(ctx, rec)
	return rec, s.check("create", err, store.ErrConflict)
}

// Update implements store.Store.
func (s *retryRefused) Update(ctx context.Context, rec store.Record) (store.Record, error) {
	rec, err := s.Store.Update(ctx, rec)
	return rec, s.check("update", err, store.ErrConflict, store.ErrNotFound)
}

// Follow implements store.Follower for a store that does (a Client's shared
// watch): the elections of a sidecar of several leases follow it without a
// request or a goroutine each. A following that ends in a refusal is read
// past: the read reports the refusal as above.
func (s *retryRefused) Follow(ctx context.Context, fn func(store.Event), ended func(error)) (bool, error) {
	f, ok := s.Store.(store.Follower)
	if !ok {
		return false, nil
	}
	return f.Follow(ctx, fn, ended)
}
