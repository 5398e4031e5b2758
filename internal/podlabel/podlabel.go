// Package podlabel labels the sidecar's own pod with its role in an
// election, so that a Service can select the leader while every replica
// stays Ready:
//
//	incumbent.io/lease: <lease name>
//	incumbent.io/role:  leader | follower
//
// A new leader also demotes every other pod of the same lease still
// labelled leader (a leader that died without relabelling itself). Each
// demotion is a patch conditioned on the resourceVersion the leader listed,
// and is only sent while the term lasts, so a leader whose term is ending
// cannot demote its successor.
//
// Labels are applied by one goroutine (Run) that retries until it succeeds:
// a term never waits for the API server, so an unreachable API server cannot
// delay a step-down. Nothing is labelled before the candidate's first
// decision (Follow or Lead), so that a pod that wins at once is labelled
// leader without being labelled follower first.
package podlabel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/incumbent-io/incumbent/election"
)

// Label keys and role values.
const (
	LabelRole    = "incumbent.io/role"
	LabelLease   = "incumbent.io/lease"
	RoleLeader   = "leader"
	RoleFollower = "follower"
)

// Timings of the apply loop.
const (
	callTimeout  = 5 * time.Second
	retryMin     = 200 * time.Millisecond
	retryMax     = 5 * time.Second
	finalTimeout = 3 * time.Second // the last "follower" patch at shutdown
)

// Pods is the part of a pods client the Labeler uses, as client-go's
// typed PodInterface and kubeclient.Pods provide it.
type Pods interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Pod, error)
	List(ctx context.Context, opts metav1.ListOptions) (*corev1.PodList, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (*corev1.Pod, error)
}

// Labeler keeps one pod's labels in step with its candidate's role.
type Labeler struct {
	pods  Pods
	pod   string
	lease string
	log   *slog.Logger

	mu      sync.Mutex
	role    string
	term    context.Context // the term a leader role belongs to
	gen     int             // bumped by every change of the desired state
	applied int             // gen last applied successfully
	kick    chan struct{}
}

// New returns a Labeler for the pod named pod, for the election lease. The
// lease name must be a valid label value (at most 63 characters).
func New(pods Pods, pod, lease string, log *slog.Logger) (*Labeler, error) {
	if pod == "" {
		return nil, errors.New("pod labels: the pod name is empty (set POD_NAME from the downward API, or --pod)")
	}
	if msgs := validation.IsValidLabelValue(lease); len(msgs) > 0 {
		return nil, fmt.Errorf("pod labels: lease name %q cannot be a label value: %s", lease, msgs[0])
	}
	if log == nil {
		log = slog.Default()
	}
	return &Labeler{pods: pods, pod: pod, lease: lease, log: log.With("pod", pod),
		kick: make(chan struct{}, 1)}, nil
}

// Check reads the pod once, so that a wrong name or a missing permission is
// reported at startup.
func (l *Labeler) Check(ctx context.Context) error {
	if _, err := l.pods.Get(ctx, l.pod, metav1.GetOptions{}); err != nil {
		return l.wrap("get", err)
	}
	return nil
}

// Follow labels the pod follower, unless a role was already decided: call it
// once the candidate knows that another one leads (or that it must wait).
func (l *Labeler) Follow() {
	l.mu.Lock()
	decided := l.role != ""
	if !decided {
		l.role, l.term = RoleFollower, nil
		l.gen++
	}
	l.mu.Unlock()
	if !decided {
		l.poke()
	}
}

// Lead implements the sidecar duty: the pod is labelled leader for the
// duration of term, follower after it. It returns as soon as the term ends.
func (l *Labeler) Lead(term *election.Term) {
	l.want(RoleLeader, term.Context())
	<-term.Done()
	l.want(RoleFollower, nil)
}

func (l *Labeler) want(role string, term context.Context) {
	l.mu.Lock()
	l.role, l.term = role, term
	l.gen++
	l.mu.Unlock()
	l.poke()
}

// poke wakes Run to apply the desired labels.
func (l *Labeler) poke() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Run applies the desired labels until ctx ends, retrying failures with a
// growing delay. When ctx ends it makes one last bounded attempt to label
// the pod follower, then returns.
func (l *Labeler) Run(ctx context.Context) {
	delay := retryMin
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			l.want(RoleFollower, nil)
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalTimeout)
			defer cancel()
			if err := l.apply(fctx); err != nil {
				l.log.Warn("could not label the pod follower on shutdown", "err", err)
			}
			return
		case <-l.kick:
		case <-retry.C:
		}
		if err := l.apply(ctx); err != nil {
			if ctx.Err() != nil {
				continue
			}
			l.log.Warn("cannot update pod labels; retrying", "err", err, "in", delay)
			retry.Reset(delay)
			delay = min(2*delay, retryMax)
			continue
		}
		delay = retryMin
	}
}

// apply brings the pod's labels to the desired state, and as a leader
// demotes the other pods of the lease.
func (l *Labeler) apply(ctx context.Context) error {
	l.mu.Lock()
	role, term, gen := l.role, l.term, l.gen
	done := l.applied == gen
	l.mu.Unlock()
	if done {
		return nil
	}
	if err := l.patch(ctx, l.pod, "", role); err != nil {
		return err
	}
	l.log.Info("pod labelled", LabelRole, role, LabelLease, l.lease)
	if role == RoleLeader {
		if err := l.demoteOthers(ctx, term); err != nil {
			return err
		}
	}
	l.mu.Lock()
	if l.gen == gen {
		l.applied = gen
	}
	l.mu.Unlock()
	return nil
}

// demoteOthers relabels follower every other pod of the lease labelled
// leader, while term lasts.
func (l *Labeler) demoteOthers(ctx context.Context, term context.Context) error {
	sel := labels.Set{LabelLease: l.lease, LabelRole: RoleLeader}.String()
	for attempt := 0; ; attempt++ {
		if term == nil || term.Err() != nil {
			return nil
		}
		lctx, cancel := context.WithTimeout(ctx, callTimeout)
		list, err := l.pods.List(lctx, metav1.ListOptions{LabelSelector: sel})
		cancel()
		if err != nil {
			return l.wrap("list", err)
		}
		conflict := false
		for _, p := range list.Items {
			if p.Name == l.pod {
				continue
			}
			if term.Err() != nil {
				return nil // no longer leading: the labels are someone else's business
			}
			err := l.patch(ctx, p.Name, p.ResourceVersion, RoleFollower)
			switch {
			case err == nil:
				l.log.Info("demoted a pod still labelled leader", "other_pod", p.Name)
			case apierrors.IsConflict(err), apierrors.IsNotFound(err):
				conflict = true // changed or gone since listed: look again
			default:
				return err
			}
		}
		if !conflict {
			return nil
		}
		if attempt == 3 {
			return fmt.Errorf("demote stale leaders of lease %q: pods keep changing", l.lease)
		}
	}
}

// patch sets the role and lease labels of pod name; a non-empty
// resourceVersion makes the patch conditional on it.
func (l *Labeler) patch(ctx context.Context, name, resourceVersion, role string) error {
	meta := map[string]any{"labels": map[string]string{LabelRole: role, LabelLease: l.lease}}
	if resourceVersion != "" {
		meta["resourceVersion"] = resourceVersion
	}
	body, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		return fmt.Errorf("encode label patch: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := l.pods.Patch(pctx, name, types.MergePatchType, body, metav1.PatchOptions{}); err != nil {
		return l.wrapPod("patch", name, err)
	}
	return nil
}

func (l *Labeler) wrap(verb string, err error) error { return l.wrapPod(verb, l.pod, err) }

// wrapPod names the verb and resource; a refusal says which permission is
// missing. The API error stays reachable through errors.As.
func (l *Labeler) wrapPod(verb, name string, err error) error {
	target := fmt.Sprintf("pod %q", name)
	if verb == "list" {
		target = "pods"
	}
	if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
		return fmt.Errorf("%s %s: the API server refused verb %q on resource \"pods\" (core group): %w", verb, target, verb, err)
	}
	return fmt.Errorf("%s %s: %w", verb, target, err)
}
