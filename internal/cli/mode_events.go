package cli

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/internal/podevents"
	"github.com/incumbent-io/incumbent/internal/rbac"
	"github.com/incumbent-io/incumbent/internal/sidecar"
)

// eventsDrain bounds how long the sidecar waits, at exit, for the events
// it is still sending.
const eventsDrain = 5 * time.Second

// The events mode: a Kubernetes Event on the pod each time leadership is
// gained or lost, for kubectl describe.
var eventsMode = mode{
	name: "events",
	flags: func(fs *pflag.FlagSet, o *runOptions) {
		fs.BoolVar(&o.events, "events", false, "record Kubernetes Events on this pod when leadership is gained or lost (Kubernetes only)")
	},
	on:    func(o *runOptions) bool { return o.events },
	check: func(o *runOptions) error { return o.kubeOnly("--events") },
	rbac:  func(r *rbac.Options) { r.Events = true },
	build: func(o *runOptions, env *modeEnv) (part, error) {
		kc, err := env.kube()
		if err != nil {
			return part{}, failure(err)
		}
		// One recorder per lease: each event names its lease.
		recs := make([]*podevents.Recorder, len(env.leases))
		duties := make([]sidecar.Duty, len(env.leases))
		for i, c := range env.leases {
			rec, err := podevents.New(kc.Events(o.namespace), kc.Pods(o.namespace), podevents.Options{
				Namespace: o.namespace, Pod: o.pod, UID: o.podUID, Lease: o.qualified(c.name), Logger: c.log})
			if err != nil {
				return part{}, usage(err)
			}
			recs[i], duties[i] = rec, rec
		}
		return part{duties: duties, background: func(ctx context.Context) {
			var wg sync.WaitGroup
			for i, c := range env.leases {
				wg.Go(func() { healthEvents(ctx, c.elector, recs[i]) })
			}
			wg.Wait()
			wctx, cancel := context.WithTimeout(context.Background(), eventsDrain)
			defer cancel()
			for _, rec := range recs {
				rec.Wait(wctx)
			}
		}}, nil
	},
}

// healthEvents records an event each time the workload's health check
// pauses or resumes candidacy, until ctx ends.
func healthEvents(ctx context.Context, e *election.Elector, rec *podevents.Recorder) {
	statuses, cancel := e.Subscribe()
	defer cancel()
	paused := false
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-statuses:
			// Paused by a failing check, not by one that has not passed yet
			// (every start begins so).
			unhealthy := s.State == election.StateHeldBack && strings.HasPrefix(s.Reason, "unhealthy: its health check fails")
			if unhealthy != paused {
				paused = unhealthy
				rec.Health(!unhealthy, strings.TrimPrefix(s.Reason, "unhealthy: "))
			}
		}
	}
}
