// Package podevents records Kubernetes Events on the sidecar's own pod when
// it gains and loses leadership, so that `kubectl describe pod` and event
// exporters show the history of an election.
//
//	Normal  LeaderElected      <identity> became leader of lease <ns>/<name>, term <token>
//	Normal  LeaderSteppedDown  ... stepped down: leader resigned / transferred / elector stopped
//	Warning LeaderSteppedDown  ... stepped down: lease lost / not renewed within the renew deadline
//	Warning PermissionDenied   the API server refuses a permission the sidecar needs (which, and the Role to fix)
//
// Events are written in the background with a bounded timeout; a failure is
// logged and never delays a term. A refused create of the events themselves
// is logged once, at warn level; later ones only at debug level.
package podevents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/incumbent-io/incumbent/election"
)

// Event reasons.
const (
	ReasonElected     = "LeaderElected"
	ReasonSteppedDown = "LeaderSteppedDown"
	// ReasonUnhealthy and ReasonHealthy mark where the workload's health
	// check (run --health-url/--health-exec) stopped and resumed candidacy.
	ReasonUnhealthy = "CandidacyPaused"
	ReasonHealthy   = "CandidacyResumed"
	// ReasonRefused marks a permission the sidecar needs that the API
	// server refuses (run --on-refused=wait waits for it).
	ReasonRefused = "PermissionDenied"
)

const callTimeout = 5 * time.Second

// maxMessage bounds an event's message: the API server refuses longer
// notes (events.k8s.io), and kubectl describe shows them in one line.
const maxMessage = 1024

// Options locate the pod.
type Options struct {
	// Namespace and Pod name the pod the events are about. Required.
	Namespace, Pod string
	// UID is the pod's UID (downward API metadata.uid, e.g. POD_UID), which
	// `kubectl describe` matches events on. When empty it is read from the
	// pod once, if the permission allows.
	UID string
	// Lease names the election in messages, e.g. "default/db".
	Lease string
	// Logger receives failures. Default slog.Default().
	Logger *slog.Logger
}

// EventCreator creates events, as client-go's typed EventInterface and
// kubeclient.Events do.
type EventCreator interface {
	Create(ctx context.Context, ev *corev1.Event, opts metav1.CreateOptions) (*corev1.Event, error)
}

// PodGetter reads pods, as client-go's typed PodInterface and kubeclient.Pods
// do.
type PodGetter interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Pod, error)
}

// Recorder is a sidecar duty that records an Event at the start and at the
// end of each term.
type Recorder struct {
	events EventCreator
	pods   PodGetter
	opts   Options
	log    *slog.Logger
	wg     sync.WaitGroup

	mu  sync.Mutex
	uid types.UID

	emu       sync.Mutex
	refused   map[string]bool // Refused messages recorded
	forbidden bool            // a create of an event was refused
}

// maxRefused bounds how many distinct Refused messages are remembered (and
// so recorded): a Role edited many times over does not make an unbounded
// set.
const maxRefused = 32

// New returns a Recorder writing through the given clients of the pod's
// namespace.
func New(events EventCreator, pods PodGetter, o Options) (*Recorder, error) {
	if o.Namespace == "" || o.Pod == "" {
		return nil, errors.New("pod events: the pod's namespace and name are required (set POD_NAME from the downward API, or --pod)")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Recorder{events: events, pods: pods, opts: o, log: o.Logger, uid: types.UID(o.UID)}, nil
}

// Lead implements the sidecar duty. It returns as soon as the term ends.
func (r *Recorder) Lead(term *election.Term) {
	r.record(corev1.EventTypeNormal, ReasonElected,
		fmt.Sprintf("%s became leader of lease %s, term %d", term.Identity(), r.opts.Lease, term.Token()))
	<-term.Done()
	cause := term.Err()
	typ := corev1.EventTypeNormal
	if errors.Is(cause, election.ErrLeaseLost) || errors.Is(cause, election.ErrRenewDeadline) {
		typ = corev1.EventTypeWarning
	}
	r.record(typ, ReasonSteppedDown,
		fmt.Sprintf("%s stepped down as leader of lease %s, term %d: %v", term.Identity(), r.opts.Lease, term.Token(), cause))
}

// Health records that the workload's health check paused candidacy (with
// why), or resumed it.
func (r *Recorder) Health(healthy bool, reason string) {
	if healthy {
		r.record(corev1.EventTypeNormal, ReasonHealthy,
			fmt.Sprintf("the workload is healthy again: campaigning for lease %s", r.opts.Lease))
		return
	}
	r.record(corev1.EventTypeWarning, ReasonUnhealthy,
		fmt.Sprintf("not campaigning for lease %s: %s", r.opts.Lease, reason))
}

// Refused records, as a Warning event, that the API server refuses a
// permission the sidecar needs; msg names it and the Role to fix. Each
// distinct message is recorded once (up to a bound), however often the
// sidecar retries.
func (r *Recorder) Refused(msg string) {
	r.emu.Lock()
	if r.refused[msg] || len(r.refused) >= maxRefused {
		r.emu.Unlock()
		return
	}
	if r.refused == nil {
		r.refused = map[string]bool{}
	}
	r.refused[msg] = true
	r.emu.Unlock()
	if len(msg) > maxMessage {
		msg = msg[:maxMessage-len("...")] + "..."
	}
	r.record(corev1.EventTypeWarning, ReasonRefused, msg)
}

// Wait blocks until the events in flight are written or ctx ends.
func (r *Recorder) Wait(ctx context.Context) {
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (r *Recorder) record(typ, reason, msg string) {
	r.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		now := metav1.Now()
		ev := &corev1.Event{
			ObjectMeta: metav1.ObjectMeta{GenerateName: r.opts.Pod + ".", Namespace: r.opts.Namespace},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: r.opts.Namespace,
				Name: r.opts.Pod, UID: r.podUID(ctx)},
			Reason: reason, Message: msg, Type: typ,
			Source:         corev1.EventSource{Component: "incumbent"},
			FirstTimestamp: now, LastTimestamp: now, Count: 1,
		}
		if _, err := r.events.Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			level := slog.LevelWarn
			if apierrors.IsForbidden(err) {
				err = fmt.Errorf("the API server refused verb \"create\" on resource \"events\" (core group): %w", err)
				r.emu.Lock()
				if r.forbidden {
					level = slog.LevelDebug // said once already
				}
				r.forbidden = true
				r.emu.Unlock()
			}
			r.log.Log(ctx, level, "could not record an event on the pod", "reason", reason, "err", err)
		}
	})
}

// podUID returns the pod's UID, reading it once when it was not given.
func (r *Recorder) podUID(ctx context.Context) types.UID {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.uid == "" && r.pods != nil {
		p, err := r.pods.Get(ctx, r.opts.Pod, metav1.GetOptions{})
		if err != nil {
			r.log.Debug("cannot read the pod's UID; events will not show in kubectl describe", "err", err)
			r.pods = nil // do not ask again
			return ""
		}
		r.uid = p.UID
	}
	return r.uid
}
