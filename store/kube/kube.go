// Package kube keeps an election's record in a Kubernetes
// coordination.k8s.io/v1 Lease, field for field as client-go's LeaseLock
// writes it, so that incumbent candidates and client-go leaderelection
// candidates sharing one Lease exclude each other. Facts that client-go has
// no field for live in annotations under incumbent.io/.
//
// Every write is an Update carrying the resourceVersion that was read, so
// the API server refuses it with 409 Conflict when somebody wrote in
// between. Labels, other annotations and spec fields this package does not
// own (preferredHolder, strategy) are preserved.
//
// A record's Revision is its resourceVersion as a number. Since Kubernetes
// 1.35 (KEP-5504) resource versions of one resource type are comparable
// integers that rise with every write; they are etcd's cluster-wide
// revisions, shared by every API server of the cluster, so a Lease deleted
// and created again gets a larger one. Earlier versions produce the same
// integers without promising it. A Lease whose resourceVersion is not a
// positive integer that fits in 63 bits is refused with a clear error.
package kube

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	"github.com/incumbent-io/incumbent/store"
)

// Annotations incumbent writes on the Lease beside client-go's fields.
const (
	AnnotationInstance         = "incumbent.io/instance"
	AnnotationHandoffTo        = "incumbent.io/handoff-to"
	AnnotationTransferTo       = "incumbent.io/transfer-to"
	AnnotationReleaseRequested = "incumbent.io/release-requested"
	// AnnotationTerm holds the holder's fencing token and the
	// leaseTransitions value of the term it belongs to, as "TOKEN/TRANSITIONS"
	// (for example "73512/4"). It is ignored once leaseTransitions has moved
	// on: a client-go candidate that takes the Lease over keeps annotations
	// it does not know.
	AnnotationTerm = "incumbent.io/term"
	// AnnotationHolderPodUID holds the UID of the holder's pod and the
	// leaseTransitions value of the term it belongs to, as
	// "UID/TRANSITIONS" (for example
	// "0b9e2a4c-6f1d-4e2b-9a3e-5c7d8e9f0a1b/4"). A Store given
	// Options.PodUID writes it with every write that names a holder (its
	// acquisition and its renewals) and removes it when it releases. It is
	// what the API server's fence (incumbent fence) compares a request's
	// pod UID with; like AnnotationTerm it is stale, and ignored, once
	// leaseTransitions has moved on.
	AnnotationHolderPodUID = "incumbent.io/holder-pod-uid"
)

// Default rate limits of the lease client: generous for one election, and
// separate from any other client of the process, so that a busy controller
// cannot starve renewals.
const (
	DefaultQPS   = 20
	DefaultBurst = 40
)

// Store is the Lease-backed store.Store of one election.
type Store struct {
	leases    LeaseClient
	namespace string
	name      string
	podUID    string      // Options.PodUID
	client    *Client     // nil for NewForClient
	holding   atomic.Bool // the last write of this Store named a holder

	mu     sync.Mutex
	recent [2]*coordinationv1.Lease // the last Leases read or written, newest last
}

// Options tune the client that New builds.
type Options struct {
	// QPS and Burst limit the lease client's requests. Zero means the
	// defaults above.
	QPS   float32
	Burst int
	// UserAgent identifies the client to the API server. Default
	// "incumbent".
	UserAgent string
	// PodUID is the UID of the candidate's own pod (downward API
	// metadata.uid, e.g. POD_UID). When set, every write of this Store
	// that names a holder records it in AnnotationHolderPodUID, and a write
	// that names none removes it, so that the API server's fence can tell
	// this pod from a pod re-created with the same name. A Store shared by
	// candidates of several pods, or used by an operator (release,
	// transfer), must leave it empty: it then leaves the annotation as it
	// finds it.
	PodUID string
}

// New returns a Store for the Lease namespace/name, talking to the API
// server described by cfg through a client of its own: its own rate limiter
// and its own connection, so that lease traffic is never queued behind the
// process's other requests. A process that campaigns in many elections
// makes their Stores with one Client instead (NewClient), to share one
// connection and one watch.
func New(cfg *rest.Config, namespace, name string, opts Options) (*Store, error) {
	if err := validateName(namespace, name); err != nil {
		return nil, err
	}
	c, err := NewClient(cfg, ClientOptions{QPS: opts.QPS, Burst: opts.Burst, UserAgent: opts.UserAgent, PodUID: opts.PodUID, Watch: WatchEach})
	if err != nil {
		return nil, err
	}
	return c.Store(namespace, name)
}

// NewForClient returns a Store that uses the given client, bound to the
// Lease's namespace, as it is: for example
// clientset.CoordinationV1().Leases(namespace).
func NewForClient(client LeaseClient, namespace, name string) (*Store, error) {
	if err := validateName(namespace, name); err != nil {
		return nil, err
	}
	if client == nil {
		return nil, errors.New("kube store: a Lease client is required")
	}
	return &Store{leases: client, namespace: namespace, name: name}, nil
}

func validateName(namespace, name string) error {
	if msgs := validation.IsDNS1123Label(namespace); len(msgs) > 0 {
		return fmt.Errorf("kube store: invalid namespace %q: %s", namespace, msgs[0])
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return fmt.Errorf("kube store: invalid lease name %q: %s", name, msgs[0])
	}
	return nil
}

// String names the Lease, e.g. "lease default/db".
func (s *Store) String() string { return "lease " + s.namespace + "/" + s.name }

// Namespace and Name locate the Lease.
func (s *Store) Namespace() string { return s.namespace }
func (s *Store) Name() string      { return s.name }

// Get implements store.Store.
func (s *Store) Get(ctx context.Context) (store.Record, error) {
	l, err := s.get(ctx)
	if err != nil {
		return store.Record{}, s.wrap("get", err)
	}
	s.remember(l)
	return s.record("get", l)
}

// get reads the Lease, in one of the Client's request slots: an urgent
// one while this Store holds the Lease (its last write named a holder: the
// leader's re-reads in its renewals and release).
func (s *Store) get(ctx context.Context) (*coordinationv1.Lease, error) {
	var l *coordinationv1.Lease
	err := s.do(ctx, s.holding.Load(), func() (err error) {
		l, err = s.leases.Get(ctx, s.name, metav1.GetOptions{})
		return err
	})
	return l, err
}

// do runs request in one of the Client's request slots (see
// ClientOptions.MaxInFlight); urgent ones (renewals, releases) go first.
func (s *Store) do(ctx context.Context, urgent bool, request func() error) error {
	if s.client == nil {
		return request()
	}
	if err := s.client.limit.acquire(ctx, urgent); err != nil {
		return err
	}
	defer s.client.limit.release()
	return request()
}

// sharedPosition is the revision up to which the Client's shared watch of
// the namespace has seen every change, or 0 when there is none.
func (s *Store) sharedPosition() int64 {
	if s.client == nil {
		return 0
	}
	return s.client.position(s.namespace)
}

// seenNewer returns the Lease as the Client's shared watch knows it, if
// that is newer than version (or, for an empty version, if it knows one at
// all): a write from that version would be refused by the API server, and
// is refused without asking it. A herd of candidates starting at once
// thereby sends one acquisition per Lease rather than one each.
func (s *Store) seenNewer(version string) *coordinationv1.Lease {
	if s.client == nil {
		return nil
	}
	k := s.client.known(s.namespace, s.name)
	if k == nil {
		return nil
	}
	if version != "" {
		v, err := strconv.ParseInt(version, 10, 64)
		if err != nil || revisionOf(k) <= v {
			return nil
		}
	}
	return k
}

// record decodes l, and refuses a Lease whose resourceVersion cannot order
// it (see store.Record.Revision).
func (s *Store) record(verb string, l *coordinationv1.Lease) (store.Record, error) {
	rec := RecordOf(l)
	if rec.Revision <= 0 {
		if _, err := strconv.ParseUint(l.ResourceVersion, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
			return store.Record{}, fmt.Errorf("%s %s: resourceVersion %q does not fit in 63 bits, which incumbent's fencing tokens are", verb, s, l.ResourceVersion)
		}
		return store.Record{}, fmt.Errorf("%s %s: resourceVersion %q is not a positive integer: incumbent needs comparable resource versions (Kubernetes 1.35 or later, KEP-5504) for its fencing tokens", verb, s, l.ResourceVersion)
	}
	return rec, nil
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, rec store.Record) (store.Record, error) {
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.namespace}}
	s.apply(l, rec)
	var got *coordinationv1.Lease
	var refused error // without asking the API server
	since := s.sharedPosition()
	err := s.do(ctx, s.holding.Load(), func() (err error) {
		// Created by another while this waited for its slot: the API
		// server would refuse it (unless that Lease is deleted again since,
		// when this is refused for nothing: the caller reads again, as
		// after any conflict). A Lease the shared watch knew before this
		// was called may be one that is gone already, so it does not count.
		if k := s.seenNewer(strconv.FormatInt(since, 10)); since > 0 && k != nil {
			s.remember(k)
			refused = fmt.Errorf("create %s: %w: the shared watch has seen it created meanwhile, at resourceVersion %s", s, store.ErrConflict, k.ResourceVersion)
			return nil
		}
		got, err = s.leases.Create(ctx, l, metav1.CreateOptions{})
		return err
	})
	if refused != nil {
		return store.Record{}, refused
	}
	if err != nil {
		return store.Record{}, s.wrap("create", err)
	}
	s.holding.Store(rec.Held())
	s.remember(got)
	return s.record("create", got)
}

// Update implements store.Store. It starts from the Lease as it was read at
// rec.Version, so that fields and annotations it does not own survive.
func (s *Store) Update(ctx context.Context, rec store.Record) (store.Record, error) {
	base := s.recall(rec.Version)
	if base == nil {
		l, err := s.get(ctx)
		if err != nil {
			return store.Record{}, s.wrap("update", err)
		}
		s.remember(l)
		if l.ResourceVersion != rec.Version {
			return store.Record{}, fmt.Errorf("update %s: %w: resourceVersion is %s, not %s", s, store.ErrConflict, l.ResourceVersion, rec.Version)
		}
		base = l
	}
	l := base.DeepCopy()
	s.apply(l, rec)
	// A renewal or a release goes before acquisitions and reads.
	var holder string
	if base.Spec.HolderIdentity != nil {
		holder = *base.Spec.HolderIdentity
	}
	urgent := !rec.Held() || (holder == rec.Holder && base.Annotations[AnnotationInstance] == rec.Instance)
	var got *coordinationv1.Lease
	var refused error                            // without asking the API server
	if k := s.seenNewer(rec.Version); k != nil { // without waiting for a request slot either
		s.remember(k)
		return store.Record{}, fmt.Errorf("update %s: %w: the shared watch has seen resourceVersion %s, newer than %s", s, store.ErrConflict, k.ResourceVersion, rec.Version)
	}
	err := s.do(ctx, urgent, func() (err error) {
		if k := s.seenNewer(rec.Version); k != nil {
			s.remember(k)
			refused = fmt.Errorf("update %s: %w: the shared watch has seen resourceVersion %s, newer than %s", s, store.ErrConflict, k.ResourceVersion, rec.Version)
			return nil
		}
		got, err = s.leases.Update(ctx, l, metav1.UpdateOptions{})
		return err
	})
	if refused != nil {
		return store.Record{}, refused
	}
	if apierrors.IsConflict(err) {
		// A Lease deleted since it was read fails the UID precondition
		// with a conflict too: tell the two apart.
		if _, gerr := s.get(ctx); apierrors.IsNotFound(gerr) {
			err = gerr
		}
	}
	if err != nil {
		return store.Record{}, s.wrap("update", err)
	}
	s.holding.Store(rec.Held())
	s.remember(got)
	return s.record("update", got)
}

// Watch implements store.Store. A Store of a Client shares its namespace's
// watch with the Client's other Stores (see WatchMode); otherwise it
// watches the single Lease. Without a version that watch reads the Lease
// first and watches from there: the API server would otherwise replay the
// current state as if it were a change.
func (s *Store) Watch(ctx context.Context, after string) (<-chan store.Event, error) {
	if s.client != nil {
		h, err := s.client.sharedHub(s.namespace)
		if err != nil {
			return nil, s.wrap("watch", err)
		}
		if h != nil {
			ch, err := s.watchShared(ctx, h, after)
			if !errors.Is(err, errOwnWatch) {
				return ch, err
			}
		}
	}
	if after == "" {
		l, err := s.leases.Get(ctx, s.name, metav1.GetOptions{})
		switch {
		case err == nil:
			s.remember(l)
			after = l.ResourceVersion
		case !apierrors.IsNotFound(err):
			return nil, s.wrap("watch", err)
		}
	}
	w, err := s.leases.Watch(ctx, metav1.ListOptions{
		FieldSelector:       "metadata.name=" + s.name,
		ResourceVersion:     after,
		AllowWatchBookmarks: true,
	})
	if err != nil {
		return nil, s.wrap("watch", err)
	}
	out := make(chan store.Event)
	go func() {
		defer close(out)
		defer w.Stop()
		send := func(ev store.Event) bool {
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			var ev watch.Event
			var ok bool
			select {
			case ev, ok = <-w.ResultChan():
			case <-ctx.Done():
				return
			}
			if !ok {
				return
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				l, isLease := ev.Object.(*coordinationv1.Lease)
				if !isLease {
					continue
				}
				e := s.event(l)
				if !send(e) || e.Err != nil {
					return
				}
			case watch.Deleted:
				// The deleted object carries the revision of the deletion.
				var rev int64
				if l, isLease := ev.Object.(*coordinationv1.Lease); isLease {
					rev = RecordOf(l).Revision
				}
				if !send(store.Event{Deleted: true, Record: store.Record{Revision: rev}}) {
					return
				}
			case watch.Error:
				send(store.Event{Err: s.wrap("watch", apierrors.FromObject(ev.Object))})
				return
			}
		}
	}()
	return out, nil
}

// watchShared subscribes to the namespace's shared watch (see
// hub.subscribe). Elections follow the shared watch without a request
// (Follow); a Watch "from now" costs one.
func (s *Store) watchShared(ctx context.Context, h *hub, after string) (<-chan store.Event, error) {
	exists, uid := true, s.uidAt(after)
	if after != "" && uid == "" {
		// A version this Store did not see: without the Lease's UID at
		// it, a deletion and re-creation since could not be told apart
		// from a change. The API server's own watch can tell.
		return nil, errOwnWatch
	}
	if after == "" {
		// "After now": a list of this one Lease names the revision it is
		// of, also when the Lease does not exist.
		own, ok := s.leases.(*leaseClient) // always, in a Store of a Client
		if !ok {
			return nil, errOwnWatch
		}
		l, err := own.List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + s.name})
		switch {
		case apierrors.IsForbidden(err) && s.client.opts.Watch == WatchAuto:
			s.client.hubRefused(s.namespace, err)
			return nil, errOwnWatch
		case err != nil:
			return nil, s.wrap("list", err)
		}
		after, exists = l.ResourceVersion, false
		if len(l.Items) > 0 {
			s.remember(&l.Items[0])
			after, exists, uid = l.Items[0].ResourceVersion, true, l.Items[0].UID
		}
	}
	rev, err := strconv.ParseInt(after, 10, 64)
	if err != nil || rev <= 0 {
		return nil, fmt.Errorf("watch %s: resourceVersion %q is not a positive integer", s, after)
	}
	return h.subscribe(ctx, s.name, position{rev: rev, uid: uid, exists: exists}, s.event)
}

// Follow implements store.Follower: a Store whose Client shares its
// namespace's watch follows the Lease as that watch knows it, without a
// request and without a goroutine of its own.
func (s *Store) Follow(ctx context.Context, fn func(store.Event), ended func(error)) (bool, error) {
	if s.client == nil {
		return false, nil
	}
	h, err := s.client.sharedHub(s.namespace)
	if err != nil || h == nil {
		return false, err
	}
	err = h.follower(ctx, s.name, position{current: true}, s.event, fn, ended)
	if errors.Is(err, errOwnWatch) {
		return false, nil
	}
	return err == nil, err
}

// event decodes a Lease a watch delivered, and remembers it.
func (s *Store) event(l *coordinationv1.Lease) store.Event {
	s.remember(l)
	rec, err := s.record("watch", l)
	if err != nil {
		return store.Event{Err: err}
	}
	return store.Event{Record: rec}
}

// uidAt returns the UID of the remembered Lease at version, if any.
func (s *Store) uidAt(version string) types.UID {
	if l := s.recall(version); l != nil {
		return l.UID
	}
	return ""
}

// remember keeps a Lease seen, as the base of a later Update. A few are
// kept, because a watch may deliver a version after a newer one was written.
// Leases are kept as they are, not copied: nothing changes a Lease once
// read (Update changes a copy).
func (s *Store) remember(l *coordinationv1.Lease) {
	trim(l)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.recent {
		if r != nil && r.ResourceVersion == l.ResourceVersion {
			return
		}
	}
	copy(s.recent[:], s.recent[1:])
	s.recent[len(s.recent)-1] = l
}

// trim drops what the store never reads from a Lease it keeps: its
// managedFields, the larger part of a Lease in memory. An Update without
// them leaves the server's record of field managers as it is.
func trim(l *coordinationv1.Lease) {
	if l.ManagedFields != nil { // a Lease shared with the hub is trimmed already: no write
		l.ManagedFields = nil
	}
}

// recall returns the remembered Lease at version, or nil.
func (s *Store) recall(version string) *coordinationv1.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.recent {
		if r != nil && r.ResourceVersion == version {
			return r
		}
	}
	return nil
}

// wrap adds the operation and the Lease to err, and classifies it as
// store.ErrNotFound, store.ErrConflict or store.ErrPermission.
func (s *Store) wrap(verb string, err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s %s: %w", verb, s, store.ErrNotFound)
	case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%s %s: %w: %w", verb, s, store.ErrConflict, err)
	case apierrors.IsUnauthorized(err):
		// Not RBAC: the token itself is not accepted. A pod's projected
		// token is bound to its pod, so it stops working as soon as the pod
		// object is gone, as after kubectl delete --force: the lease then
		// cannot be released and expires instead.
		return fmt.Errorf("%s %s: %w: the API server rejected the credentials (401 Unauthorized): the token is invalid or expired, or, for a pod's service-account token, its pod object is deleted (as by kubectl delete --force): %w",
			verb, s, store.ErrCredentials, err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s %s: %w: the API server refused verb %q on resource \"leases\" (group coordination.k8s.io) in namespace %q: %w",
			verb, s, store.ErrPermission, verb, s.namespace, err)
	}
	return fmt.Errorf("%s %s: %w", verb, s, err)
}

// RecordOf decodes a Lease. Missing fields read as zero, as in client-go; a
// value that makes no sense (a negative duration, say) is kept, for
// store.Record.Validate to report. Revision is the resourceVersion as a
// number, zero when it is not one.
func RecordOf(l *coordinationv1.Lease) store.Record {
	rec := store.Record{Version: l.ResourceVersion}
	if rv, err := strconv.ParseInt(l.ResourceVersion, 10, 64); err == nil && rv > 0 {
		rec.Revision = rv
	}
	sp := l.Spec
	if sp.HolderIdentity != nil {
		rec.Holder = *sp.HolderIdentity
	}
	if sp.LeaseDurationSeconds != nil {
		rec.LeaseDuration = time.Duration(*sp.LeaseDurationSeconds) * time.Second
	}
	if sp.AcquireTime != nil {
		rec.AcquireTime = sp.AcquireTime.Time
	}
	if sp.RenewTime != nil {
		rec.RenewTime = sp.RenewTime.Time
	}
	if sp.LeaseTransitions != nil {
		rec.Transitions = int64(*sp.LeaseTransitions)
	}
	a := l.Annotations
	rec.Instance = a[AnnotationInstance]
	rec.HandoffTo = a[AnnotationHandoffTo]
	rec.TransferTo = a[AnnotationTransferTo]
	if v, ok := a[AnnotationReleaseRequested]; ok {
		b, err := strconv.ParseBool(v)
		rec.ReleaseRequested = err != nil || b // any value but a false one asks
	}
	rec.Term = termOf(a[AnnotationTerm], rec.Transitions)
	return rec
}

// termOf reads AnnotationTerm: the token, if the annotation belongs to the
// term with the given transitions; zero otherwise, or when it is not
// "TOKEN/TRANSITIONS" with a positive token.
func termOf(v string, transitions int64) int64 {
	tok, tr, ok := strings.Cut(v, "/")
	if !ok {
		return 0
	}
	token, err1 := strconv.ParseInt(tok, 10, 64)
	of, err2 := strconv.ParseInt(tr, 10, 64)
	if err1 != nil || err2 != nil || token <= 0 || of != transitions {
		return 0
	}
	return token
}

// apply writes rec into l: the spec fields client-go's LeaseLock writes, and
// incumbent's annotations (removed when empty).
func apply(l *coordinationv1.Lease, rec store.Record) {
	holder := rec.Holder
	// Whole seconds, rounded up: followers must never wait less than the
	// holder counts on.
	secs := int32((rec.LeaseDuration + time.Second - 1) / time.Second)
	transitions := int32(min(rec.Transitions, 1<<31-1))
	l.Spec.HolderIdentity = &holder
	l.Spec.LeaseDurationSeconds = &secs
	l.Spec.AcquireTime = &metav1.MicroTime{Time: rec.AcquireTime}
	l.Spec.RenewTime = &metav1.MicroTime{Time: rec.RenewTime}
	l.Spec.LeaseTransitions = &transitions
	set := func(key, value string) {
		if value == "" {
			delete(l.Annotations, key)
			return
		}
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		l.Annotations[key] = value
	}
	set(AnnotationInstance, rec.Instance)
	set(AnnotationHandoffTo, rec.HandoffTo)
	set(AnnotationTransferTo, rec.TransferTo)
	release := ""
	if rec.ReleaseRequested {
		release = "true"
	}
	set(AnnotationReleaseRequested, release)
	term := ""
	if rec.Term > 0 {
		term = strconv.FormatInt(rec.Term, 10) + "/" + strconv.FormatInt(int64(transitions), 10)
	}
	set(AnnotationTerm, term)
}

var (
	_ store.Store    = (*Store)(nil)
	_ store.Follower = (*Store)(nil)
)
