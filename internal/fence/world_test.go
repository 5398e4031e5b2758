package fence_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/incumbent-io/incumbent/internal/fence"
	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/kube"
)

// activeBound bounds the waits for the API server to load a policy or to
// see a change of its parameter.
const activeBound = 30 * time.Second

// world is one namespace of the real API server with two service accounts
// allowed to write ConfigMaps and Leases: the candidates' ("app"), fenced, and
// another ("other"), never fenced; and the election's Lease.
type world struct {
	t     *testing.T
	ctx   context.Context
	ns    string
	admin *kubernetes.Clientset
}

const (
	fencedSA  = "app"
	otherSA   = "other"
	leaseName = "db"
)

func newWorld(t *testing.T, ns string) *world {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	admin, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, ctx: ctx, ns: ns, admin: admin}
	must(t, create(ctx, admin.CoreV1().Namespaces(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	for _, sa := range []string{fencedSA, otherSA} {
		must(t, create(ctx, admin.CoreV1().ServiceAccounts(ns), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}))
	}
	must(t, create(ctx, admin.RbacV1().Roles(ns), &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "writer"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"", "coordination.k8s.io"}, Resources: []string{"configmaps", "leases"},
			Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}}}}))
	must(t, create(ctx, admin.RbacV1().RoleBindings(ns), &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "writer"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "writer"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: fencedSA, Namespace: ns}, {Kind: "ServiceAccount", Name: otherSA, Namespace: ns}}}))
	return w
}

type creator[T any] interface {
	Create(context.Context, T, metav1.CreateOptions) (T, error)
}

func create[T any](ctx context.Context, c creator[T], obj T) error {
	_, err := c.Create(ctx, obj, metav1.CreateOptions{})
	return err
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// pod is a Pod object of the API server (no kubelet runs it) and a client
// that authenticates with a token bound to it, as the kubelet projects one.
type pod struct {
	name string
	uid  string
	cs   *kubernetes.Clientset
	cfg  *rest.Config
}

// newPod creates the Pod name running as sa and requests a token bound to it.
func (w *world) newPod(name, sa string) *pod {
	w.t.Helper()
	p, err := w.admin.CoreV1().Pods(w.ns).Create(w.ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{ServiceAccountName: sa,
			Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	return w.client(name, string(p.UID), sa, &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: name, UID: p.UID})
}

// unboundClient is a client of sa with a token that names no pod.
func (w *world) unboundClient(sa string) *pod {
	w.t.Helper()
	return w.client("", "", sa, nil)
}

func (w *world) client(name, uid, sa string, bound *authenticationv1.BoundObjectReference) *pod {
	w.t.Helper()
	exp := int64(3600)
	tok, err := w.admin.CoreV1().ServiceAccounts(w.ns).CreateToken(w.ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp, BoundObjectRef: bound}}, metav1.CreateOptions{})
	if err != nil {
		w.t.Fatalf("token for %s (pod %q): %v", sa, name, err)
	}
	cfg := &rest.Config{Host: env.Config.Host, BearerToken: tok.Status.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: env.Config.CAData}, QPS: -1}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	return &pod{name: name, uid: uid, cs: cs, cfg: cfg}
}

// deletePod deletes the Pod object at once (no kubelet would confirm it).
func (w *world) deletePod(p *pod) {
	w.t.Helper()
	zero := int64(0)
	must(w.t, w.admin.CoreV1().Pods(w.ns).Delete(w.ctx, p.name, metav1.DeleteOptions{GracePeriodSeconds: &zero}))
}

// install applies what incumbent fence prints for o (its Lease, Namespace
// and ServiceAccount filled in): the anchor, kept once created, as kubectl
// apply keeps it, then the policy and binding; and waits until the API
// server enforces them: until a write with a token of the fenced service
// account that names no pod, which the policy refuses whatever the Lease
// says, is refused. The policy and binding are deleted at cleanup.
func (w *world) install(o fence.Options) {
	w.t.Helper()
	w.anchor()
	o.Lease, o.Namespace, o.ServiceAccount = leaseName, w.ns, fencedSA
	if len(o.Resources) == 0 {
		o.Resources = []fence.Resource{{Resource: "configmaps"}}
	}
	policy, binding, err := fence.Objects(o)
	must(w.t, err)
	ar := w.admin.AdmissionregistrationV1()
	must(w.t, create(w.ctx, ar.ValidatingAdmissionPolicies(), policy))
	must(w.t, create(w.ctx, ar.ValidatingAdmissionPolicyBindings(), binding))
	w.t.Cleanup(func() {
		ctx := context.Background()
		_ = ar.ValidatingAdmissionPolicyBindings().Delete(ctx, binding.Name, metav1.DeleteOptions{})
		_ = ar.ValidatingAdmissionPolicies().Delete(ctx, policy.Name, metav1.DeleteOptions{})
	})
	w.waitEnforced(policy.Name)
}

// anchor creates the anchor policy and binding unless they exist.
func (w *world) anchor() {
	w.t.Helper()
	ar := w.admin.AdmissionregistrationV1()
	policy, binding := fence.Anchor()
	if err := create(w.ctx, ar.ValidatingAdmissionPolicies(), policy); err != nil && !apierrors.IsAlreadyExists(err) {
		w.t.Fatal(err)
	}
	if err := create(w.ctx, ar.ValidatingAdmissionPolicyBindings(), binding); err != nil && !apierrors.IsAlreadyExists(err) {
		w.t.Fatal(err)
	}
}

// waitEnforced waits until a write of the fenced service account with a
// token that names no pod is refused.
func (w *world) waitEnforced(name string) {
	w.t.Helper()
	probe := w.unboundClient(fencedSA)
	began := time.Now()
	attempts, err := w.until(func() error { return probe.write(w, "probe") }, isFenced)
	if err != nil {
		w.t.Fatalf("the policy was not enforced within %v (%d attempts): %v", activeBound, attempts, err)
	}
	w.t.Logf("policy %s enforced %v after it was created (%d probe writes)", name, time.Since(began).Round(time.Millisecond), attempts)
}

// until calls write until done(its error) holds, at most activeBound long,
// and returns how many calls it made, or the last error when done never
// held.
func (w *world) until(write func() error, done func(error) bool) (int, error) {
	deadline := time.Now().Add(activeBound)
	for attempts := 1; ; attempts++ {
		err := write()
		if done(err) {
			return attempts, nil
		}
		if time.Now().After(deadline) {
			return attempts, fmt.Errorf("still %v", err)
		}
		// The next attempt follows at once: each is a round trip.
	}
}

// isFenced reports whether err is the policy's refusal.
func isFenced(err error) bool {
	return apierrors.IsForbidden(err) && strings.Contains(err.Error(), "incumbent fence:")
}

func accepted(err error) bool { return err == nil }

// write creates or updates the ConfigMap name with a fresh value.
func (p *pod) write(w *world, name string) error {
	cms := p.cs.CoreV1().ConfigMaps(w.ns)
	data := map[string]string{"at": time.Now().Format(time.RFC3339Nano)}
	cm, err := cms.Get(w.ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = cms.Create(w.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return fmt.Errorf("read before the write: %w", err)
	}
	cm.Data = data
	_, err = cms.Update(w.ctx, cm, metav1.UpdateOptions{})
	return err
}

// hold writes the Lease as the candidate in pod p writes it: through a
// kube store given its pod's UID (withUID), or without one (as a sidecar
// without POD_UID, or client-go); nil releases it.

func (w *world) hold(p *pod, withUID bool) {
	w.t.Helper()
	uid := ""
	if p != nil && withUID {
		uid = p.uid
	}
	st, err := kube.New(env.Config, w.ns, leaseName, kube.Options{PodUID: uid})
	must(w.t, err)
	rec, err := st.Get(w.ctx)
	exists := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		w.t.Fatal(err)
	}
	next := store.Record{LeaseDuration: 15 * time.Second, Version: rec.Version, Transitions: rec.Transitions}
	if p != nil {
		next.Holder, next.Instance = p.name, "instance-of-"+p.name
		next.Transitions++
	}
	if exists {
		_, err = st.Update(w.ctx, next)
	} else {
		_, err = st.Create(w.ctx, next)
	}
	must(w.t, err)
}

// lease returns the Lease as it is now.
func (w *world) lease() *coordinationv1.Lease {
	w.t.Helper()
	l, err := w.admin.CoordinationV1().Leases(w.ns).Get(w.ctx, leaseName, metav1.GetOptions{})
	must(w.t, err)
	return l
}
