package cli

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/internal/podlabel"
	"github.com/incumbent-io/incumbent/internal/rbac"
)

// The pod-label mode: the sidecar labels its own pod incumbent.io/role=leader
// or follower (and incumbent.io/lease=NAME), so that a Service selecting the
// leader label routes to the leader while every replica stays Ready. The
// pod is labelled only once the candidate knows where it stands, so that a
// pod that wins at once is never labelled follower first.
var podLabelMode = mode{
	name: "pod labels",
	flags: func(fs *pflag.FlagSet, o *runOptions) {
		fs.BoolVar(&o.labelPod, "label-pod", false, "label this pod incumbent.io/role=leader|follower and incumbent.io/lease=NAME (Kubernetes only)")
	},
	on:       func(o *runOptions) bool { return o.labelPod },
	oneLease: "--label-pod labels the pod leader or follower of one lease (incumbent.io/lease holds one name)",
	check:    func(o *runOptions) error { return o.kubeOnly("--label-pod") },
	rbac:     func(r *rbac.Options) { r.LabelPod = true },
	build: func(o *runOptions, env *modeEnv) (part, error) {
		kc, err := env.kube()
		if err != nil {
			return part{}, failure(err)
		}
		l, err := podlabel.New(kc.Pods(o.namespace), o.pod, o.lease, env.log)
		if err != nil {
			return part{}, usage(err)
		}
		return part{
			duty: l,
			background: func(ctx context.Context) {
				var wg sync.WaitGroup
				wg.Go(func() { followWhenOthersLead(ctx, env.elector, l) })
				l.Run(ctx)
				wg.Wait()
			},
			preflight: func(ctx context.Context) error {
				err := l.Check(ctx)
				switch {
				case apierrors.IsNotFound(err):
					return usagef("--label-pod: %v: set POD_NAME from the downward API (or --pod) to this pod's name", err)
				case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
					return permissionDenied(fmt.Errorf("--label-pod: %w", err))
				}
				return err
			},
		}, nil
	},
}

// followWhenOthersLead labels the pod follower the first time the candidate
// is known not to be about to lead: another one holds the lease, this one
// holds back, or its acquisition failed (it may keep failing: the pod must
// not stay unlabelled meanwhile).
func followWhenOthersLead(ctx context.Context, e *election.Elector, l *podlabel.Labeler) {
	statuses, cancel := e.Subscribe()
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-statuses:
			failing := s.State == election.StateCampaigning && strings.HasPrefix(s.Reason, "retrying after a failed acquisition")
			if s.State == election.StateFollowing || s.State == election.StateHeldBack || failing {
				l.Follow()
				return
			}
			if s.IsLeader {
				return // Lead labels it
			}
		}
	}
}
