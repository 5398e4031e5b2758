package fence_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/incumbent-io/incumbent/internal/fence"
	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/kube"
)

// TestTheAPIServerRefusesEveryoneButTheHolder walks one election through
// its life with the policy installed, on a real API server, with clients
// whose tokens are bound to Pod objects as the kubelet's are: the holder's
// writes are accepted and a non-holder's refused, with a message naming
// both; reads and other service accounts are never refused; after a
// hand-over the old holder is refused; a pod re-created under the holder's
// name is refused; a released Lease refuses everyone.
func TestTheAPIServerRefusesEveryoneButTheHolder(t *testing.T) {
	w := newWorld(t, "fence-life")
	a, b := w.newPod("db-0", fencedSA), w.newPod("db-1", fencedSA)
	other := w.newPod("other-0", otherSA)
	w.hold(a, true)
	w.install(fence.Options{})

	// The holder: every kind of write.
	must(t, a.write(w, "state"))
	must(t, a.write(w, "state"))
	cms := a.cs.CoreV1().ConfigMaps(w.ns)
	if _, err := cms.Patch(w.ctx, "state", types.MergePatchType, []byte(`{"data":{"patched":"yes"}}`), metav1.PatchOptions{}); err != nil {
		t.Errorf("the holder's patch: %v", err)
	}
	must(t, a.write(w, "scratch"))
	if err := cms.Delete(w.ctx, "scratch", metav1.DeleteOptions{}); err != nil {
		t.Errorf("the holder's delete: %v", err)
	}

	// A non-holder of the same service account: every kind of write is
	// refused, with a message naming it and the holder.
	bcm := b.cs.CoreV1().ConfigMaps(w.ns)
	refusals := map[string]error{
		"create": create(w.ctx, bcm, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "by-b"}}),
		"update": func() error {
			cm, err := bcm.Get(w.ctx, "state", metav1.GetOptions{})
			if err != nil {
				return err
			}
			_, err = bcm.Update(w.ctx, cm, metav1.UpdateOptions{})
			return err
		}(),
		"patch": func() error {
			_, err := bcm.Patch(w.ctx, "state", types.MergePatchType, []byte(`{"data":{"by":"b"}}`), metav1.PatchOptions{})
			return err
		}(),
		"delete":            bcm.Delete(w.ctx, "state", metav1.DeleteOptions{}),
		"delete collection": bcm.DeleteCollection(w.ctx, metav1.DeleteOptions{}, metav1.ListOptions{}),
	}
	for verb, err := range refusals {
		if !isFenced(err) {
			t.Errorf("the non-holder's %s: %v, want the policy's refusal", verb, err)
			continue
		}
		for _, want := range []string{"pod db-1 (uid " + b.uid + ")", "is held by db-0 (pod uid " + a.uid + ")"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the non-holder's %s: message %q does not say %q", verb, err, want)
			}
		}
	}
	// Its reads are never refused.
	readsWork(t, w, b)

	// Another service account, and an administrator, are not fenced.
	must(t, other.write(w, "other-state"))
	must(t, w.adminWrite("admin-state"))

	// Hand-over: db-1 holds the Lease now; db-0 is refused, db-1 accepted.
	w.hold(b, true)
	if _, err := w.until(func() error { return a.write(w, "state") }, isFenced); err != nil {
		t.Fatalf("after the hand-over to db-1, db-0's writes: %v", err)
	}
	if _, err := w.until(func() error { return b.write(w, "state") }, accepted); err != nil {
		t.Fatalf("after the hand-over to db-1, db-1's writes: %v", err)
	}
	readsWork(t, w, a)

	// db-1 is re-created: the same name, another UID. The Lease still
	// records the old pod's UID, so the new pod is refused.
	w.deletePod(b)
	b2 := w.newPod("db-1", fencedSA)
	if b2.uid == b.uid {
		t.Fatalf("the re-created pod has the old UID %s", b.uid)
	}
	if err := b2.write(w, "state"); !isFenced(err) || !strings.Contains(err.Error(), "pod db-1 (uid "+b2.uid+")") {
		t.Errorf("the re-created db-1's write: %v, want the policy's refusal naming its new UID", err)
	}
	readsWork(t, w, b2)

	// Released: nobody may write, the holder that released included.
	w.hold(a, true)
	if _, err := w.until(func() error { return a.write(w, "state") }, accepted); err != nil {
		t.Fatalf("db-0 holding again: %v", err)
	}
	w.hold(nil, false)
	if _, err := w.until(func() error { return a.write(w, "state") }, isFenced); err != nil {
		t.Fatalf("after the release, db-0's writes: %v", err)
	}
	for _, p := range []*pod{a, b2} {
		err := p.write(w, "state")
		if !isFenced(err) || !strings.Contains(err.Error(), "has no holder (released)") {
			t.Errorf("after the release, %s's write: %v, want the policy's refusal saying the lease is released", p.name, err)
		}
		readsWork(t, w, p)
	}
	must(t, other.write(w, "other-state"))
}

// TestTheNameIsTheFallbackWithoutAPodUID: a holder that records no pod UID
// (a sidecar without POD_UID, a client-go candidate) is recognised by its
// pod's name; with RequirePodUID it is refused too.
func TestTheNameIsTheFallbackWithoutAPodUID(t *testing.T) {
	w := newWorld(t, "fence-by-name")
	a, b := w.newPod("db-0", fencedSA), w.newPod("db-1", fencedSA)
	w.hold(a, false)
	w.install(fence.Options{})
	must(t, a.write(w, "state"))
	if err := b.write(w, "state"); !isFenced(err) || !strings.Contains(err.Error(), "records no pod UID: pod names compared") {
		t.Errorf("the non-holder's write: %v, want the policy's refusal saying names were compared", err)
	}
	// A pod re-created under the holder's name passes: the documented
	// limit of the fallback.
	w.deletePod(a)
	a2 := w.newPod("db-0", fencedSA)
	must(t, a2.write(w, "state"))

	// A stale UID (written in an earlier term, kept by a client-go
	// take-over that raised leaseTransitions) is not used.
	w.hold(b, true)
	if _, err := w.until(func() error { return b.write(w, "state") }, accepted); err != nil {
		t.Fatal(err)
	}
	l := w.lease()
	holder, transitions := a2.name, *l.Spec.LeaseTransitions+1
	l.Spec.HolderIdentity, l.Spec.LeaseTransitions = &holder, &transitions
	if _, err := w.admin.CoordinationV1().Leases(w.ns).Update(w.ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.until(func() error { return a2.write(w, "state") }, accepted); err != nil {
		t.Fatalf("db-0 holding by name, with db-1's stale UID on the Lease: %v", err)
	}
	if err := b.write(w, "state"); !isFenced(err) {
		t.Errorf("db-1, whose UID the Lease still carries from an earlier term: %v, want refused", err)
	}
}

func TestRequirePodUIDRefusesAHolderWithoutOne(t *testing.T) {
	w := newWorld(t, "fence-require-uid")
	a := w.newPod("db-0", fencedSA)
	w.hold(a, false)
	w.install(fence.Options{RequirePodUID: true})
	if err := a.write(w, "state"); !isFenced(err) || !strings.Contains(err.Error(), "the policy requires one") {
		t.Errorf("the holder without a recorded UID: %v, want refused", err)
	}
	w.hold(a, true)
	if _, err := w.until(func() error { return a.write(w, "state") }, accepted); err != nil {
		t.Fatalf("the holder with its UID recorded: %v", err)
	}
}

// TestAMissingLeaseRefusesEveryone: parameterNotFoundAction Deny.
func TestAMissingLeaseRefusesEveryone(t *testing.T) {
	w := newWorld(t, "fence-no-lease")
	a := w.newPod("db-0", fencedSA)
	o := fence.Options{Lease: leaseName, Namespace: w.ns, ServiceAccount: fencedSA, Resources: []fence.Resource{{Resource: "configmaps"}}}
	policy, binding, err := fence.Objects(o)
	must(t, err)
	ar := w.admin.AdmissionregistrationV1()
	must(t, create(w.ctx, ar.ValidatingAdmissionPolicies(), policy))
	must(t, create(w.ctx, ar.ValidatingAdmissionPolicyBindings(), binding))
	t.Cleanup(func() {
		_ = ar.ValidatingAdmissionPolicyBindings().Delete(w.ctx, binding.Name, metav1.DeleteOptions{})
		_ = ar.ValidatingAdmissionPolicies().Delete(w.ctx, policy.Name, metav1.DeleteOptions{})
	})
	if _, err := w.until(func() error { return a.write(w, "state") }, func(err error) bool {
		return err != nil && strings.Contains(err.Error(), "no params found")
	}); err != nil {
		t.Fatalf("with no Lease: %v, want the binding's refusal for a missing parameter", err)
	}
	readsWork(t, w, a)

	// A missing parameter refuses before the match conditions are read, so
	// before the fenced service account is told from anyone else: the fence
	// must reach no namespace but its own, or an uninstalled application (its
	// namespace and Lease gone, the cluster-scoped fence left) would refuse
	// every ConfigMap write in the cluster.
	other := "fence-no-lease-elsewhere"
	must(t, create(w.ctx, w.admin.CoreV1().Namespaces(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}}))
	if _, err := w.admin.CoreV1().ConfigMaps(other).Create(w.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "unrelated"}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("an administrator's ConfigMap in another namespace, with the fence's Lease missing: %v, want it accepted", err)
	}
}

// readsWork checks that p can get, list and watch the namespace's ConfigMaps.
func readsWork(t *testing.T, w *world, p *pod) {
	t.Helper()
	cms := p.cs.CoreV1().ConfigMaps(w.ns)
	if _, err := cms.List(w.ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("%s's list: %v", p.name, err)
	}
	if _, err := cms.Get(w.ctx, "state", metav1.GetOptions{}); err != nil {
		t.Errorf("%s's get: %v", p.name, err)
	}
	wa, err := cms.Watch(w.ctx, metav1.ListOptions{})
	if err != nil {
		t.Errorf("%s's watch: %v", p.name, err)
		return
	}
	wa.Stop()
}

func (w *world) adminWrite(name string) error {
	_, err := w.admin.CoreV1().ConfigMaps(w.ns).Create(w.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name},
		Data: map[string]string{"at": time.Now().Format(time.RFC3339Nano)}}, metav1.CreateOptions{})
	return err
}

// TestTheElectionsLeaseIsNeverFenced: with every resource fenced, a
// non-holder candidate can still take the election's Lease (it could never
// become the holder otherwise) and create it again after a deletion (which
// a missing parameter would refuse, were the Lease left out only by the
// policy's matchConditions), but not write another Lease.
func TestTheElectionsLeaseIsNeverFenced(t *testing.T) {
	w := newWorld(t, "fence-everything")
	a, b := w.newPod("db-0", fencedSA), w.newPod("db-1", fencedSA)
	w.hold(a, true)
	w.install(fence.Options{Resources: []fence.Resource{{Group: "*", Resource: "*"}}})
	if err := b.write(w, "state"); !isFenced(err) {
		t.Errorf("db-1's ConfigMap write: %v, want refused", err)
	}
	st, err := kube.New(b.cfg, w.ns, leaseName, kube.Options{PodUID: b.uid})
	must(t, err)
	rec, err := st.Get(w.ctx)
	must(t, err)
	rec.Holder, rec.Instance, rec.Transitions = b.name, "b", rec.Transitions+1
	if _, err := st.Update(w.ctx, rec); err != nil {
		t.Errorf("db-1 taking the election's Lease: %v", err)
	}
	if _, err := w.until(func() error { return b.write(w, "state") }, accepted); err != nil {
		t.Fatalf("db-1 holding: %v", err)
	}
	// Deleted, the Lease can still be created again by a candidate.
	must(t, w.admin.CoordinationV1().Leases(w.ns).Delete(w.ctx, leaseName, metav1.DeleteOptions{}))
	if _, err := w.until(func() error {
		_, err := st.Create(w.ctx, store.Record{Holder: b.name, Instance: "b", LeaseDuration: time.Second, Transitions: rec.Transitions + 2})
		return err
	}, accepted); err != nil {
		t.Fatalf("db-1 creating the deleted election Lease: %v", err)
	}
	other, err := kube.New(a.cfg, w.ns, "another-of-a", kube.Options{})
	must(t, err)
	if _, err := other.Create(w.ctx, store.Record{Holder: "x", LeaseDuration: time.Second}); err == nil || !strings.Contains(err.Error(), "incumbent fence:") {
		t.Errorf("db-0, no longer the holder, creating a Lease of another name: %v, want the policy's refusal", err)
	}
}
